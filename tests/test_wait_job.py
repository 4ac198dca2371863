"""wait_job: a job that finishes within the wait (with progress notifications), one that does not (the
answer says the wait timed out), and a client that gives up on the wait (the job is untouched), through
real MCP clients and real local jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft7Validator
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.schemas import load_schema

from .conftest import (
    HttpServer,
    client,
    show,
    stdio_server,
    submit,
    wait_until,
)

# Runs until the file named by argv[1] exists, then exits 0.
WAITS_FOR_FILE = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.02)\n"


def submit_waiting_job(home: Path, project: str) -> tuple[str, Path]:
    release = home / f"release-{project}"
    job_id = submit(home, project, "python3", "-c", WAITS_FOR_FILE, str(release))["id"]
    wait_until(lambda: show(home, project, job_id)["status"] == "working")
    return job_id, release


def check_record(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    record: dict[str, Any] = result.structured_content
    Draft7Validator(load_schema("wait_job.output")).validate(record)
    return record


def target_for(transport: str, request: pytest.FixtureRequest, home: Path) -> Any:
    if transport == "stdio":
        return stdio_server(home)
    server: HttpServer = request.getfixturevalue("http_server")
    return streamable_http_client(server.url)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_job_that_finishes_within_the_wait_is_terminal_with_progress(
    transport: str, request: pytest.FixtureRequest, home: Path
) -> None:
    job_id, release = submit_waiting_job(home, "finishes")
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, total, message))
        release.touch()  # the wait has begun: now let the job finish

    async with client(target_for(transport, request, home)) as session:
        result = await session.call_tool(
            "wait_job",
            {"project_reference": "finishes", "job_id": job_id, "timeout_seconds": 55},
            progress_callback=on_progress,
        )
    record = check_record(result)
    assert record["status"] == "completed"
    assert record["id"] == job_id
    assert result.content[1].text.startswith(f"Job {job_id} is completed: it is terminal")
    assert updates, "progress notifications while waiting"
    assert all(total == 55 for _, total, _ in updates)
    assert f"Waiting for job {job_id} to finish." in str(updates[0][2])


@pytest.mark.anyio
async def test_a_wait_that_times_out_says_so_with_the_status(home: Path) -> None:
    job_id, release = submit_waiting_job(home, "slow")
    try:
        async with client(stdio_server(home)) as session:
            result = await session.call_tool(
                "wait_job", {"project_reference": "slow", "job_id": job_id, "timeout_seconds": 0.5}
            )
        record = check_record(result)
        assert record["status"] == "working"
        note = result.content[1].text
        assert note.startswith("The wait timed out after ")
        assert f"job {job_id} is still working, not terminal" in note
    finally:
        release.touch()


@pytest.mark.anyio
async def test_a_client_that_cancels_the_wait_ends_it_and_leaves_the_job(home: Path) -> None:
    job_id, release = submit_waiting_job(home, "abandoned")
    waiting = anyio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        waiting.set()

    arguments = {"project_reference": "abandoned", "job_id": job_id}
    try:
        # One call at a time: a wait still running on the server would make the next call 'busy'.
        async with client(stdio_server(home, "serve", "--max-concurrent-calls", "1")) as session:
            async with anyio.create_task_group() as group:

                async def wait() -> None:
                    await session.call_tool(
                        "wait_job", {**arguments, "timeout_seconds": 55}, progress_callback=on_progress
                    )
                    pytest.fail("the wait ended by itself")

                group.start_soon(wait)
                await waiting.wait()
                group.cancel_scope.cancel()

            async def served() -> dict[str, Any] | None:
                result = await session.call_tool("get_job", arguments)
                return None if result.is_error else check_record(result)

            for _ in range(600):  # 30 s: far less than the 55 s the wait would have lasted
                if (record := await served()) is not None:
                    break
                await anyio.sleep(0.05)
            else:
                pytest.fail("the server still runs the abandoned wait (every call is 'busy')")
        assert record["status"] == "working"
        assert show(home, "abandoned", job_id)["status"] == "working"
    finally:
        release.touch()


@pytest.mark.anyio
async def test_bad_bounds_and_unknown_jobs_are_refused(home: Path) -> None:
    async with client(stdio_server(home)) as session:
        for value in (-1, 56, "30"):
            bad = await session.call_tool(
                "wait_job", {"project_reference": "p", "job_id": "job_x", "timeout_seconds": value}
            )
            assert bad.is_error
            assert bad.content[0].text.startswith("invalid_argument: timeout_seconds: "), bad.content[0].text
        missing = await session.call_tool("wait_job", {"project_reference": "p", "job_id": "job_x"})
    assert missing.content[0].text.startswith("not_found: ")


@pytest.mark.anyio
async def test_wait_job_polls_any_backend_until_terminal() -> None:
    from .test_settle import SlowStopBackend, server_with

    backend = SlowStopBackend(reads_until_stopped=4)  # "canceled" on its 4th read: terminal
    updates: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        updates.append(done)

    async with client(server_with(backend, settle_timeout=0), "legacy") as session:
        result = await session.call_tool(
            "wait_job", {"project_reference": "demo", "job_id": "job-1"}, progress_callback=on_progress
        )
    assert check_record(result)["status"] == "canceled"
    assert backend.reads == 4  # the first read, then one a poll
    assert len(updates) == 3
    assert updates == sorted(updates)
    assert result.content[1].text.startswith("Job job-1 is canceled: it is terminal")
