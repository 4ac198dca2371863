"""The audit trail writes on the event loop while it can, and waits in a worker thread while another
process holds its write lock: a held lock delays an attempt's row, it never refuses the cancel."""

from __future__ import annotations

import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from cancel_job_mcp.audit import AUDIT_FILE, Attempt, AuditLog
from cancel_job_mcp.caller import Caller

pytestmark = pytest.mark.anyio
ATTEMPT = Attempt(tool="cancel_job", caller=Caller(transport="stdio", principal="ada"))

HOLD_THE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()  # until the test says so
conn.execute("COMMIT")
"""


async def test_a_row_waits_for_a_lock_another_process_holds_then_is_written(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)
    first = await audit.begin(ATTEMPT, "demo", "job_1", "local")  # opens the file, in a worker thread
    await audit.finish(first, "ok", "canceled")  # on the loop's own connection
    holder = await anyio.to_thread.run_sync(
        partial(
            subprocess.Popen, [sys.executable, "-c", HOLD_THE_LOCK, str(tmp_path / AUDIT_FILE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
    )  # fmt: skip
    in_a_worker_thread = threading.Event()
    waiting_call = audit._call

    def watched(action: Any) -> Any:
        in_a_worker_thread.set()
        return waiting_call(action)

    audit._call = watched  # type: ignore[method-assign]
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        rows: list[int] = []
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _begin_into(audit, rows))
            # The loop's own connection met the lock and gave the write to a worker thread, which waits.
            assert await anyio.to_thread.run_sync(in_a_worker_thread.wait, 30)
            await anyio.to_thread.run_sync(holder.stdin.write, "release\n")
            await anyio.to_thread.run_sync(holder.stdin.flush)
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
    [second] = rows
    assert second == first + 1
    assert [(e["job_id"], e["outcome"]) for e in audit.entries()] == [("job_1", "ok"), ("job_2", None)]
    audit.close()


async def _begin_into(audit: AuditLog, rows: list[int]) -> None:
    rows.append(await audit.begin(ATTEMPT, "demo", "job_2", "local"))
