"""A settled local job (terminal, its stop recorded) is answered from a read on the event loop.

Canceling it again changes nothing, so the answer must need no write transaction: it comes back while
another process holds the database's write lock (a writer that, before, made the cancel wait up to the
30 s busy timeout). A replaced database file is never read through the event loop's old connection.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from cancel_job_mcp.backends.local.runtime import LocalBackend, submit_job
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobRecord

PROJECT = "settled"
LOCK_HELD_LIMIT = 5.0  # far below the store's 30 s busy timeout, far above a read on a busy machine


async def settle(backend: LocalBackend, job_id: str) -> JobRecord:
    """Poll until the job is terminal and its stop recorded."""
    with anyio.fail_after(60):
        while True:  # the supervisor is another process: there is no event to wait on, only the record
            record = await backend.get_job(PROJECT, job_id)
            if LocalBackend.stop_polling.has_stopped(record):
                return record
            await anyio.sleep(0.02)
    raise AssertionError("unreachable")


@contextmanager
def write_lock_held(home: Path) -> Iterator[None]:
    """Another connection holds the write lock (what a busy supervisor or CLI does for a moment)."""
    conn = sqlite3.connect(home / "jobs.sqlite3", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.anyio
async def test_canceling_a_canceled_job_needs_no_write_lock(home: Path) -> None:
    job = submit_job(home, PROJECT, ["sleep", "600"], grace_seconds=1)
    backend = LocalBackend(home)
    try:
        await backend.cancel_job(PROJECT, job["id"])
        settled = await settle(backend, job["id"])

        with write_lock_held(home), anyio.fail_after(LOCK_HELD_LIMIT):
            again = await backend.cancel_job(PROJECT, job["id"])
            read = await backend.get_job(PROJECT, job["id"])
    finally:
        await backend.aclose()
    assert again == settled  # unchanged: not even updated_at moved
    assert read == settled


@pytest.mark.anyio
async def test_canceling_a_completed_job_is_refused_without_a_write_lock(home: Path) -> None:
    job = submit_job(home, PROJECT, ["true"])
    backend = LocalBackend(home)
    try:
        completed = await settle(backend, job["id"])
        assert completed["status"] == "completed"

        with write_lock_held(home), anyio.fail_after(LOCK_HELD_LIMIT), pytest.raises(ToolError) as refused:
            await backend.cancel_job(PROJECT, job["id"])
        assert refused.value.code is ErrorCode.NOT_CANCELLABLE
        assert (await backend.get_job(PROJECT, job["id"])) == completed
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_a_replaced_database_is_not_read_through_the_old_connection(home: Path) -> None:
    kept = submit_job(home, PROJECT, ["true"])
    backend = LocalBackend(home)
    try:
        await settle(backend, kept["id"])
        snapshot = home / "snapshot.sqlite3"
        shutil.copy(home / "jobs.sqlite3", snapshot)  # holds `kept` only
        gone = submit_job(home, PROJECT, ["true"])
        await settle(backend, gone["id"])  # both the worker thread and the event loop have read it

        database = home / "jobs.sqlite3"
        for suffix in ("-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        snapshot.replace(database)  # a new file (new inode) in its place

        with pytest.raises(ToolError) as missing:
            await backend.get_job(PROJECT, gone["id"])
        assert missing.value.code is ErrorCode.NOT_FOUND
        assert (await backend.get_job(PROJECT, kept["id"]))["id"] == kept["id"]
    finally:
        await backend.aclose()
