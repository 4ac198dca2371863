"""The audit trail: one row for every cancel attempt (the tools and the CLI, on any transport).

It is its own SQLite file in the state directory, `audit.sqlite3` (mode 0600), not a table of the
local runtime's `jobs.sqlite3`: it must exist when no local job ever ran (a server in front of hosted
providers only), the jobs database's schema and its write lock belong to the runtime and its
supervisors, and a trail kept apart can be kept longer, copied or handed to someone else alone.

A row is written before the backend is asked to cancel (its outcome empty) and completed after, so an
attempt interrupted by a crash still leaves its row. If that first write fails, the cancel is refused:
there is no cancel without its row. A row holds identifiers, names and codes, never a token or an
argument that broke the identifier rules (such a value could be anything a model pasted).

The same file holds the confirmations already used (`claim`), so that a sealed confirmation state
cannot be replayed, even to another worker process.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from .caller import Caller
from .errors import audit_unavailable
from .record import format_timestamp, utc_now

AUDIT_FILE = "audit.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    tool TEXT NOT NULL,
    transport TEXT NOT NULL,
    principal TEXT,
    client_name TEXT,
    client_version TEXT,
    project TEXT,
    job_id TEXT,
    backend TEXT,
    confirmation TEXT NOT NULL,
    outcome TEXT,
    status TEXT
);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at);
CREATE TABLE IF NOT EXISTS used_confirmations (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);
"""
COLUMNS = (
    "at", "tool", "transport", "principal", "client_name", "client_version", "project", "job_id",
    "backend", "confirmation", "outcome", "status",
)  # fmt: skip
_INSERT = f"INSERT INTO attempts ({', '.join(COLUMNS[:10])}) VALUES ({', '.join('?' * 10)})"
OK = "ok"  # the outcome of a cancel the backend accepted; any other outcome is an error code

T = TypeVar("T")


class Confirmation(StrEnum):
    """Whether, and how, a person confirmed an attempt."""

    NOT_REQUIRED = "not_required"  # the configuration asks no confirmation for this project
    ACCEPTED = "accepted"  # the person said yes
    DECLINED = "declined"  # the person said no
    DISMISSED = "dismissed"  # the person closed the question without answering
    FALLBACK_ALLOW = "fallback_allow"  # the client could not ask; the fallback let it through
    FALLBACK_DENY = "fallback_deny"  # the client could not ask; the fallback refused it


@dataclass(frozen=True)
class Attempt:
    """What the audit trail needs to know about a cancel besides its job."""

    tool: str
    caller: Caller
    confirmation: Confirmation = Confirmation.NOT_REQUIRED


def audit_path(home: Path) -> Path:
    return home / AUDIT_FILE


class AuditLog:
    """The audit file of one state directory.

    An attempt's writes are made on the event loop when SQLite can make them at once (an uncontended
    write to a WAL database commits without an fsync, in tens of microseconds: two trips to a worker
    thread cost ten times that); when another process holds the write lock, in a worker thread that
    waits for it.
    """

    def __init__(self, home: Path) -> None:
        self.path = audit_path(home)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Opened by the first write in a worker thread; never waits for a lock (busy_timeout 0).
        self._loop_conn: sqlite3.Connection | None = None

    async def begin(
        self, attempt: Attempt, project: str | None, job_id: str | None, backend: str | None
    ) -> int:
        """Record an attempt about to be made; returns its row id for `finish`."""
        caller = attempt.caller
        values = (
            utc_now(), attempt.tool, caller.transport, caller.principal, caller.client_name,
            caller.client_version, project, job_id, backend, attempt.confirmation.value,
        )  # fmt: skip

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(_INSERT, values)
            return int(cursor.lastrowid or 0)

        return await self._run(insert)

    async def finish(self, row: int, outcome: str, status: str | None) -> None:
        await self._run(
            lambda conn: conn.execute(
                "UPDATE attempts SET outcome = ?, status = ? WHERE id = ?", (outcome, status, row)
            )
        )

    async def claim(self, nonce: str, expires: float) -> bool:
        """True the first time `nonce` is claimed (until `expires`, a Unix time), False ever after."""

        def insert(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM used_confirmations WHERE expires < ?", (time.time(),))
            try:
                conn.execute("INSERT INTO used_confirmations VALUES (?, ?)", (nonce, expires))
            except sqlite3.IntegrityError:
                return False
            return True

        return await self._run(insert)

    def entries(self, since: datetime | None = None, project: str | None = None) -> list[dict[str, Any]]:
        """The rows, oldest first: those recorded at or after `since`, of `project` (as given, or
        the same project named with a backend prefix) when given."""
        query = f"SELECT {', '.join(COLUMNS)} FROM attempts WHERE at >= ?"
        parameters: list[Any] = [format_timestamp(since) if since else ""]
        if project is not None:
            query += " AND (project = ? OR substr(project, -length(?) - 1) = ':' || ?)"
            parameters += [project, project, project]
        rows = self._call(lambda conn: conn.execute(query + " ORDER BY id", parameters).fetchall())
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def prune(self, before: datetime) -> int:
        """Delete the rows recorded before `before`; returns how many."""
        cursor = self._call(
            lambda conn: conn.execute("DELETE FROM attempts WHERE at < ?", (format_timestamp(before),))
        )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            for conn in (self._conn, self._loop_conn):
                if conn is not None:
                    conn.close()
            self._conn = self._loop_conn = None

    async def _run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        if self._loop_conn is not None:
            try:
                return action(self._loop_conn)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise audit_unavailable(self.path, error) from None
            except (sqlite3.Error, OSError) as error:
                raise audit_unavailable(self.path, error) from None
        return await anyio.to_thread.run_sync(self._call_opening_the_loop_connection, action)

    def _call_opening_the_loop_connection(self, action: Callable[[sqlite3.Connection], T]) -> T:
        result = self._call(action)
        if self._loop_conn is None:
            with contextlib.suppress(sqlite3.Error):  # then the worker thread goes on serving
                self._loop_conn = open_loop_connection(self.path)
        return result

    def _call(self, action: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._lock:
                return action(self._connection())
        except (sqlite3.Error, OSError) as error:
            raise audit_unavailable(self.path, error) from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_audit(self.path)
        return self._conn


def open_loop_connection(path: Path) -> sqlite3.Connection:
    """A second connection to the (already created) audit database that never waits for a lock."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous = NORMAL")  # per connection: a commit in WAL mode, no fsync
    return conn


def open_audit(path: Path) -> sqlite3.Connection:
    """The audit database in autocommit mode, created readable by its owner only (SQLite gives its
    -wal and -shm files the database file's mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn
