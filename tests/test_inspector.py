"""The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12.0), a real third-party client, on our server.

It lists the tools and cancels a real local job over stdio and over Streamable HTTP; a call for a job that
does not exist comes back as an isError result, which the Inspector turns into a non-zero exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from .conftest import HttpServer, env_for, start_http_server, stop_http_server, submit
from .node_tools import INSPECTOR, require

pytestmark = pytest.mark.slow
NODE = require(INSPECTOR)
SERVER_COMMAND = [sys.executable, "-m", "cancel_job_mcp"]
INSPECTOR_TOOL_IS_ERROR_EXIT = 5
HTTP_TOKENS_ENV = "CANCEL_JOB_MCP_HTTP_TOKENS"
TOKEN = "inspector-token-0123456789abcdef"


def inspector(home: Path, target: list[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the Inspector CLI once: (exit code, the JSON documents it printed on stdout, stderr)."""
    env = env_for(home, MCP_CATALOG_PATH=str(home / "inspector-catalog.json"))
    done = subprocess.run(
        [str(NODE), str(INSPECTOR), "--cli", "-q", "--format", "json", *target, *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=90,
    )
    documents = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, documents, done.stderr


def call_cancel_job(
    home: Path, target: list[str], project: str, job_id: str
) -> tuple[int, dict[str, Any], str]:
    arguments = json.dumps({"project_reference": project, "job_id": job_id})
    code, documents, stderr = inspector(
        home, target, "--method", "tools/call", "--tool-name", "cancel_job", "--tool-args-json", arguments
    )
    assert documents, f"no JSON on stdout (exit {code}): {stderr}"
    return code, documents[0], stderr


@pytest.fixture(params=["stdio", "http", "http with a token"])
def target(request: pytest.FixtureRequest, home: Path) -> Iterator[list[str]]:
    """How the Inspector reaches the server: a command it spawns, or the URL of a running HTTP server."""
    if request.param == "stdio":
        # The Inspector passes the spawned server only a minimal environment: hand it the state dir.
        yield ["-e", f"CANCEL_JOB_MCP_HOME={home}", *SERVER_COMMAND]
        return
    guarded = request.param == "http with a token"
    server: HttpServer = start_http_server(home, **({HTTP_TOKENS_ENV: TOKEN} if guarded else {}))
    header = ["--header", f"Authorization: Bearer {TOKEN}"] if guarded else []
    try:
        yield ["--transport", "http", "--server-url", server.url, *header]
    finally:
        assert stop_http_server(server) == "", "the HTTP server wrote to stdout"


def test_over_http_with_tokens_the_inspector_needs_the_header(home: Path) -> None:
    server = start_http_server(home, **{HTTP_TOKENS_ENV: TOKEN})
    try:
        code, _, _ = inspector(
            home, ["--transport", "http", "--server-url", server.url], "--method", "tools/list"
        )
        assert code != 0, "refused without Authorization"
    finally:
        stop_http_server(server)


def test_lists_cancel_job(home: Path, target: list[str]) -> None:
    code, documents, stderr = inspector(home, target, "--method", "tools/list")
    assert code == 0, stderr
    tools = {tool["name"]: tool for tool in documents[0]["result"]["tools"]}
    assert "cancel_job" in tools, list(tools)
    tool = tools["cancel_job"]
    assert tool["inputSchema"]["required"] == ["project_reference", "job_id"]
    assert tool["outputSchema"]["type"] == "object"
    assert tool["annotations"]["destructiveHint"] is True
    assert tool["annotations"]["readOnlyHint"] is False


def test_cancels_a_running_local_job(
    home: Path, target: list[str], record_validator: Draft7Validator
) -> None:
    job = submit(home, "inspector-proj", "sleep", "60")

    code, document, stderr = call_cancel_job(home, target, "inspector-proj", job["id"])

    assert code == 0, stderr
    result = document["result"]
    assert result["isError"] is False
    record = result["structuredContent"]
    record_validator.validate(record)
    assert (record["id"], record["project_id"], record["status"]) == (job["id"], "inspector-proj", "canceled")
    assert json.loads(result["content"][0]["text"]) == record


def test_not_found_is_an_error_result(home: Path, target: list[str]) -> None:
    submit(home, "inspector-proj", "true")

    code, document, stderr = call_cancel_job(home, target, "inspector-proj", "job_does_not_exist")

    assert code == INSPECTOR_TOOL_IS_ERROR_EXIT, (code, document, stderr)
    result = document["result"]
    assert result["isError"] is True
    assert "structuredContent" not in result
    assert result["content"][0]["text"].startswith("not_found: ")
    assert "tool_is_error" in stderr
