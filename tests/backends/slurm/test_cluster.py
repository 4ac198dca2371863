"""The test cluster's own promise (tests/slurm_cluster.py): a session that died without tearing down
does not get in the next one's way, and a live session's cluster is never touched by another."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import pytest

from ...cluster_support import poll
from ...slurm_cluster import DIR_PREFIX, UnavailableError, check_available, remove_stale_clusters

pytestmark = pytest.mark.xdist_group("slurm_cluster")


def fake_cluster(tmp: Path, *, alive: bool) -> tuple[Path, subprocess.Popen[bytes], IO[str]]:
    """A cluster directory with a process started under its SLURM_CONF, its lock held if `alive`."""
    root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir="/tmp"))
    (root / "slurm.conf").write_text("ClusterName=fake\n")
    lock = (root / "session.lock").open("w")
    if alive:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        lock.close()
    process = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, "SLURM_CONF": str(root / "slurm.conf")}, start_new_session=True
    )
    return root, process, lock


def test_a_dead_sessions_cluster_is_stopped_and_removed_a_live_one_kept(tmp_path: Path) -> None:
    dead, orphan, _ = fake_cluster(tmp_path, alive=False)
    live, daemon, lock = fake_cluster(tmp_path, alive=True)
    try:
        remove_stale_clusters()
        assert poll(lambda: orphan.poll() is not None, timeout=10, what="the orphan to be killed")
        assert not dead.exists()
        assert daemon.poll() is None
        assert (live / "slurm.conf").exists()
    finally:
        for process in (orphan, daemon):
            process.kill()
            process.wait()
        lock.close()
        remove_stale_clusters()
    assert not live.exists()


def test_where_slurm_cannot_run_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UnavailableError, match="not root"):
        check_available()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None if name == "slurmrestd" else name)
    with pytest.raises(UnavailableError, match=r"slurmrestd missing\); run .ci/install-slurm.sh"):
        check_available()
