"""The local runtime on its own: timeouts, retries, lost supervisors, and never signalling a stranger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cancel_job_mcp.backends.local import procs

from ...battery_support import db_row, submit_here, wait_for_stop
from ...conftest import process_group_alive, run_cli, show, wait_for_process_group, wait_until


@pytest.mark.slow
def test_a_job_past_its_timeout_is_stopped_and_failed(home: Path) -> None:
    job = submit_here(home, "demo", "sleep", "600", timeout_seconds=0.5, grace_seconds=1)
    pgid = wait_for_process_group(home, job["id"])
    record = wait_for_stop(home, job["id"])
    assert record["status"] == "failed"
    assert "Timed out after 0.5 seconds" in str(record["failed_reason"])
    assert record["exit_code"] == 128 + 15
    assert not process_group_alive(pgid)


def test_a_failing_job_is_retried_then_failed(home: Path, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    script = f"echo run >> {attempts}; exit 3"
    job = submit_here(home, "demo", "sh", "-c", script, retries=2)
    record = wait_for_stop(home, job["id"])
    assert record["status"] == "failed"
    assert record["exit_code"] == 3
    assert record["failed_reason"] == "Exited with code 3 after 3 attempts."
    assert record["backoff_limit"] == 2
    assert attempts.read_text().count("run") == 3


def test_a_retry_that_succeeds_completes_the_job(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1"
    job = submit_here(home, "demo", "sh", "-c", script, retries=3)
    record = wait_for_stop(home, job["id"])
    assert record["status"] == "completed"
    assert record["exit_code"] == 0
    assert record["failed_reason"] is None


def test_a_command_that_cannot_start_fails_with_a_reason(home: Path) -> None:
    # The CLI refuses a command it cannot find; one that is gone by the time it runs still fails clearly.
    job = submit_here(home, "demo", "/nonexistent/command")
    record = wait_for_stop(home, job["id"])
    assert record["status"] == "failed"
    assert "Could not start '/nonexistent/command'" in str(record["failed_reason"])


@pytest.mark.slow
def test_a_job_whose_supervisor_was_killed_is_reconciled(home: Path) -> None:
    job = submit_here(home, "demo", "sleep", "600", grace_seconds=1)
    pgid = wait_for_process_group(home, job["id"])
    supervisor = supervisor_identity(home, job["id"])
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_until(lambda: not procs.is_running(supervisor))

    assert show(home, "demo", job["id"])["status"] == "working", "a read returns the record as it is"
    record = wait_for_stop(home, job["id"])  # ... and hands the job to a successor, which stops it

    assert record["status"] == "failed"
    assert f"supervisor (pid {supervisor.pid}) is gone" in str(record["failed_reason"])
    assert not process_group_alive(pgid), "the orphaned job must be stopped, not left running"


@pytest.mark.slow
def test_cancel_still_stops_a_job_whose_supervisor_is_gone(home: Path) -> None:
    job = submit_here(home, "demo", "sleep", "600")
    pgid = wait_for_process_group(home, job["id"])
    supervisor = supervisor_identity(home, job["id"])
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_until(lambda: not procs.is_running(supervisor))

    done = run_cli(home, "cancel", "demo", job["id"])

    assert '"status": "canceled"' in done.stdout
    assert not process_group_alive(pgid)
    assert db_row(home, job["id"])["completed_at"] is not None


def test_a_recycled_pid_is_never_signalled() -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        real = procs.identify(stranger.pid)
        assert procs.is_running(real)
        assert real.start_ticks is not None
        recycled = procs.ProcessIdentity(stranger.pid, real.start_ticks + 1, real.boot_id)
        other_boot = procs.ProcessIdentity(stranger.pid, real.start_ticks, "another-boot")
        seen_before = procs.ProcessInfo(stranger.pid, stranger.pid, real.start_ticks + 1)

        assert not procs.wake(recycled, signal.SIGKILL)
        assert not procs.wake(other_boot, signal.SIGKILL)
        assert not procs.send_signal(seen_before, signal.SIGKILL)

        assert stranger.poll() is None, "a process that is not ours was signalled"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.slow
def test_the_jobs_table_lists_newest_first_and_filters(home: Path) -> None:
    first = submit_here(home, "alpha", "true")
    second = submit_here(home, "beta", "sleep", "600")
    wait_for_process_group(home, second["id"])

    table = run_cli(home, "jobs").stdout.splitlines()
    assert table[0].split() == ["id", "project_id", "status", "name", "created_at", "exit_code"]
    assert [line.split()[0] for line in table[1:]] == [second["id"], first["id"]]
    only_beta = run_cli(home, "jobs", "--project", "beta", "--status", "working").stdout.splitlines()
    assert [line.split()[0] for line in only_beta[1:]] == [second["id"]]
    run_cli(home, "cancel", "beta", second["id"])


def test_the_database_is_in_wal_mode(home: Path) -> None:
    import sqlite3

    submit_here(home, "demo", "true")
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def supervisor_identity(home: Path, job_id: str) -> procs.ProcessIdentity:
    return procs.ProcessIdentity.decode(db_row(home, job_id)["supervisor"])
