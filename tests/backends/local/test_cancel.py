"""Cancel real local jobs through a real MCP client, over stdio and Streamable HTTP, in both eras."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft7Validator

from ...battery_support import db_row, submit_here, wait_for_stop, wait_ignoring_sigterm
from ...conftest import (
    IGNORES_TERM,
    TERM_LOGGER,
    HttpServer,
    client,
    process_group_alive,
    run_cli,
    show,
    start_http_server,
    stdio_server,
    stop_http_server,
    wait_for_process_group,
    wait_until,
)

pytestmark = pytest.mark.xdist_group(__name__)

ERAS = ("auto", "legacy")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state directory for the module: each test has its own jobs, and one HTTP server serves all."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def http_server(home: Path) -> Iterator[HttpServer]:
    server = start_http_server(home)
    yield server
    assert stop_http_server(server) == "", "the HTTP server wrote to stdout"


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    record: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == record
    return record


def error_text(result: Any) -> str:
    assert result.is_error
    assert result.structured_content is None
    text: str = result.content[0].text
    return text


async def cancel(target: Any, project: str, job_id: str, mode: str = "auto") -> Any:
    async with client(target, mode) as session:
        return await session.call_tool("cancel_job", {"project_reference": project, "job_id": job_id})


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_cancel_over_stdio_stops_the_process_group(
    home: Path, mode: str, record_validator: Draft7Validator
) -> None:
    job = submit_here(home, "demo", "sleep", "600")
    pgid = wait_for_process_group(home, job["id"])

    record = structured(await cancel(stdio_server(home), "demo", job["id"], mode))

    record_validator.validate(record)
    assert record["status"] == "canceled"
    assert record["completed_at"] is not None
    assert record["exit_code"] == 128 + 15
    assert not process_group_alive(pgid)
    assert show(home, "demo", job["id"]) == record


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_cancel_over_http_stops_the_process_group(
    home: Path, http_server: HttpServer, mode: str, record_validator: Draft7Validator
) -> None:
    job = submit_here(home, "demo", "sleep", "600")
    pgid = wait_for_process_group(home, job["id"])

    record = structured(await cancel(http_server.url, "demo", job["id"], mode))

    record_validator.validate(record)
    assert record["status"] == "canceled"
    assert not process_group_alive(pgid)


@pytest.mark.slow
@pytest.mark.anyio
async def test_canceling_twice_returns_the_same_record(home: Path, http_server: HttpServer) -> None:
    job = submit_here(home, "demo", "sleep", "600")
    wait_for_process_group(home, job["id"])
    async with client(http_server.url) as session:
        arguments = {"project_reference": "demo", "job_id": job["id"]}
        first = structured(await session.call_tool("cancel_job", arguments))
        second = structured(await session.call_tool("cancel_job", arguments))
    assert first == second


@pytest.mark.slow
@pytest.mark.anyio
async def test_fifty_concurrent_cancels_make_one_transition(
    home: Path, tmp_path: Path, http_server: HttpServer
) -> None:
    signals = tmp_path / "signals.txt"
    job = submit_here(home, "demo", sys.executable, "-c", TERM_LOGGER, str(signals))
    pgid = wait_for_process_group(home, job["id"])
    wait_until(lambda: Path(f"{signals}.ready").exists())
    records: list[dict[str, Any]] = []

    async with client(http_server.url) as session:
        await session.list_tools()  # else the SDK lists them for each result before the first listing

        async def cancel_once() -> None:
            result = await session.call_tool("cancel_job", {"project_reference": "demo", "job_id": job["id"]})
            records.append(structured(result))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(cancel_once)

    assert len(records) == 50
    assert all(record == records[0] for record in records)
    assert records[0]["status"] == "canceled"
    assert records[0]["exit_code"] == 0
    assert signals.read_text() == "TERM\n", "the job was signalled more than once"
    assert not process_group_alive(pgid)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(
    home: Path, http_server: HttpServer
) -> None:
    job = submit_here(home, "demo", sys.executable, "-c", IGNORES_TERM, grace_seconds=1)
    pgid = wait_for_process_group(home, job["id"])
    wait_ignoring_sigterm(pgid)
    started = anyio.current_time()

    record = structured(await cancel(http_server.url, "demo", job["id"]))

    assert anyio.current_time() - started >= 1.0
    assert record["status"] == "canceled"
    assert record["exit_code"] == 128 + 9
    assert not process_group_alive(pgid)


@pytest.mark.slow
def test_a_job_that_exits_on_sigterm_stays_canceled(home: Path, tmp_path: Path) -> None:
    """The job finishes with exit 0 as it is canceled: the record must never say completed."""
    job = submit_here(home, "demo", sys.executable, "-c", TERM_LOGGER, str(tmp_path / "signals.txt"))
    wait_until(lambda: Path(f"{tmp_path / 'signals.txt'}.ready").exists())
    record = json.loads(run_cancel(home, "demo", job["id"]).stdout)
    assert record["status"] == "canceled"
    assert record["exit_code"] == 0
    assert db_row(home, job["id"])["status"] == "canceled"


def run_cancel(home: Path, project: str, job_id: str) -> Any:
    return run_cli(home, "cancel", project, job_id, check=False)


@pytest.mark.slow
def test_racing_cancels_and_completions_agree_with_the_final_record(home: Path) -> None:
    """Jobs that end on their own while being canceled: whatever cancel said is what stays."""
    for _ in range(8):
        job = submit_here(home, "race", "true")
        done = run_cancel(home, "race", job["id"])
        final = wait_for_stop(home, job["id"])
        if done.returncode == 0:
            assert json.loads(done.stdout)["status"] == "canceled"
            assert final["status"] == "canceled"
        else:
            assert done.stderr.startswith("not_cancellable:")
            assert final["status"] == "completed"


def test_a_completed_job_is_not_cancellable(home: Path) -> None:
    job = submit_here(home, "demo", "true")
    assert wait_for_stop(home, job["id"])["status"] == "completed"
    done = run_cancel(home, "demo", job["id"])
    assert done.returncode == 1
    assert done.stderr.startswith("not_cancellable: ")
    assert "on the local runtime is already completed (since " in done.stderr


@pytest.mark.slow
@pytest.mark.anyio
async def test_unknown_job_and_other_project_give_not_found_and_stop_nothing(
    home: Path, http_server: HttpServer
) -> None:
    job = submit_here(home, "alpha", "sleep", "600")
    pgid = wait_for_process_group(home, job["id"])
    async with client(http_server.url) as session:
        unknown = await session.call_tool("cancel_job", {"project_reference": "alpha", "job_id": "job_nope"})
        other = await session.call_tool("cancel_job", {"project_reference": "beta", "job_id": job["id"]})
    assert error_text(unknown).startswith("not_found: ")
    assert error_text(other).startswith("not_found: ")
    assert process_group_alive(pgid)
    assert db_row(home, job["id"])["status"] == "working"
    await cancel(http_server.url, "alpha", job["id"])


INVALID_ARGUMENTS = {
    "missing field": ({"project_reference": "demo"}, "job_id: is required"),
    "extra field": (
        {"project_reference": "demo", "job_id": "x", "force": True},
        "'force': is not an accepted",
    ),
    "wrong type": (
        {"project_reference": "demo", "job_id": 42},
        "job_id: must be of type string, got integer",
    ),
    "empty string": ({"project_reference": "demo", "job_id": ""}, "job_id: must be a job id"),
    "10 kB string": ({"project_reference": "d" * 10_240, "job_id": "x"}, "(10240 characters)"),
    "path-like": ({"project_reference": "../x", "job_id": "x"}, "project_reference: must be"),
    "path-like job id": ({"project_reference": "demo", "job_id": "../../etc"}, "job_id: must be"),
    "no arguments": (None, "project_reference: is required"),
}


@pytest.mark.slow
@pytest.mark.anyio
async def test_invalid_arguments_are_refused_and_change_nothing(home: Path, http_server: HttpServer) -> None:
    job = submit_here(home, "demo", "sleep", "600")
    wait_for_process_group(home, job["id"])
    before = dump_database(home)
    async with client(http_server.url) as session:
        for name, (arguments, expected) in INVALID_ARGUMENTS.items():
            text = error_text(await session.call_tool("cancel_job", arguments))
            assert text.startswith("invalid_argument: "), name
            assert expected in text, (name, text)
            assert len(text) < 1000, name
    assert dump_database(home) == before
    await cancel(http_server.url, "demo", job["id"])


def dump_database(home: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
