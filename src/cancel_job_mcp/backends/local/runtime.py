"""The `local` backend: jobs submitted with `cancel-job-mcp submit`, run by detached supervisors."""

from __future__ import annotations

import os
import secrets
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio

from ...cursors import refused_cursor
from ...errors import ErrorCode, ToolError
from ...record import ACTIVE_STATUSES, JobRecord, JobStatus, utc_now
from ..base import JobPage
from . import procs, store, supervisor
from .procs import ProcessIdentity

T = TypeVar("T")

DEFAULT_GRACE_SECONDS = 5.0
# How long a canceller waits, past the grace period, for the supervisor to record the stop.
SETTLE_MARGIN_SECONDS = 3.0
# A job whose supervisor never registered within this time is considered lost.
SUPERVISOR_START_SECONDS = 60.0
POLL_SECONDS = 0.02


def new_job_id() -> str:
    return f"job_{secrets.token_urlsafe(9)}"


def submit_job(
    home: Path,
    project: str,
    command: list[str],
    *,
    name: str | None = None,
    cwd: Path | None = None,
    timeout_seconds: float = 0,
    retries: int = 0,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> JobRecord:
    """Record a job as `submitted` and start its supervisor; returns the record as it is now."""
    now = utc_now()
    workdir = os.fspath((cwd or Path.cwd()).resolve())
    record = JobRecord(
        id=new_job_id(),
        project_id=project,
        environment_id=None,
        branch_id=None,
        cron_job_id=None,
        batch_id=None,
        name=name or Path(command[0]).name,
        status=JobStatus.SUBMITTED,
        target=shlex.join(command),
        config={"command": command, "cwd": workdir},
        timeout_seconds=timeout_seconds,
        backoff_limit=retries,
        exit_code=None,
        failed_reason=None,
        started_at=None,
        completed_at=None,
        created_at=now,
        updated_at=now,
    )
    db = store.database_path(home)
    with store.connect(db) as conn:
        store.insert(conn, record, grace_seconds)
        identity = supervisor.spawn(home, record["id"])
        store.set_supervisor(conn, record["id"], identity.encode())
        row = store.get(conn, record["id"])
    assert row is not None
    return row.record


class LocalBackend:
    """Cancels and reads jobs of the local runtime stored under `home`."""

    kind = "local"

    def __init__(self, home: Path, name: str = "local") -> None:
        self.name = name
        self.home = home
        self._db_path = store.database_path(home)
        # One connection per worker thread, reused across calls (opening one costs more than a query).
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []

    async def aclose(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        row = await self._db(self._find_reconciled, project, job_id)
        if row is None:
            raise _not_found(project, job_id)
        return row.record

    def _find_reconciled(self, conn: sqlite3.Connection, project: str, job_id: str) -> store.JobRow | None:
        row = store.find(conn, project, job_id)
        return None if row is None else self._reconcile(row)

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        return await self.list_any_project(project, status, limit, cursor)

    async def list_any_project(
        self, project: str | None, status: str | None, limit: int, cursor: str | None
    ) -> JobPage:
        """Like `list_jobs`, with `project=None` meaning every project. The cursor is a sequence number."""
        before = _parse_cursor(cursor)
        rows = await self._db(self._select_reconciled, project, status, limit, before)
        jobs = [row.record for row in rows if status is None or row.status == status]
        next_cursor = str(rows[-1].sequence) if len(rows) == limit else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        won, row = await self._db(store.request_cancel, project, job_id)
        if row is None:
            raise _not_found(project, job_id, " Nothing was canceled.")
        if row.status != JobStatus.CANCELED:
            finished = row.record["completed_at"] or row.record["updated_at"]
            raise ToolError(
                ErrorCode.NOT_CANCELLABLE,
                f"Job {job_id!r} already {row.status} at {finished}; only submitted or working jobs"
                " can be canceled. Its record is unchanged.",
            )
        return await self._settle_cancel(won, row)

    async def _settle_cancel(self, won: bool, row: store.JobRow) -> JobRecord:
        """Stop the canceled job's processes and wait until the stop is recorded (or time runs out)."""
        if row.record["completed_at"] is not None:
            return row.record
        job_id = row.record["id"]
        leader = ProcessIdentity.decode(row.process) if row.process else None
        if won and leader is not None:
            await anyio.to_thread.run_sync(procs.terminate_group, leader, row.grace_seconds)
        deadline = time.monotonic() + row.grace_seconds + SETTLE_MARGIN_SECONDS
        while True:
            current = await self._db(store.get, job_id)
            assert current is not None
            if current.record["completed_at"] is not None:
                return current.record
            leader = ProcessIdentity.decode(current.process) if current.process else None
            group_alive = leader is not None and procs.group_running(leader)
            if not group_alive and not _supervisor_alive(current):
                await self._db(store.record_stop, job_id, None)
            elif time.monotonic() >= deadline:
                if leader is not None and group_alive:
                    # The canceller that won is gone and so is the supervisor: stop the job ourselves.
                    await anyio.to_thread.run_sync(procs.terminate_group, leader, current.grace_seconds)
                await self._db(store.record_stop, job_id, None)
            else:
                await anyio.sleep(POLL_SECONDS)

    def _select_reconciled(
        self,
        conn: sqlite3.Connection,
        project: str | None,
        status: str | None,
        limit: int,
        before: int | None,
    ) -> list[store.JobRow]:
        return [self._reconcile(row) for row in store.select(conn, project, status, limit, before)]

    def _reconcile(self, row: store.JobRow) -> store.JobRow:
        """Finish what a lost supervisor left: fail its active job, or have a cancel's stop completed."""
        if row.status in ACTIVE_STATUSES:
            reason = self._lost_supervisor_reason(row)
            if reason is None:
                return row
            self._stop_processes(row)
            store.fail_if_active(self._connection(), row.record["id"], reason)
        elif row.status == JobStatus.CANCELED and row.record["completed_at"] is None:
            if row.supervisor is not None and not _supervisor_alive(row):
                # Its canceller died too, or nobody would stop it: a new supervisor finishes the stop,
                # honouring what is left of the grace period, without holding up this read.
                supervisor.spawn(self.home, row.record["id"], finish_cancel_of=row.supervisor)
            return row
        else:
            return row
        current = store.get(self._connection(), row.record["id"])
        assert current is not None
        return current

    @staticmethod
    def _lost_supervisor_reason(row: store.JobRow) -> str | None:
        if _supervisor_alive(row):
            return None
        if row.supervisor is None:
            created = datetime.fromisoformat(row.record["created_at"])
            if datetime.now(UTC) - created < timedelta(seconds=SUPERVISOR_START_SECONDS):
                return None
            return "The job's supervisor never started; the job did not run."
        pid = ProcessIdentity.decode(row.supervisor).pid
        return f"The job's supervisor (pid {pid}) is gone, so the job was stopped and marked failed."

    @staticmethod
    def _stop_processes(row: store.JobRow) -> None:
        if row.process is not None:
            procs.terminate_group(ProcessIdentity.decode(row.process), row.grace_seconds)

    async def _db(self, operation: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(partial(self._run, operation, *args))

    def _run(self, operation: Callable[..., T], *args: object) -> T:
        return operation(self._connection(), *args)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = store.open_connection(self._db_path)
            self._connections.append(conn)
        return conn


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise refused_cursor()
    return int(cursor)


def _supervisor_alive(row: store.JobRow) -> bool:
    return row.supervisor is not None and procs.is_running(ProcessIdentity.decode(row.supervisor))


def _not_found(project: str, job_id: str, consequence: str = "") -> ToolError:
    return ToolError(
        ErrorCode.NOT_FOUND,
        f"No job {job_id!r} in project {project!r} on the local runtime.{consequence}"
        " A job is found only within the project it was submitted to: check both values.",
    )
