"""The peer for the benchmarks: the same three tools written the way most Python MCP servers are written.

FastMCP (`fastmcp-slim` 4.x, the `bench` extra), decorated functions, pydantic validation from the
signatures, sync SQLite code that FastMCP runs in a worker thread, a dict returned and shaped by the
framework. It reads and writes the local runtime's SQLite file (`$CANCEL_JOB_MCP_HOME/jobs.sqlite3`),
publishes cancel-job-mcp's own output schemas, and input schemas derived from its signatures (the same
fields, types and descriptions, plus the identifier pattern pydantic enforces). It records a cancel and stops
no process: the benchmarks only cancel jobs that are already canceled, where both servers return the record
unchanged.

    python bench/fastmcp_peer.py              stdio
    python bench/fastmcp_peer.py http PORT    Streamable HTTP at http://127.0.0.1:PORT/mcp (uvicorn)
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from pydantic import Field

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
DATABASE = Path(os.environ.get("CANCEL_JOB_MCP_HOME", ".")) / "jobs.sqlite3"
RECORD_COLUMNS = (
    "id, project_id, environment_id, branch_id, cron_job_id, batch_id, name, status, target, config,"
    " timeout_seconds, backoff_limit, exit_code, failed_reason, started_at, completed_at, created_at,"
    " updated_at"
)
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
ProjectReference = Annotated[Identifier, Field(description="Project ID or slug")]
Status = Literal["submitted", "working", "completed", "failed", "canceled"]

mcp = FastMCP("fastmcp-peer", version="0.0.0")
_local = threading.local()


def db() -> sqlite3.Connection:
    """One connection per worker thread, reused (as a careful FastMCP server would)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(DATABASE, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
    return conn


def record(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row) | {"config": json.loads(row["config"])}


def find(project: str, job_id: str) -> sqlite3.Row:
    row = (
        db()
        .execute(f"SELECT {RECORD_COLUMNS} FROM jobs WHERE id = ? AND project_id = ?", (job_id, project))
        .fetchone()
    )
    if row is None:
        raise ToolError(f"not_found: no job {job_id!r} in project {project!r}")
    return row


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


@mcp.tool(output_schema=schema("cancel_job.output"))
def cancel_job(
    project_reference: ProjectReference, job_id: Annotated[Identifier, Field(description="Job ID to cancel")]
) -> dict[str, Any]:
    """Cancel a submitted or running job and return its job record."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    row = (
        db()
        .execute(
            "UPDATE jobs SET status = 'canceled', failed_reason = 'Canceled on request.', updated_at = ?"
            " WHERE id = ? AND project_id = ? AND status IN ('submitted', 'working')"
            f" RETURNING {RECORD_COLUMNS}",
            (now, job_id, project_reference),
        )
        .fetchone()
    )
    row = row or find(project_reference, job_id)
    if row["status"] != "canceled":
        raise ToolError(f"not_cancellable: job {job_id!r} already {row['status']}")
    return record(row)


@mcp.tool(output_schema=schema("get_job.output"))
def get_job(
    project_reference: ProjectReference, job_id: Annotated[Identifier, Field(description="Job ID to look up")]
) -> dict[str, Any]:
    """Read one job's current record without changing anything."""
    return record(find(project_reference, job_id))


@mcp.tool(output_schema=schema("list_jobs.output"))
def list_jobs(
    project_reference: ProjectReference,
    status: Annotated[Status | None, Field(description="Only list jobs in this lifecycle status.")] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="Maximum number of jobs to return (1-100).")] = 20,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
) -> dict[str, Any]:
    """List a project's jobs, newest first."""
    before = int(cursor) if cursor else 2**63 - 1
    rows = (
        db()
        .execute(
            f"SELECT rowid, {RECORD_COLUMNS} FROM jobs WHERE project_id = ? AND rowid < ?"
            " AND (? IS NULL OR status = ?) ORDER BY rowid DESC LIMIT ?",
            (project_reference, before, status, status, limit),
        )
        .fetchall()
    )
    jobs = [{k: v for k, v in record(row).items() if k != "rowid"} for row in rows]
    return {"jobs": jobs, "next_cursor": str(rows[-1]["rowid"]) if len(rows) == limit else None}


def main(argv: list[str]) -> None:
    if argv[:1] == ["http"]:
        mcp.run("http", host="127.0.0.1", port=int(argv[1]), show_banner=False, log_level="WARNING")
    else:
        mcp.run(show_banner=False, log_level="WARNING")


if __name__ == "__main__":
    main(sys.argv[1:])
