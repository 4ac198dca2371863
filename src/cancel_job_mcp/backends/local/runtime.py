"""The `local` backend: jobs submitted with `cancel-job-mcp submit`, each owned by a detached supervisor.

Servers and CLIs never signal a job. A cancel records the request (one atomic transition) and wakes
the job's supervisor, which stops the job and records the stop; the caller then waits for that
record. Reads never wait, never start and never stop anything: they return the record as it is and,
when a job's supervisor is gone, wake the state directory's one successor (see successor.py).
"""

from __future__ import annotations

import logging
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

from ...backoff import Backoff
from ...defaults import DEFAULT_GRACE_SECONDS, DEFAULT_LOG_LIMIT
from ...errors import (
    NOTHING_CANCELED,
    NOTHING_CHANGED,
    ToolError,
    database_deleted,
    local_job_not_found,
    not_cancellable,
    refused_cursor,
    unusable_state,
)
from ...record import JobRecord, JobStatus, format_timestamp, is_terminal, make_record, utc_now
from ...stops import Signals
from ..base import JobPage, JobSpec, StopHooks, StopPolling
from ..logs import JobLogs, LogQuery
from . import evidence, joblog, logs, procs, store, successor, supervisor
from .procs import ProcessIdentity
from .successor import Owner

T = TypeVar("T")

# A database operation that fails (disk full, read-only) is retried after these pauses, then reported.
RETRY_PAUSES = (0.05, 0.2, 0.5)
log = logging.getLogger(__name__)


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
    log_limit: int = DEFAULT_LOG_LIMIT,
) -> JobRecord:
    """Record a job as `submitted` and start its supervisor, which alone will run the command; returns
    the record as it is now. A supervisor that cannot be started leaves no record."""
    now = utc_now()
    workdir = os.fspath((cwd or Path.cwd()).resolve())
    record = make_record(
        id=new_job_id(),
        project_id=project,
        name=name or Path(command[0]).name,
        status=JobStatus.SUBMITTED,
        target=shlex.join(command),
        config={"command": command, "cwd": workdir},
        timeout_seconds=timeout_seconds,
        backoff_limit=retries,
        created_at=now,
        updated_at=now,
    )
    lease = store.new_lease(start=True)
    try:
        with store.connect(store.database_path(home)) as conn:
            store.insert(conn, record, grace_seconds, log_limit, lease)
            try:
                supervisor.spawn(home, lease, record["id"])
            except OSError:
                store.forget_unstarted(conn, record["id"], lease)
                raise
            row = store.get(conn, record["id"])
    except (sqlite3.Error, OSError) as error:
        raise state_error(home, error, "Nothing was submitted.") from None
    assert row is not None
    return row.record


def prune_jobs(home: Path, older_than: timedelta) -> list[str]:
    """Delete the jobs that stopped longer than `older_than` ago, and their logs; never an active one."""
    before = format_timestamp(datetime.now(UTC) - older_than)
    try:
        with store.connect(store.database_path(home)) as conn:
            removed = store.prune(conn, before)
        for job_id in removed:
            for path in (
                joblog.log_path(home, job_id),
                joblog.supervisor_log_path(home, job_id),
                evidence.stop_path(home, job_id),
            ):
                path.unlink(missing_ok=True)
    except (sqlite3.Error, OSError) as error:
        raise state_error(home, error, "Nothing more was removed.") from None
    return removed


def is_stopping(record: JobRecord) -> bool:
    """Canceled, with its stop not recorded yet: some process of the job may still run."""
    return record["status"] == JobStatus.CANCELED and record["completed_at"] is None


def shown_status(record: JobRecord) -> str:
    """A local job's status as `jobs` shows it: `canceled (stopping)` until its stop is recorded."""
    return f"{record['status']} (stopping)" if is_stopping(record) else record["status"]


def stop_under_way(record: JobRecord) -> str | None:
    """What `show` and `cancel` say of a local job whose stop is still under way, or None."""
    if not is_stopping(record):
        return None
    return (
        f"Job {record['id']} is canceled (stopping): its processes are still being stopped, and its stop"
        " is not recorded yet (completed_at is null). The cancel stands; read it again to see the stop."
    )


class LocalBackend(StopHooks):
    """Cancels and reads jobs of the local runtime stored under `home`."""

    kind = "local"

    def __init__(self, home: Path, name: str = "local") -> None:
        self.name = name
        self.home = home
        self._db_path = store.database_path(home)
        # One connection per worker thread, reused across calls (opening one costs more than a query),
        # with the (device, inode) of the file it opened: a file deleted or replaced is noticed.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._opened_once = False
        # A read-only connection for the event loop (see `_settled`), opened by a worker thread.
        self._loop_reader: tuple[sqlite3.Connection, tuple[int, int]] | None = None
        self._loop_reader_lock = threading.Lock()

    async def aclose(self) -> None:
        self._loop_reader = None
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    # A canceled job has stopped once its supervisor recorded completed_at (no process of it left).
    # A read is a local SQLite query, so it is cheap to poll often; `wait_for_stop` ends each pause
    # early when the supervisor exits, so the poll interval bounds only the rare slow cases.
    stop_polling = StopPolling(
        has_stopped=lambda record: is_terminal(record) and record["completed_at"] is not None,
        pauses=Backoff(first=0.05, cap=0.5),
    )

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        row = self._settled(project, job_id) or await self._db(
            NOTHING_CHANGED, self._read_one, project, job_id
        )
        if row is None:
            raise self.not_found(project, job_id)
        return row.record

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        return await self._list(project, status, limit, cursor)

    async def list_every_project(self, status: str | None, limit: int, cursor: str | None) -> JobPage:
        return await self._list(None, status, limit, cursor)

    async def _list(self, project: str | None, status: str | None, limit: int, cursor: str | None) -> JobPage:
        """A page of the project's jobs (`None`: every project's); the cursor is a sequence number."""
        before = _parse_cursor(cursor)
        rows = await self._db(NOTHING_CHANGED, self._read_page, project, status, limit, before)
        next_cursor = str(rows[-1].sequence) if len(rows) == limit else None
        return JobPage(jobs=[row.record for row in rows], next_cursor=next_cursor)

    async def submit_job(self, project: str, spec: JobSpec) -> JobRecord:
        start = partial(
            submit_job, self.home, project, list(spec.command), name=spec.name, cwd=spec.cwd,
            timeout_seconds=spec.timeout_seconds, retries=spec.retries, grace_seconds=spec.grace_seconds,
            log_limit=spec.log_limit,
        )  # fmt: skip
        return await anyio.to_thread.run_sync(start)

    async def prune_jobs(self, older_than: timedelta) -> list[str]:
        return await anyio.to_thread.run_sync(prune_jobs, self.home, older_than)

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        """Record the cancel and wake the job's supervisor; the caller waits for the recorded stop.

        Recording and waking happen in one worker-thread call, which runs to its end even if the
        caller gives up meanwhile. A job already settled changes nothing: its record is read on the
        event loop, with no write transaction and no worker thread.
        """
        row = self._settled(project, job_id) or await self._db(
            "Nothing was canceled.", self._cancel, project, job_id
        )
        if row is None:
            raise self.not_found(project, job_id, NOTHING_CANCELED)
        if row.status != JobStatus.CANCELED:
            raise not_cancellable(row.record, "on the local runtime")
        return row.record

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        record = await self.get_job(project, job_id)  # a job of another project: not_found
        return await anyio.to_thread.run_sync(partial(logs.read_log, self.home, record, query))

    async def stop_signals(self, project: str, job_id: str) -> Signals:
        """The signals the job's supervisor sent in its latest stop (evidence.py)."""
        return evidence.signals_sent(self.home, job_id)

    async def wait_for_stop(self, project: str, job_id: str, seconds: float) -> None:
        """Pause up to `seconds`, ending as soon as the job's supervisor exits: it records the stop
        just before, so the caller's next read finds it at once rather than at its next poll."""
        pidfd = self._supervisor_pidfd(project, job_id)
        if pidfd is None:
            await anyio.sleep(seconds)
            return
        try:
            with anyio.move_on_after(seconds):
                await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)

    def _supervisor_pidfd(self, project: str, job_id: str) -> int | None:
        """A pidfd for the job's running supervisor, read on the event loop like `_settled`; None
        if there is none (a lease, a lost supervisor) or the read fails."""
        reader = self._loop_reader
        if reader is None:
            return None
        try:
            row = store.find(reader[0], project, job_id)
        except sqlite3.Error:
            return None
        if row is None or row.supervisor is None or store.lease_of(row.supervisor) is not None:
            return None
        return procs.open_pidfd(ProcessIdentity.decode(row.supervisor))

    def _settled(self, project: str, job_id: str) -> store.JobRow | None:
        """The job's row, read on the event loop, if the job is settled (nothing left to own or stop).

        None sends the caller to the worker-thread path: no reader yet, the file replaced, any error,
        no such job, or a job still active or stopping. The read cannot hold the loop for long: one
        primary-key lookup in a small file the OS caches, on a query-only connection with busy_timeout
        0, so a lock (in WAL mode readers wait for no writer; only a WAL recovery or reset can refuse
        them) fails at once instead of waiting.
        """
        reader = self._loop_reader
        if reader is None or reader[1] != _file_identity(self._db_path):
            return None
        try:
            row = store.find(reader[0], project, job_id)
        except sqlite3.Error:
            return None
        return row if row is not None and not row.needs_owner else None

    def _open_loop_reader(self) -> None:
        """In a worker thread: open the event loop's query-only connection, or a new one once the file
        was replaced (the old one stays open until `aclose`: the loop may be reading with it)."""
        with self._loop_reader_lock:
            identity = _file_identity(self._db_path)
            if identity is None or (self._loop_reader is not None and self._loop_reader[1] == identity):
                return
            try:
                conn = store.open_connection(self._db_path)
                conn.execute("PRAGMA busy_timeout = 0")
                conn.execute("PRAGMA query_only = 1")
            except sqlite3.Error as error:  # the worker-thread path keeps serving every call
                log.debug("no event-loop reader for %s: %s", self._db_path, error)
                return
            self._connections.append(conn)
            self._loop_reader = (conn, identity)

    def _cancel(self, conn: sqlite3.Connection, project: str, job_id: str) -> store.JobRow | None:
        _, row = store.request_cancel(conn, project, job_id)
        if row is not None:
            self._look_after(conn, [row], wake=True)
        return row

    def _read_one(self, conn: sqlite3.Connection, project: str, job_id: str) -> store.JobRow | None:
        row = store.find(conn, project, job_id)
        if row is not None:
            self._look_after(conn, [row])
        return row

    def _read_page(
        self,
        conn: sqlite3.Connection,
        project: str | None,
        status: str | None,
        limit: int,
        before: int | None,
    ) -> list[store.JobRow]:
        rows = store.select(conn, project, status, limit, before)
        self._look_after(conn, rows)
        return rows

    def _look_after(self, conn: sqlite3.Connection, rows: list[store.JobRow], wake: bool = False) -> None:
        """Wake the live supervisors of `rows` if asked (a cancel), and the state directory's successor,
        once, if any of them has lost its owner. Never starts or signals a job; never fails the caller."""
        orphaned = False
        for row in rows:
            if not row.needs_owner:
                continue
            state = successor.owner_state(row.supervisor)
            if state is Owner.ALIVE and wake:
                assert row.supervisor is not None
                procs.wake(ProcessIdentity.decode(row.supervisor), supervisor.WAKE_SIGNAL)
            orphaned = orphaned or state in (Owner.LOST, Owner.STOPPED)
        if not orphaned:
            return
        try:
            successor.wake(conn, self.home)
        except (sqlite3.Error, OSError) as error:  # a later read tries again
            log.warning("could not wake the successor of %s: %s", self.home, error)

    async def _db(self, consequence: str, operation: Callable[..., T], *args: object) -> T:
        # Abandoned when the call's deadline passes: SQLite's busy wait (30 s, retried) cannot be
        # interrupted, and the call answers `timeout` on time; the thread finishes on its own.
        return await anyio.to_thread.run_sync(
            partial(self._run, consequence, operation, *args), abandon_on_cancel=True
        )

    def _run(self, consequence: str, operation: Callable[..., T], *args: object) -> T:
        """Run `operation` in this worker thread; retry what may pass (disk full), then report it."""
        for pause in (*RETRY_PAUSES, None):
            try:
                result = operation(self._connection(), *args)
                self._open_loop_reader()
                return result
            except ToolError:
                raise
            except (sqlite3.Error, OSError) as error:
                if pause is None or not _may_pass(error):
                    raise state_error(self.home, error, consequence) from None
                log.warning("local state %s: %s; retrying", self._db_path, error)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _connection(self) -> sqlite3.Connection:
        current = _file_identity(self._db_path)
        cached: tuple[sqlite3.Connection, tuple[int, int]] | None = getattr(self._local, "conn", None)
        if cached is not None:
            conn, opened = cached
            if opened == current:
                return conn
            conn.close()
            self._connections.remove(conn)
            self._local.conn = None
        if current is None and self._opened_once:
            raise database_deleted(self._db_path)
        conn = store.open_connection(self._db_path)
        identity = _file_identity(self._db_path)
        assert identity is not None
        self._local.conn = (conn, identity)
        self._connections.append(conn)
        self._opened_once = True
        return conn

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return local_job_not_found(job_id, project, self.home, consequence)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _may_pass(error: BaseException) -> bool:
    """A failure worth retrying: not a corrupt file or a missing directory."""
    name = getattr(error, "sqlite_errorname", "")
    return isinstance(error, sqlite3.OperationalError) and not name.startswith(
        ("SQLITE_NOTADB", "SQLITE_CORRUPT")
    )


def state_error(home: Path, error: BaseException, consequence: str) -> ToolError:
    """A state directory that cannot be used, named with its problem (never a traceback)."""
    if isinstance(error, store.UntrustedState):
        return error.refusal
    return unusable_state(home, store.database_path(home), error, consequence)


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise refused_cursor()
    return int(cursor)
