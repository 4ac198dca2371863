"""The local runtime's state: one SQLite file in WAL mode, shared by servers, CLIs and supervisors.

Every state change is a single conditional UPDATE, so concurrent writers cannot step on each
other: a cancel only applies to an active job, a supervisor only finishes a job that is still
active (so `canceled` is never overwritten by a job that finished at the same moment), and a job
changes owner only from the owner a caller saw (so a lost supervisor gets exactly one successor).

The `supervisor` column names the job's owner: the process identity of its supervisor (or of the
state directory's successor, once that took the job over), or the start-up lease `submit` gives the
supervisor it starts. The one-row `successor` table names the state directory's successor the same
way: a process identity, or a lease held while one starts. Leases and the grace period are timed on
the boot clock (CLOCK_BOOTTIME, with the boot id): a step of the wall clock moves neither.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

from ...errors import ToolError, state_of_another_user, state_writable_by_others
from ...record import ACTIVE_STATUSES, TERMINAL_STATUSES, JobRecord, JobStatus, utc_now
from . import procs

_SCHEMA_VERSION = 3
# Pages newest first, with and without a status, walk an index (every index ends with the rowid);
# the successor finds the jobs not settled yet through a partial index as small as they are few.
_VERSION_3 = (
    "CREATE INDEX IF NOT EXISTS jobs_by_project_newest ON jobs (project_id)",
    "CREATE INDEX IF NOT EXISTS jobs_by_status_newest ON jobs (status)",
    "CREATE INDEX IF NOT EXISTS jobs_unsettled ON jobs (status) WHERE completed_at IS NULL",
    "CREATE TABLE IF NOT EXISTS successor (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT)",
    "INSERT OR IGNORE INTO successor (id, owner) VALUES (1, NULL)",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    environment_id TEXT,
    branch_id TEXT,
    cron_job_id TEXT,
    batch_id TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    target TEXT NOT NULL,
    config TEXT NOT NULL,
    timeout_seconds REAL NOT NULL,
    backoff_limit INTEGER NOT NULL,
    exit_code INTEGER,
    failed_reason TEXT,
    started_at TEXT,
    completed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    grace_seconds REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    supervisor TEXT,
    process TEXT,
    term_sent_at REAL,
    leader_exit INTEGER,
    log_limit INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_project ON jobs (project_id, status);
"""
_MIGRATIONS = {
    1: (
        "ALTER TABLE jobs ADD COLUMN term_sent_at REAL",
        "ALTER TABLE jobs ADD COLUMN leader_exit INTEGER",
        "ALTER TABLE jobs ADD COLUMN log_limit INTEGER",
    ),
    # term_sent_at was a wall-clock time: a stop under way restarts its grace period once.
    2: ("UPDATE jobs SET term_sent_at = NULL", *_VERSION_3),
}
_LEASE = "lease:"
# How long a lease keeps a starting supervisor's place before another caller may start one.
LEASE_SECONDS = 30.0
_ACTIVE = tuple(ACTIVE_STATUSES)
_TERMINAL = tuple(TERMINAL_STATUSES)
_RECORD_COLUMNS = tuple(JobRecord.__annotations__)
_BOOKKEEPING_COLUMNS = (
    "rowid", "grace_seconds", "attempt", "supervisor", "process", "term_sent_at", "leader_exit", "log_limit"
)  # fmt: skip
# Rows are read as plain tuples, in this order (a sqlite3.Row looked up by name costs more than the query).
_ROW = ", ".join((*_BOOKKEEPING_COLUMNS, *_RECORD_COLUMNS))
_AFTER_NEWEST = 2**63 - 1


class JobRow(NamedTuple):
    """A job as stored: the runtime's own bookkeeping (in `_BOOKKEEPING_COLUMNS` order) and the record."""

    record: JobRecord
    sequence: int
    grace_seconds: float
    attempt: int
    supervisor: str | None
    process: str | None
    term_sent_at: float | None
    leader_exit: int | None
    log_limit: int | None

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def stopping(self) -> bool:
        """Canceled, but the stop of its processes is not recorded yet."""
        return self.status == JobStatus.CANCELED and self.record["completed_at"] is None

    @property
    def needs_owner(self) -> bool:
        return self.status in ACTIVE_STATUSES or self.stopping


def database_path(home: Path) -> Path:
    return home / "jobs.sqlite3"


class UntrustedState(PermissionError):
    """The state directory, or a file in it, is another user's or writable by others (see `secure`)."""

    def __init__(self, refusal: ToolError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal  # what the caller is told


# The files kept in the state directory besides the job logs (0600 each): the jobs, the cursor key,
# and the audit trail (audit.py).
_PRIVATE_FILES = (
    "jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "cursor.key",
    "audit.sqlite3", "audit.sqlite3-wal", "audit.sqlite3-shm",
)  # fmt: skip


def secure(home: Path) -> None:
    """Make the state directory `home` (mode 0700) if it is missing, and trust it as ssh trusts ~/.ssh.

    It, its database (with the WAL and shared-memory files), the cursor key and the logs directory
    must be owned by this user (or root) and writable by no one else; otherwise `UntrustedState`.
    A private file readable by others (made by an older version) is made 0600. Raises OSError when
    the directory cannot be made (NotADirectoryError for a file in the way).
    """
    home.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        home.mkdir(mode=0o700)
    if not home.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", os.fspath(home))
    _check_owner_and_mode(home, os.stat(home))
    for name in (*_PRIVATE_FILES, "logs"):
        path = home / name
        try:
            status = os.stat(path)
        except FileNotFoundError:
            continue
        _check_owner_and_mode(path, status)
        if stat.S_ISREG(status.st_mode) and status.st_mode & 0o077:
            os.chmod(path, 0o600)


def _check_owner_and_mode(path: Path, status: os.stat_result) -> None:
    me = os.geteuid()
    if status.st_uid not in (me, 0):
        owner = _user_name(status.st_uid)
        raise UntrustedState(state_of_another_user(path, owner, _user_name(me)))
    if status.st_mode & 0o022:
        raise UntrustedState(state_writable_by_others(path, stat.S_IMODE(status.st_mode)))


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


@dataclass(frozen=True)
class Lease:
    """The place of a process that is starting: until `expires` (boot-clock seconds of boot `boot_id`)
    no other is started. A `start` lease is the one `submit` gives the supervisor it starts: only the
    holder of a start lease ever runs a job's command."""

    start: bool
    boot_id: str
    expires: float

    def encode(self) -> str:
        return f"{_LEASE}{'start' if self.start else 'take'}:{self.boot_id}:{self.expires:.3f}"

    def expired(self) -> bool:
        return self.boot_id != (procs.boot_id() or "") or procs.boot_clock() >= self.expires


def new_lease(start: bool = False) -> str:
    return Lease(start, procs.boot_id() or "", procs.boot_clock() + LEASE_SECONDS).encode()


def lease_of(owner: str | None) -> Lease | None:
    """The lease `owner` holds, or None if `owner` names a process (or nothing)."""
    if owner is None or not owner.startswith(_LEASE):
        return None
    kind, boot, expires = owner.removeprefix(_LEASE).split(":")
    return Lease(kind == "start", boot, float(expires))


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (every statement is its own transaction); creates the database
    (0600, like its WAL and shared-memory files, which SQLite makes with the database's mode) in a
    state directory it has checked with `secure`."""
    secure(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        # In WAL mode this survives any process crash; only an OS crash can undo the last commits, and
        # then every job is gone too (a new boot id) and is reconciled as such. Each fsync saved keeps
        # the write lock short when hundreds of cancels and supervisors write at once.
        conn.execute("PRAGMA synchronous = NORMAL")
        _initialize(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_connection(path)
    try:
        yield conn
    finally:
        conn.close()


def _initialize(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    if conn.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # a concurrent opener sees the old schema or the new one
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        steps = (
            [_SCHEMA.split(";\n"), _VERSION_3]
            if version == 0
            else [_MIGRATIONS[v] for v in range(version, _SCHEMA_VERSION)]
        )
        for statements in steps:
            for statement in statements:
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _row(values: tuple[Any, ...]) -> JobRow:
    """A row selected as `_ROW`."""
    bookkeeping = len(_BOOKKEEPING_COLUMNS)
    record = dict(zip(_RECORD_COLUMNS, values[bookkeeping:], strict=True))
    record["config"] = _config(record["config"])
    return JobRow(cast(JobRecord, record), *values[:bookkeeping])


def _config(stored: Any) -> dict[str, Any]:
    """The stored config; one that is not a JSON object (the file was edited or damaged) comes back as
    `{"_unreadable": <its text>}`, so the job can still be read and canceled."""
    try:
        config = json.loads(stored)
    except (TypeError, ValueError, RecursionError):
        config = None
    return config if isinstance(config, dict) else {"_unreadable": str(stored)[:1000]}


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> JobRow | None:
    # fetchall() runs the statement to its end: a half-read SELECT would keep its read transaction
    # open, and the connection's next write would then fail at once (SQLITE_BUSY) instead of waiting.
    rows = conn.execute(sql, params).fetchall()
    return _row(rows[0]) if rows else None


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> bool:
    return conn.execute(sql, params).rowcount == 1


def insert(
    conn: sqlite3.Connection, record: JobRecord, grace_seconds: float, log_limit: int, owner: str
) -> None:
    values = dict(
        record,
        config=json.dumps(record["config"]),
        grace_seconds=grace_seconds,
        log_limit=log_limit,
        supervisor=owner,
    )
    columns = ", ".join(values)
    placeholders = ", ".join(f":{column}" for column in values)
    conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({placeholders})", values)


def get(conn: sqlite3.Connection, job_id: str) -> JobRow | None:
    return _one(conn, f"SELECT {_ROW} FROM jobs WHERE id = ?", (job_id,))


def find(conn: sqlite3.Connection, project_id: str, job_id: str) -> JobRow | None:
    return _one(conn, f"SELECT {_ROW} FROM jobs WHERE id = ? AND project_id = ?", (job_id, project_id))


def select(
    conn: sqlite3.Connection, project_id: str | None, status: str | None, limit: int, before: int | None
) -> list[JobRow]:
    """Up to `limit` jobs, newest first, older than sequence `before` when given."""
    clauses: list[str] = ["rowid < ?"]
    params: list[object] = [before if before is not None else _AFTER_NEWEST]
    if project_id is not None:
        clauses.append("project_id = ?")
        params.append(project_id)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    sql = f"SELECT {_ROW} FROM jobs WHERE {' AND '.join(clauses)} ORDER BY rowid DESC LIMIT ?"
    return [_row(values) for values in conn.execute(sql, (*params, limit)).fetchall()]


def unsettled(conn: sqlite3.Connection) -> list[JobRow]:
    """Every job active or still stopping (through the partial index of the rows without completed_at)."""
    return [
        _row(values)
        for values in conn.execute(
            f"SELECT {_ROW} FROM jobs INDEXED BY jobs_unsettled WHERE completed_at IS NULL"
        ).fetchall()
    ]


def forget_unstarted(conn: sqlite3.Connection, job_id: str, lease: str) -> None:
    """Delete a job whose supervisor could not be started (it still holds its start lease)."""
    sql = "DELETE FROM jobs WHERE id = ? AND supervisor = ? AND status = ?"
    conn.execute(sql, (job_id, lease, JobStatus.SUBMITTED))


def successor_owner(conn: sqlite3.Connection) -> str | None:
    owner: str | None = conn.execute("SELECT owner FROM successor WHERE id = 1").fetchone()[0]
    return owner


def change_successor(conn: sqlite3.Connection, seen: str | None, owner: str | None) -> bool:
    """Make `owner` the state directory's successor if it is still `seen`; False if another won."""
    return _changed(conn, "UPDATE successor SET owner = ? WHERE id = 1 AND owner IS ?", (owner, seen))


def change_owner(conn: sqlite3.Connection, job_id: str, seen: str | None, owner: str) -> bool:
    """Make `owner` the job's owner if its owner is still `seen`; False if another caller changed it first."""
    return _changed(
        conn, "UPDATE jobs SET supervisor = ? WHERE id = ? AND supervisor IS ?", (owner, job_id, seen)
    )


def request_cancel(conn: sqlite3.Connection, project_id: str, job_id: str) -> tuple[bool, JobRow | None]:
    """Move an active job to `canceled`. Returns (won, row): exactly one concurrent caller wins."""
    seen = find(conn, project_id, job_id)
    if seen is None or seen.status not in ACTIVE_STATUSES:
        return False, seen  # lost already: no need to queue for the write lock
    now = utc_now()
    won = _one(
        conn,
        "UPDATE jobs SET status = ?, failed_reason = ?, updated_at = ?"
        f" WHERE id = ? AND project_id = ? AND status IN (?, ?) RETURNING {_ROW}",
        (JobStatus.CANCELED, "Canceled on request.", now, job_id, project_id, *_ACTIVE),
    )
    if won is not None:
        return True, won
    return False, find(conn, project_id, job_id)


def mark_working(conn: sqlite3.Connection, job_id: str, process: str, attempt: int) -> bool:
    """Record a started attempt; False if the job was canceled meanwhile."""
    now = utc_now()
    return _changed(
        conn,
        "UPDATE jobs SET status = ?, process = ?, attempt = ?, term_sent_at = NULL, leader_exit = NULL,"
        " started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status IN (?, ?)",
        (JobStatus.WORKING, process, attempt, now, now, job_id, *_ACTIVE),
    )


def set_term_sent(conn: sqlite3.Connection, job_id: str, sent_at: float) -> None:
    """Record when the job's processes got their SIGTERM: the grace period runs from then."""
    conn.execute("UPDATE jobs SET term_sent_at = ? WHERE id = ?", (sent_at, job_id))


def set_leader_exit(conn: sqlite3.Connection, job_id: str, exit_code: int) -> None:
    conn.execute("UPDATE jobs SET leader_exit = ? WHERE id = ?", (exit_code, job_id))


def finish(
    conn: sqlite3.Connection, job_id: str, status: JobStatus, exit_code: int | None, reason: str | None
) -> bool:
    """Finish an active job; False if it was canceled first (then only the stop is recorded)."""
    now = utc_now()
    if _changed(
        conn,
        "UPDATE jobs SET status = ?, exit_code = ?, failed_reason = ?, completed_at = ?, updated_at = ?"
        " WHERE id = ? AND status IN (?, ?)",
        (status, exit_code, reason, now, now, job_id, *_ACTIVE),
    ):
        return True
    record_stop(conn, job_id, exit_code)
    return False


def record_stop(conn: sqlite3.Connection, job_id: str, exit_code: int | None) -> None:
    """Record, once, that no process of a canceled job is left."""
    now = utc_now()
    conn.execute(
        "UPDATE jobs SET completed_at = ?, exit_code = ?, updated_at = ?"
        " WHERE id = ? AND status = ? AND completed_at IS NULL",
        (now, exit_code, now, job_id, JobStatus.CANCELED),
    )


def prune(conn: sqlite3.Connection, finished_before: str) -> list[str]:
    """Delete the jobs whose stop was recorded before `finished_before`; returns their ids."""
    rows = conn.execute(
        "DELETE FROM jobs WHERE completed_at IS NOT NULL AND completed_at < ? AND status IN (?, ?, ?)"
        " RETURNING id",
        (finished_before, *_TERMINAL),
    ).fetchall()
    return [row[0] for row in rows]
