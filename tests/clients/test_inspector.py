"""The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12.0), a real third-party client, on our server.

It lists the tools and cancels a real local job over stdio and over Streamable HTTP; a call for a job that
does not exist comes back as an isError result, which the Inspector turns into a non-zero exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from ..conftest import HttpServer, env_for, submit
from ..node_tools import INSPECTOR, require

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
NODE = require(INSPECTOR)
SERVER_COMMAND = [sys.executable, "-m", "cancel_job_mcp"]
INSPECTOR_TOOL_IS_ERROR_EXIT = 5
HTTP_TOKENS_ENV = "CANCEL_JOB_MCP_HTTP_TOKENS"
TOKEN = "inspector-token-0123456789abcdef"


def inspector(home: Path, target: list[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the Inspector CLI once: (exit code, the JSON documents it printed on stdout, stderr)."""
    env = env_for(home, MCP_CATALOG_PATH=str(home / "inspector-catalog.json"))
    done = subprocess.run(
        # The Inspector gives a server 15 s to connect by default; one still importing on a loaded
        # machine took longer (-n 4 beside other work).
        [
            str(NODE),
            str(INSPECTOR),
            "--cli",
            "-q",
            "--format",
            "json",
            "--connect-timeout",
            "120000",
            *target,
            *args,
        ],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
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


@dataclass
class Target:
    """How the Inspector reaches a server (a command it spawns, or a running server's URL), and the
    server's state directory."""

    home: Path
    args: list[str]


@pytest.fixture(scope="module")
def open_server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    return module_http_servers()


@pytest.fixture(scope="module")
def guarded_server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    return module_http_servers(**{HTTP_TOKENS_ENV: TOKEN})


@pytest.fixture(params=["stdio", "http", "http with a token"])
def target(request: pytest.FixtureRequest, home: Path) -> Target:
    """The HTTP servers serve every test of the module: each test works on jobs of its own."""
    if request.param == "stdio":
        # The Inspector passes the spawned server only a minimal environment: hand it the state dir.
        return Target(home, ["-e", f"CANCEL_JOB_MCP_HOME={home}", *SERVER_COMMAND])
    if request.param == "http":
        server: HttpServer = request.getfixturevalue("open_server")
        return Target(server.home, ["--transport", "http", "--server-url", server.url])
    server = request.getfixturevalue("guarded_server")
    header = ["--header", f"Authorization: Bearer {TOKEN}"]
    return Target(server.home, ["--transport", "http", "--server-url", server.url, *header])


def test_over_http_with_tokens_the_inspector_needs_the_header(guarded_server: HttpServer) -> None:
    code, _, _ = inspector(
        guarded_server.home,
        ["--transport", "http", "--server-url", guarded_server.url],
        "--method",
        "tools/list",
    )
    assert code != 0, "refused without Authorization"


def test_lists_cancel_job(target: Target) -> None:
    code, documents, stderr = inspector(target.home, target.args, "--method", "tools/list")
    assert code == 0, stderr
    tools = {tool["name"]: tool for tool in documents[0]["result"]["tools"]}
    assert "cancel_job" in tools, list(tools)
    tool = tools["cancel_job"]
    assert tool["inputSchema"]["required"] == ["project_reference", "job_id"]
    assert tool["outputSchema"]["type"] == "object"
    assert tool["annotations"]["destructiveHint"] is True
    assert tool["annotations"]["readOnlyHint"] is False


def test_cancels_a_running_local_job(target: Target, record_validator: Draft7Validator) -> None:
    job = submit(target.home, "inspector-proj", "sleep", "60")

    code, document, stderr = call_cancel_job(target.home, target.args, "inspector-proj", job["id"])

    assert code == 0, stderr
    result = document["result"]
    assert result["isError"] is False
    record = result["structuredContent"]
    record_validator.validate(record)
    assert (record["id"], record["project_id"], record["status"]) == (job["id"], "inspector-proj", "canceled")
    assert json.loads(result["content"][0]["text"]) == record


def test_not_found_is_an_error_result(target: Target) -> None:
    submit(target.home, "inspector-proj", "true")

    code, document, stderr = call_cancel_job(target.home, target.args, "inspector-proj", "job_does_not_exist")

    assert code == INSPECTOR_TOOL_IS_ERROR_EXIT, (code, document, stderr)
    result = document["result"]
    assert result["isError"] is True
    assert "structuredContent" not in result
    assert result["content"][0]["text"].startswith("not_found: ")
    assert "tool_is_error" in stderr
