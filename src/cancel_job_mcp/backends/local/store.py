"""The local runtime's state: one SQLite file in WAL mode, shared by servers, CLIs and supervisors.

Every state change is a single conditional UPDATE, so concurrent writers cannot step on each
other: a cancel only applies to an active job, and a supervisor only finishes a job that is still
`working`, so `canceled` is never overwritten by a job that finished at the same moment.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ...record import ACTIVE_STATUSES, JobRecord, JobStatus, utc_now

_SCHEMA_VERSION = 1
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
    process TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_project ON jobs (project_id, status);
"""
_ACTIVE = tuple(ACTIVE_STATUSES)
_RECORD_COLUMNS = tuple(JobRecord.__annotations__)
_AFTER_NEWEST = 2**63 - 1
_initialized: set[Path] = set()


@dataclass(frozen=True)
class JobRow:
    """A job as stored: the public record plus the runtime's own bookkeeping."""

    record: JobRecord
    sequence: int
    grace_seconds: float
    attempt: int
    supervisor: str | None
    process: str | None

    @property
    def status(self) -> str:
        return self.record["status"]


def database_path(home: Path) -> Path:
    return home / "jobs.sqlite3"


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (every statement is its own transaction)."""
    if path not in _initialized:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    if path not in _initialized:
        _initialize(conn)
        _initialized.add(path)
    return conn


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_connection(path)
    try:
        yield conn
    finally:
        conn.close()


def _initialize(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    if conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _row(row: sqlite3.Row | None) -> JobRow | None:
    if row is None:
        return None
    values = {column: row[column] for column in _RECORD_COLUMNS}
    values["config"] = json.loads(values["config"])
    return JobRow(
        record=cast(JobRecord, values),
        sequence=row["rowid"],
        grace_seconds=row["grace_seconds"],
        attempt=row["attempt"],
        supervisor=row["supervisor"],
        process=row["process"],
    )


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> JobRow | None:
    return _row(conn.execute(sql, params).fetchone())


def insert(conn: sqlite3.Connection, record: JobRecord, grace_seconds: float) -> None:
    values = dict(record, config=json.dumps(record["config"]), grace_seconds=grace_seconds)
    columns = ", ".join(values)
    placeholders = ", ".join(f":{column}" for column in values)
    conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({placeholders})", values)


def get(conn: sqlite3.Connection, job_id: str) -> JobRow | None:
    return _one(conn, "SELECT rowid, * FROM jobs WHERE id = ?", (job_id,))


def find(conn: sqlite3.Connection, project_id: str, job_id: str) -> JobRow | None:
    return _one(conn, "SELECT rowid, * FROM jobs WHERE id = ? AND project_id = ?", (job_id, project_id))


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
    sql = f"SELECT rowid, * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY rowid DESC LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return [row for row in map(_row, rows) if row is not None]


def set_supervisor(conn: sqlite3.Connection, job_id: str, supervisor: str) -> None:
    conn.execute("UPDATE jobs SET supervisor = ? WHERE id = ?", (supervisor, job_id))


def replace_supervisor(conn: sqlite3.Connection, job_id: str, lost: str, replacement: str) -> bool:
    """Adopt a job whose supervisor is gone; False if another process adopted it first."""
    cursor = conn.execute(
        "UPDATE jobs SET supervisor = ? WHERE id = ? AND supervisor = ?", (replacement, job_id, lost)
    )
    return cursor.rowcount == 1


def request_cancel(conn: sqlite3.Connection, project_id: str, job_id: str) -> tuple[bool, JobRow | None]:
    """Move an active job to `canceled`. Returns (won, row): exactly one concurrent caller wins."""
    now = utc_now()
    won = _one(
        conn,
        "UPDATE jobs SET status = ?, failed_reason = ?, updated_at = ?"
        " WHERE id = ? AND project_id = ? AND status IN (?, ?) RETURNING rowid, *",
        (JobStatus.CANCELED, "Canceled on request.", now, job_id, project_id, *_ACTIVE),
    )
    if won is not None:
        return True, won
    return False, find(conn, project_id, job_id)


def mark_working(conn: sqlite3.Connection, job_id: str, process: str, attempt: int) -> bool:
    """Record a started attempt; False if the job was canceled meanwhile."""
    now = utc_now()
    cursor = conn.execute(
        "UPDATE jobs SET status = ?, process = ?, attempt = ?, started_at = COALESCE(started_at, ?),"
        " updated_at = ? WHERE id = ? AND status IN (?, ?)",
        (JobStatus.WORKING, process, attempt, now, now, job_id, *_ACTIVE),
    )
    return cursor.rowcount == 1


def finish(
    conn: sqlite3.Connection, job_id: str, status: JobStatus, exit_code: int | None, reason: str | None
) -> bool:
    """Finish an active job; False if it was canceled first (then only the stop is recorded)."""
    now = utc_now()
    cursor = conn.execute(
        "UPDATE jobs SET status = ?, exit_code = ?, failed_reason = ?, completed_at = ?, updated_at = ?"
        " WHERE id = ? AND status IN (?, ?)",
        (status, exit_code, reason, now, now, job_id, *_ACTIVE),
    )
    if cursor.rowcount == 1:
        return True
    record_stop(conn, job_id, exit_code)
    return False


def record_stop(conn: sqlite3.Connection, job_id: str, exit_code: int | None) -> None:
    """Record when a canceled job's processes were gone, once."""
    now = utc_now()
    conn.execute(
        "UPDATE jobs SET completed_at = ?, exit_code = COALESCE(exit_code, ?), updated_at = ?"
        " WHERE id = ? AND status = ? AND completed_at IS NULL",
        (now, exit_code, now, job_id, JobStatus.CANCELED),
    )


def fail_if_active(conn: sqlite3.Connection, job_id: str, reason: str) -> bool:
    now = utc_now()
    cursor = conn.execute(
        "UPDATE jobs SET status = ?, failed_reason = ?, completed_at = ?, updated_at = ?"
        " WHERE id = ? AND status IN (?, ?)",
        (JobStatus.FAILED, reason, now, now, job_id, *_ACTIVE),
    )
    return cursor.rowcount == 1
