"""Every request is answered (issue 20, "answers lost"), through real server processes:

- a record holding a lone surrogate (a local job started from a directory whose name is not UTF-8, a
  provider answering "\\ud800") is answered, escaped or refused, and the server serves on, over stdio
  and over HTTP;
- a stdio client that closes stdin right after its tools/call still gets the answer;
- the call timeout bounds a call whose SQLite write waits on a lock another process holds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..battery_support import (
    RawStdioServer,
    error_code,
    structured,
    submit_here,
    tool_result,
    veryfront_config,
    wait_for_stop,
)
from ..conftest import CLI, client, env_for, start_http_server, stop_http_server, wait_for_process_group
from ..fakes import CANARY_TOKEN, CASES, Fault
from ..mcp_wire import INITIALIZE

# The adversarial battery: CI runs it in full; the inner loop (`-m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

NOT_UTF8 = b"caf\xe9"  # Latin-1 "café": a legal Linux file name, not UTF-8
ESCAPED = "caf\\udce9"  # how the answer writes it


@pytest.fixture
def non_utf8_job(home: Path, tmp_path: Path) -> dict[str, Any]:
    """A finished local job submitted through the CLI from a directory whose name is not UTF-8."""
    directory = os.path.join(os.fsencode(tmp_path), NOT_UTF8)
    os.mkdir(directory)
    done = subprocess.run(
        [*CLI, "submit", "--project", "p", "--", "true"],
        cwd=directory,
        env=env_for(home),
        capture_output=True,
        check=True,
        timeout=60,
    )
    record: dict[str, Any] = json.loads(done.stdout)
    wait_for_stop(home, record["id"])
    return record


def test_stdio_answers_a_record_with_a_lone_surrogate_escaped_and_serves_on(
    home: Path, tmp_path: Path, non_utf8_job: dict[str, Any]
) -> None:
    server = RawStdioServer(home, stderr_path=tmp_path / "stderr.txt")
    try:
        server.initialize()
        arguments = {"project_reference": "p", "job_id": non_utf8_job["id"]}
        for _ in range(3):  # the server lived through the first answer
            record = structured(tool_result(server.call_tool("get_job", arguments)))
            assert record["config"]["cwd"].endswith(ESCAPED)
        page = structured(tool_result(server.call_tool("list_jobs", {"project_reference": "p"})))
        assert page["jobs"][0]["config"]["cwd"].endswith(ESCAPED)
        canceled = tool_result(server.call_tool("cancel_job", arguments))
        assert error_code(canceled) == "not_cancellable"
    finally:
        stderr = server.close()
    assert server.process.returncode == 0, stderr


@pytest.mark.anyio
async def test_http_answers_a_record_with_a_lone_surrogate_escaped(
    home: Path, non_utf8_job: dict[str, Any]
) -> None:
    server = start_http_server(home)
    try:
        async with client(server.url, "legacy") as session:
            for _ in range(2):
                result = await session.call_tool(
                    "get_job", {"project_reference": "p", "job_id": non_utf8_job["id"]}
                )
                assert not result.is_error, result
                assert result.structured_content is not None
                assert result.structured_content["config"]["cwd"].endswith(ESCAPED)
    finally:
        assert stop_http_server(server) == ""


def test_a_provider_answer_with_a_lone_surrogate_is_upstream_error_and_the_server_serves_on(
    home: Path, tmp_path: Path
) -> None:
    case = CASES["veryfront"]
    fake = case.fake(CANARY_TOKEN)
    config = veryfront_config(tmp_path / "config.toml", fake, "max_retries = 0")
    server = RawStdioServer(
        home, "--config", str(config), stderr_path=tmp_path / "stderr.txt", env={"VF_TOKEN": CANARY_TOKEN}
    )
    try:
        job_id = case.add_active(fake)
        server.initialize()
        arguments = {"project_reference": case.project, "job_id": job_id}
        fake.fail(Fault.LONE_SURROGATE, times=2)
        for tool, tool_arguments in (
            ("get_job", arguments),
            ("list_jobs", {"project_reference": case.project}),
        ):
            result = tool_result(server.call_tool(tool, tool_arguments))
            assert error_code(result) == "upstream_error", result
            assert "lone UTF-16 surrogate" in result["content"][0]["text"]
        assert structured(tool_result(server.call_tool("get_job", arguments)))["id"] == job_id
    finally:
        stderr = server.close()
        fake.close()
    assert server.process.returncode == 0, stderr


def test_stdio_answers_the_calls_under_way_when_stdin_closes(home: Path) -> None:
    """`(cat requests) | cancel-job-mcp`: stdin ends right after the tools/call lines."""
    running = submit_here(home, "p", "sleep", "600")
    wait_for_process_group(home, running["id"])
    lines = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "cancel_job", "arguments": {"project_reference": "p", "job_id": running["id"]}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "get_job", "arguments": {"project_reference": "p", "job_id": running["id"]}}},
    ]  # fmt: skip
    done = subprocess.run(
        CLI,
        input=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        env=env_for(home),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answers = {answer["id"]: answer for answer in map(json.loads, done.stdout.splitlines())}
    assert sorted(answers) == [1, 2, 3], done.stdout
    assert structured(tool_result(answers[2]))["status"] == "canceled"
    assert structured(tool_result(answers[3]))["id"] == running["id"]


HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # held until the test closes stdin
"""


def test_the_call_timeout_bounds_a_cancel_waiting_on_a_sqlite_lock(home: Path, tmp_path: Path) -> None:
    running = submit_here(home, "p", "sleep", "600")
    wait_for_process_group(home, running["id"])
    server = RawStdioServer(home, "serve", "--call-timeout", "2", stderr_path=tmp_path / "stderr.txt")
    locker = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(home / "jobs.sqlite3")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline() == "locked\n"
        server.initialize()
        arguments = {"project_reference": "p", "job_id": running["id"]}
        # The lock is held until this test lets go of it: any answer now is the timeout's.
        result = tool_result(server.call_tool("cancel_job", arguments, timeout=60))
        assert locker.poll() is None
        assert error_code(result) == "timeout", result
        text = result["content"][0]["text"]
        assert "within 2 seconds" in text
        assert "not confirmed" in text
        assert "get_job" in text
        # Reads do not wait on the writer (WAL): the job is still running, the call answered.
        assert structured(tool_result(server.call_tool("get_job", arguments)))["status"] == "working"
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait(timeout=30)
    # With the lock released, cancel again: the record comes back canceled.
    record = structured(tool_result(server.call_tool("cancel_job", arguments, timeout=60)))
    assert record["status"] == "canceled"
    server.close()
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        assert conn.execute("SELECT status FROM jobs WHERE id = ?", (running["id"],)).fetchone() == (
            "canceled",
        )
