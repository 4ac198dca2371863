"""get_job and list_jobs on the local runtime, cursors that cannot be tampered with, and read-only mode.

The tests that only read and call share one server and MCP session (`shared`), each in projects of its own."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from mcp import MCPError

from cancel_job_mcp.schemas import load_schema

from .conftest import client, run_cli, stdio_server, submit, wait_until

pytestmark = pytest.mark.xdist_group(__name__)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    value: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == value
    return value


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session can serve several tests


@dataclass
class Shared:
    home: Path
    session: Any


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    home = tmp_path_factory.mktemp("home")
    async with client(stdio_server(home)) as session:
        yield Shared(home, session)


def test_the_new_schemas_share_the_contract() -> None:
    assert load_schema("get_job.output") == load_schema("cancel_job.output")
    get_input, cancel_input = load_schema("get_job.input"), load_schema("cancel_job.input")
    assert get_input["required"] == cancel_input["required"]
    assert {name: spec["type"] for name, spec in get_input["properties"].items()} == {
        "project_reference": "string",
        "job_id": "string",
    }
    record = load_schema("cancel_job.output")
    del record["$schema"]
    assert load_schema("list_jobs.output")["properties"]["jobs"]["items"] == record


@pytest.mark.anyio
async def test_get_job_returns_the_record_and_respects_the_project(shared: Shared) -> None:
    job = submit(shared.home, "get-alpha", "true")
    session = shared.session
    found = structured(
        await session.call_tool("get_job", {"project_reference": "get-alpha", "job_id": job["id"]})
    )
    other = await session.call_tool("get_job", {"project_reference": "get-beta", "job_id": job["id"]})
    Draft7Validator(load_schema("get_job.output")).validate(found)
    assert found["id"] == job["id"]
    assert other.is_error
    assert other.content[0].text.startswith("not_found: ")


@pytest.mark.slow  # seven jobs submitted through the CLI, one process each
@pytest.mark.anyio
async def test_list_jobs_pages_newest_first_and_filters_by_status(shared: Shared) -> None:
    home, session = shared.home, shared.session
    finished = [submit(home, "pages", "true") for _ in range(5)]
    wait_until(lambda: all(job_status(home, job["id"]) == "completed" for job in finished))
    running = submit(home, "pages", "sleep", "600")
    wait_until(lambda: job_status(home, running["id"]) == "working")  # `submitted` until its supervisor runs
    submit(home, "pages-other", "true")
    validator = Draft7Validator(load_schema("list_jobs.output"))

    pages, cursor = [], None
    while True:
        arguments: dict[str, Any] = {"project_reference": "pages", "limit": 2}
        if cursor is not None:
            arguments["cursor"] = cursor
        page = structured(await session.call_tool("list_jobs", arguments))
        validator.validate(page)
        pages.append([job["id"] for job in page["jobs"]])
        if (cursor := page["next_cursor"]) is None:
            break
    working = structured(
        await session.call_tool("list_jobs", {"project_reference": "pages", "status": "working"})
    )
    await session.call_tool("cancel_job", {"project_reference": "pages", "job_id": running["id"]})

    assert len(pages) >= 3
    listed = [job_id for page in pages for job_id in page]
    assert listed == [running["id"], *reversed([job["id"] for job in finished])]
    assert [job["id"] for job in working["jobs"]] == [running["id"]]
    assert working["next_cursor"] is None


def job_status(home: Path, job_id: str) -> str:
    """The status the runtime recorded, read from its database (a poll that spawns no process)."""
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        (status,) = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return str(status)


@pytest.mark.anyio
async def test_a_tampered_or_replayed_cursor_is_refused(shared: Shared) -> None:
    for _ in range(3):
        submit(shared.home, "cursors", "true")
    session = shared.session
    first = structured(await session.call_tool("list_jobs", {"project_reference": "cursors", "limit": 1}))
    cursor = first["next_cursor"]
    payload, signature = cursor.split(".")
    attempts = {
        "edited": f"{payload[:-2]}AA.{signature}",
        "forged signature": f"{payload}.{'A' * len(signature)}",
        "garbage": "not-a-cursor",
        "non-ascii": "\u00e9\u00e9.\u00e9",
    }
    for name, bad in attempts.items():
        result = await session.call_tool("list_jobs", {"project_reference": "cursors", "cursor": bad})
        assert result.is_error, name
        assert result.content[0].text.startswith("invalid_argument: cursor: "), name
    forged_elsewhere = await session.call_tool(
        "list_jobs", {"project_reference": "nowhere:demo", "cursor": attempts["edited"]}
    )
    assert forged_elsewhere.content[0].text.startswith("invalid_argument: cursor: "), "checked first"
    replayed = await session.call_tool(
        "list_jobs", {"project_reference": "cursors", "status": "completed", "cursor": cursor}
    )
    assert replayed.content[0].text.startswith("invalid_argument: cursor: ")
    ok = structured(await session.call_tool("list_jobs", {"project_reference": "cursors", "cursor": cursor}))
    assert len(ok["jobs"]) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"project_reference": "a", "limit": 0}, "limit: 0 is less than the minimum of 1"),
        ({"project_reference": "a", "limit": 101}, "limit: 101 is greater than the maximum of 100"),
        ({"project_reference": "a", "status": "running"}, 'status: must be one of "submitted", "working"'),
        ({"project_reference": "a", "limit": "5"}, "limit: must be of type integer or null, got string"),
    ],
)
async def test_list_jobs_arguments_are_checked(
    shared: Shared, arguments: dict[str, Any], expected: str
) -> None:
    result = await shared.session.call_tool("list_jobs", arguments)
    assert result.is_error
    assert result.content[0].text.startswith("invalid_argument: ")
    assert expected in result.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["flag", "config"])
async def test_read_only_mode_neither_lists_nor_runs_cancel_job(home: Path, tmp_path: Path, how: str) -> None:
    job = submit(home, "alpha", "sleep", "600")
    if how == "flag":
        target = stdio_server(home, "serve", "--read-only")
    else:
        config = tmp_path / "config.toml"
        config.write_text("read_only = true\n")
        target = stdio_server(home, "--config", str(config))
    async with client(target, "legacy") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        with pytest.raises(MCPError, match=r"Unknown tool: cancel_job \(this server is read-only\)"):
            await session.call_tool("cancel_job", {"project_reference": "alpha", "job_id": job["id"]})
        still = structured(
            await session.call_tool("get_job", {"project_reference": "alpha", "job_id": job["id"]})
        )
    assert names == ["get_job", "list_jobs", "get_job_logs", "wait_job"]
    assert still["status"] in ("submitted", "working")
    run_cli(home, "cancel", "alpha", job["id"])


def test_the_cli_lists_a_project_through_the_tool_code_path(home: Path) -> None:
    jobs = [submit(home, "alpha", "true") for _ in range(3)]
    table = run_cli(home, "jobs", "--project", "alpha").stdout.splitlines()
    assert [line.split()[0] for line in table[1:]] == [job["id"] for job in reversed(jobs)]
    refused = run_cli(home, "jobs", "--project", "../x", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("invalid_argument: project_reference")
