"""The local runtime as a trust boundary: reads never run anything, one successor per state directory,
and a job's command runs once at most, whatever dies when.

Some tests plant the state a crash leaves behind (a row whose owner is a dead process, a command
already running with the job's tag), built from real processes, so the phase under test is exact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from cancel_job_mcp.backends.local import procs, store
from cancel_job_mcp.backends.local.runtime import LocalBackend, submit_job
from cancel_job_mcp.errors import ToolError
from cancel_job_mcp.record import make_record, utc_now

from .battery_support import db_row, wait_for_stop
from .conftest import run_cli, wait_until

PROJECT = "trust"


@pytest.fixture
def dead_owner() -> str:
    """The identity of a process that ran and is gone: what a killed supervisor leaves in its row."""
    process = subprocess.Popen(["sleep", "600"])
    identity = procs.identify(process.pid)
    process.kill()
    process.wait()
    return identity.encode()


def plant(
    home: Path, job_id: str, command: list[str], status: str, owner: str, **bookkeeping: object
) -> None:
    """A row as the runtime writes it, with the owner and status of the phase under test."""
    now = utc_now()
    record = make_record(
        id=job_id, project_id=PROJECT, name="planted", status=status, target=" ".join(command),
        config={"command": command, "cwd": "/"}, created_at=now, updated_at=now,
    )  # fmt: skip
    with store.connect(store.database_path(home)) as conn:
        store.insert(conn, record, 1.0, 1024, owner)
        for column, value in bookkeeping.items():
            conn.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job_id))


def read_once(home: Path, job_id: str) -> dict[str, object]:
    async def read() -> dict[str, object]:
        backend = LocalBackend(home)
        try:
            return dict(await backend.get_job(PROJECT, job_id))
        finally:
            await backend.aclose()

    return anyio.run(read)


def successor_processes(home: Path) -> list[int]:
    """The live successor processes of `home` (a supervisor has a job id after its lease)."""
    found = []
    for pid in procs.process_table():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"cancel_job_mcp.backends.local" in argv
            and os.fsencode(home) in argv
            and argv[-2].startswith(b"lease:")
        ):
            found.append(pid)
    return found


def test_a_submitted_job_whose_supervisor_never_started_fails_and_never_runs(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(home, "job_neverstarted", ["touch", str(marker)], "submitted", expired_start)

    assert read_once(home, "job_neverstarted")["status"] == "submitted", "a read returns the record as is"
    record = wait_for_stop(home, "job_neverstarted")

    assert record["status"] == "failed"
    assert "supervisor did not start before it marked the job working" in record["failed_reason"]
    assert not marker.exists(), "a read (through the successor) ran a command"


def test_a_supervisor_killed_between_starting_the_command_and_working_runs_it_once(
    home: Path, tmp_path: Path, dead_owner: str
) -> None:
    """The supervisor started the command, then died before recording `working`: the row is still
    `submitted`, owned by a dead process, and the command runs with the job's tag."""
    runs = tmp_path / "runs"
    job_id = "job_halfstarted"
    script = f"echo ran >> {runs}; exec sleep 600"
    command = subprocess.Popen(
        ["sh", "-c", script], start_new_session=True, env={**os.environ, procs.JOB_TAG_VARIABLE: job_id}
    )
    try:
        wait_until(runs.exists)
        plant(home, job_id, ["sh", "-c", script], "submitted", dead_owner)

        run_cli(home, "jobs")  # a read
        record = wait_for_stop(home, job_id)

        assert record["status"] == "failed"
        assert (
            f"(pid {procs.ProcessIdentity.decode(dead_owner).pid}) is gone before" in record["failed_reason"]
        )
        assert command.wait(timeout=30) == -signal.SIGTERM, "the command it had started is stopped"
        assert runs.read_text() == "ran\n", "the command ran twice"
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_a_job_that_kills_its_supervisor_as_it_starts_runs_once(
    home: Path, tmp_path: Path, attempt: int
) -> None:
    """Wherever the kill lands (before or after `working` is recorded), the command runs once."""
    runs = tmp_path / "runs"
    job = submit_job(home, PROJECT, ["sh", "-c", f"kill -9 $PPID; echo ran >> {runs}; exec sleep 600"])
    wait_until(runs.exists, timeout=60)
    for _ in range(3):
        read_once(home, job["id"])
    record = wait_for_stop(home, job["id"], timeout=60)
    assert record["status"] == "failed"
    assert "is gone" in record["failed_reason"]
    assert runs.read_text() == "ran\n"


def test_a_submit_whose_supervisor_cannot_start_leaves_no_row(home: Path) -> None:
    (home / "logs").write_text("a file where the logs directory should be")
    with pytest.raises(ToolError, match="Nothing was submitted"):
        submit_job(home, PROJECT, ["sleep", "600"])
    with store.connect(store.database_path(home)) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


@pytest.mark.slow
def test_a_hundred_orphaned_jobs_read_at_once_get_one_successor_at_a_time(
    home: Path, dead_owner: str
) -> None:
    for number in range(100):
        plant(home, f"job_orphan{number:03}", ["sleep", "600"], "working", dead_owner)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(len(successor_processes(home)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:

        async def read_everything() -> None:
            backends = [LocalBackend(home) for _ in range(4)]
            try:
                async with anyio.create_task_group() as group:
                    for backend in backends:
                        group.start_soon(backend.list_jobs, PROJECT, None, 100, None)
                        group.start_soon(backend.list_jobs, PROJECT, "working", 100, None)
            finally:
                for backend in backends:
                    await backend.aclose()

        anyio.run(read_everything)
        for number in range(100):
            record = wait_for_stop(home, f"job_orphan{number:03}", timeout=60)
            assert record["status"] == "failed"
    finally:
        done.set()
        watcher.join()
    assert max(seen) == 1, "more than one successor ran at once"
    successor_log = (home / "logs" / "successor.log").read_text()
    assert "another successor" not in successor_log
    assert db_row(home, "job_orphan000")["supervisor"] != dead_owner


def test_a_listing_starts_no_command(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(
        home,
        "job_readonly",
        [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
        "submitted",
        expired_start,
    )
    done = run_cli(home, "jobs", "--project", PROJECT)
    assert "job_readonly" in done.stdout
    assert wait_for_stop(home, "job_readonly")["status"] == "failed"
    assert not marker.exists()
