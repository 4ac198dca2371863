"""The detached supervisor of one local job: `python -m cancel_job_mcp.backends.local.supervisor`.

It runs the job's command in a process group of its own, records each transition, enforces the
job's timeout (over all attempts together, like Kubernetes' activeDeadlineSeconds), retries a
non-zero exit up to `backoff_limit` times, and stops the group if the job is canceled while it
watches (the canceller also stops it; this covers a canceller that died halfway).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ...record import JobStatus
from . import procs, store

POLL_SECONDS = 0.25
# How long past the grace period the supervisor leaves a canceled job to its canceller.
CANCELLER_MARGIN_SECONDS = 1.0
log = logging.getLogger("cancel_job_mcp.supervisor")


def exit_code_of(returncode: int) -> int:
    """Shell convention: a process killed by signal N exits with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def supervise(home: Path, job_id: str) -> None:
    db = store.database_path(home)
    with store.connect(db) as conn:
        row = store.get(conn, job_id)
        if row is None:
            raise SystemExit(f"no job {job_id} in {db}")
        command: list[str] = row.record["config"]["command"]
        cwd: str = row.record["config"]["cwd"]
        timeout = row.record["timeout_seconds"]
        retries = int(row.record["backoff_limit"])
        deadline = time.monotonic() + timeout if timeout > 0 else None
        log_path = home / "logs" / f"{job_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)

        for attempt in range(retries + 1):
            with log_path.open("ab") as output:
                try:
                    child = subprocess.Popen(
                        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                except OSError as error:
                    store.finish(
                        conn, job_id, JobStatus.FAILED, None, f"Could not start {command[0]!r}: {error}"
                    )
                    return
            leader = procs.identify(child.pid)
            if not store.mark_working(conn, job_id, leader.encode(), attempt):
                _stop_canceled(conn, job_id, child, leader, row.grace_seconds)
                return
            outcome = _watch(conn, job_id, child, leader, row.grace_seconds, deadline)
            if outcome == "canceled":
                return
            if outcome == "timed_out":
                reason = f"Timed out after {timeout:g} seconds; the job's processes were stopped."
                store.finish(conn, job_id, JobStatus.FAILED, exit_code_of(child.returncode), reason)
                return
            code = exit_code_of(child.returncode)
            if code == 0:
                store.finish(conn, job_id, JobStatus.COMPLETED, 0, None)
                return
            if attempt == retries:
                attempts = f"{retries + 1} attempts" if retries else "1 attempt"
                reason = f"Exited with code {code} after {attempts}."
                store.finish(conn, job_id, JobStatus.FAILED, code, reason)
                return


def _watch(
    conn: sqlite3.Connection,
    job_id: str,
    child: subprocess.Popen[bytes],
    leader: procs.ProcessIdentity,
    grace: float,
    deadline: float | None,
) -> str:
    """Wait for the attempt to end: "exited", "canceled" or "timed_out"."""
    while True:
        try:
            child.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        else:
            current = store.get(conn, job_id)
            if current is not None and current.status == JobStatus.CANCELED:
                store.record_stop(conn, job_id, exit_code_of(child.returncode))
                return "canceled"
            return "exited"
        current = store.get(conn, job_id)
        if current is not None and current.status == JobStatus.CANCELED:
            # The canceller signals the job itself; step in only if it has not stopped it in time.
            kill_after_grace(leader, current.record["updated_at"], grace + CANCELLER_MARGIN_SECONDS)
            child.wait()
            store.record_stop(conn, job_id, exit_code_of(child.returncode))
            return "canceled"
        if deadline is not None and time.monotonic() >= deadline:
            procs.terminate_group(leader, grace)
            child.wait()
            return "timed_out"


def kill_after_grace(leader: procs.ProcessIdentity, canceled_at: str, grace: float) -> None:
    """The canceller sent SIGTERM when it recorded the cancel (at `canceled_at`): leave the job the
    rest of its grace period, then SIGKILL whatever is left of its process group."""
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(canceled_at)).total_seconds()
    if not procs.wait_group_gone(leader, max(0.0, grace - elapsed)):
        procs.signal_group(leader, signal.SIGKILL)
        procs.wait_group_gone(leader, timeout=10)


def _stop_canceled(
    conn: sqlite3.Connection,
    job_id: str,
    child: subprocess.Popen[bytes],
    leader: procs.ProcessIdentity,
    grace: float,
) -> None:
    procs.terminate_group(leader, grace)
    child.wait()
    store.record_stop(conn, job_id, exit_code_of(child.returncode))


def finish_cancel(home: Path, job_id: str, lost_supervisor: str) -> None:
    """Finish the stop of a canceled job whose canceller and supervisor both died.

    The job keeps what is left of its grace period, then what remains of its process group is killed.
    """
    with store.connect(store.database_path(home)) as conn:
        me = procs.identify(os.getpid()).encode()
        if not store.replace_supervisor(conn, job_id, lost_supervisor, me):
            return  # another process adopted the job first
        row = store.get(conn, job_id)
        if row is None:
            return
        if row.process is not None:
            leader = procs.ProcessIdentity.decode(row.process)
            kill_after_grace(leader, row.record["updated_at"], row.grace_seconds)
        store.record_stop(conn, job_id, None)


def spawn(home: Path, job_id: str, *, finish_cancel_of: str | None = None) -> procs.ProcessIdentity:
    """Start a supervisor that outlives its caller (its own session, no inherited terminal).

    With `finish_cancel_of` (the lost supervisor's identity), it only finishes a canceled job's stop.
    """
    log_path = home / "logs" / f"{job_id}.supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    adopt = ["--finish-cancel-of", finish_cancel_of] if finish_cancel_of else []
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, "--home", os.fspath(home), *adopt, job_id],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
        )  # fmt: skip
    return procs.identify(process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(prog="cancel-job-mcp-supervisor")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--finish-cancel-of", metavar="LOST_SUPERVISOR")
    parser.add_argument("job_id")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.finish_cancel_of:
        finish_cancel(args.home, args.job_id, args.finish_cancel_of)
    else:
        supervise(args.home, args.job_id)


if __name__ == "__main__":
    main()
