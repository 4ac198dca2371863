"""An exact stop: a job is recorded stopped only when no process of it is left, even one whose child
ignores SIGTERM and forks and exits in a loop (a new PID every fraction of a millisecond), however
the job ends: canceled, its leader exiting 0, or its timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cancel_job_mcp.backends.local import procs
from cancel_job_mcp.backends.local.runtime import submit_job

from ...battery_support import backend_cancel, wait_for_stop
from ...conftest import wait_until

pytestmark = pytest.mark.slow

PROJECT = "exact-stop"
# argv[1]: "sleep" (the leader waits to be stopped) or "exit0" (it exits 0 once the hopper runs);
# argv[2]: a file made once the hopper has started.
HOPPER = """
import os, signal, sys, time
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[2], "w").close()
    while True:
        if os.fork() != 0:
            os._exit(0)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
if sys.argv[1] == "exit0":
    sys.exit(0)
time.sleep(600)
"""


def job_processes(job_id: str) -> list[procs.ProcessInfo]:
    """The live processes carrying the job's tag (zombies do not count)."""
    return procs.tagged_by_job(procs.process_table()).get(job_id, [])


def submit_hopper(home: Path, tmp_path: Path, mode: str, **options: float) -> str:
    ready = tmp_path / "hopping"
    job = submit_job(
        home, PROJECT, [sys.executable, "-c", HOPPER, mode, str(ready)], grace_seconds=1, **options
    )
    wait_until(ready.exists, timeout=60)
    return job["id"]


def test_a_canceled_job_with_a_fork_hopping_child_is_stopped_before_it_is_recorded(
    home: Path, tmp_path: Path
) -> None:
    job_id = submit_hopper(home, tmp_path, "sleep")

    backend_cancel(home, PROJECT, job_id)
    record = wait_for_stop(home, job_id, timeout=60)
    left = job_processes(job_id)
    assert left == [], "processes of the job outlived its recorded stop"
    assert record["status"] == "canceled"
    assert record["exit_code"] == 128 + 15


def test_a_leader_that_exits_0_with_a_fork_hopping_child_left_is_completed_only_once_it_is_gone(
    home: Path, tmp_path: Path
) -> None:
    job_id = submit_hopper(home, tmp_path, "exit0")
    record = wait_for_stop(home, job_id, timeout=60)
    left = job_processes(job_id)
    assert left == [], "processes of the job outlived its recorded end"
    assert record["status"] == "completed"
    assert record["exit_code"] == 0


def test_a_timed_out_job_with_a_fork_hopping_child_is_failed_only_once_it_is_gone(
    home: Path, tmp_path: Path
) -> None:
    job_id = submit_hopper(home, tmp_path, "sleep", timeout_seconds=2)
    record = wait_for_stop(home, job_id, timeout=60)
    left = job_processes(job_id)
    assert left == [], "processes of the job outlived its recorded end"
    assert record["status"] == "failed"
    assert "Timed out after 2 seconds" in record["failed_reason"]


def test_where_cgroup_v2_is_writable_each_attempt_runs_in_a_cgroup_of_its_own(home: Path) -> None:
    from cancel_job_mcp.backends.local import cgroups

    parent = cgroups._own_cgroup()
    if parent is None:
        pytest.skip(
            "no writable cgroup v2 here (not root, no delegated subtree): the subreaper alone stops jobs"
        )
    job = submit_job(home, PROJECT, ["sh", "-c", "sleep 600 & sleep 600"], grace_seconds=1)
    cgroup = parent / f"cancel-job-mcp-{job['id']}-0"
    members = wait_until(
        lambda: job_processes(job["id"]) if len(job_processes(job["id"])) >= 2 else None, timeout=60
    )
    for info in members:
        assert Path(f"/proc/{info.pid}/cgroup").read_text().strip().endswith(cgroup.name)
    assert "populated 1" in (cgroup / "cgroup.events").read_text()
    backend_cancel(home, PROJECT, job["id"])
    assert wait_for_stop(home, job["id"], timeout=60)["status"] == "canceled"
    assert job_processes(job["id"]) == []
    assert not cgroup.exists(), "the attempt's cgroup is removed once empty"
