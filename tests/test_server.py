"""Server behaviour that does not depend on a backend: failures, unknown tools, HTTP safety, stdout.

The stdio tests share one server and MCP session, the HTTP tests one server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import anyio
import httpx
import pytest
from mcp import MCPError

from cancel_job_mcp.audit import AuditLog
from cancel_job_mcp.backends.base import BackendSettings, StopHooks
from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobRecord
from cancel_job_mcp.routing import Router
from cancel_job_mcp.server import CallLimits, build_server
from cancel_job_mcp.service import JobService

from .conftest import HttpServer, client, stdio_server
from .mcp_wire import INITIALIZE, MCP_HEADERS, PING

pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session can serve several tests


@pytest.fixture(scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    async with client(stdio_server(tmp_path_factory.mktemp("home")), "legacy") as session:
        yield session


@pytest.fixture(scope="module")
def http_server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    return module_http_servers()


class ExplodingBackend(StopHooks):
    """Fails like a bug would, with a secret in the exception text."""

    name = kind = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("boom: token=canary-secret-123 at /srv/internal/path.py")
        raise ToolError(ErrorCode.NOT_FOUND, f"No job {job_id!r}.")

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_an_unexpected_exception_is_an_internal_error_that_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = ExplodingBackend()
    settings = BackendSettings(name="local", kind="local", projects=("*",))
    server = build_server(
        JobService(
            Router([settings], factory=lambda _: backend),
            CursorCodec(Path(mkdtemp()) / "key"),
            AuditLog(Path(mkdtemp())),
        )
    )
    arguments = {"project_reference": "demo", "job_id": "job_1"}
    async with client(server, "legacy") as session:
        failed = await session.call_tool("cancel_job", arguments)
        after = await session.call_tool("cancel_job", arguments)
    assert failed.is_error
    text = failed.content[0].text
    assert text.startswith("internal_error: ")
    for leaked in ("canary", "boom", "/srv"):
        assert leaked not in text
    assert after.content[0].text.startswith("not_found: "), "the server must keep serving"


@pytest.mark.anyio
async def test_an_unknown_tool_is_a_protocol_error(session: Any) -> None:
    with pytest.raises(MCPError) as raised:
        await session.call_tool("delete_everything", {})
    assert "Unknown tool: delete_everything" in str(raised.value)


@pytest.mark.anyio
async def test_an_unknown_backend_prefix_is_unknown_project(session: Any) -> None:
    result = await session.call_tool("cancel_job", {"project_reference": "nowhere:demo", "job_id": "job_1"})
    assert result.is_error
    assert result.content[0].text.startswith("unknown_project: There is no backend named 'nowhere'.")


def test_http_refuses_a_foreign_host_or_origin(http_server: HttpServer) -> None:
    bad_host = httpx.post(http_server.url, json=PING, headers={**MCP_HEADERS, "Host": "evil.example.com"})
    bad_origin = httpx.post(
        http_server.url, json=PING, headers={**MCP_HEADERS, "Origin": "http://evil.example.com"}
    )
    assert bad_host.status_code == 421
    assert bad_origin.status_code == 403


def test_the_http_server_binds_to_loopback_by_default(http_server: HttpServer) -> None:
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local_addresses = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # 0A = LISTEN
    assert f"0100007F:{http_server.port:04X}" in local_addresses


def test_stdout_carries_only_protocol_messages_even_at_debug_level(home: Path) -> None:
    import json
    import subprocess

    from .conftest import CLI, env_for

    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "cancel_job", "arguments": {"project_reference": "demo", "job_id": "job_x"}},
        },
    ]
    server = subprocess.Popen(
        [*CLI, "--log-level", "debug"],
        env=env_for(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    for message in messages:
        server.stdin.write(json.dumps(message) + "\n")
    server.stdin.flush()
    answers = [json.loads(server.stdout.readline()) for _ in range(2)]
    rest, stderr = server.communicate(input="", timeout=30)
    assert rest == ""
    assert [answer["id"] for answer in answers] == [1, 2]
    assert answers[1]["result"]["isError"] is True
    assert "DEBUG" in stderr


class HangingBackend(ExplodingBackend):
    """Never answers a read: only the server's call timeout ends it."""

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_a_call_that_outlasts_the_call_timeout_gets_a_timeout_error_and_the_server_goes_on() -> None:
    settings = BackendSettings(name="local", kind="local", projects=("*",))
    backend = HangingBackend()
    service = JobService(
        Router([settings], factory=lambda _: backend),
        CursorCodec(Path(mkdtemp()) / "k"),
        AuditLog(Path(mkdtemp())),
    )
    server = build_server(service, limits=CallLimits(timeout_seconds=0.3))
    arguments = {"project_reference": "demo", "job_id": "job_1"}
    async with client(server, "legacy") as session:
        with anyio.fail_after(30):
            hung = await session.call_tool("get_job", arguments)
            backend.calls = 1  # the next cancel is refused at once
            after = await session.call_tool("cancel_job", arguments)
    assert hung.is_error
    assert hung.content[0].text.startswith(
        "timeout: get_job did not finish within 0.3 seconds, this server's limit per call."
    )
    assert after.content[0].text.startswith("not_found: "), "the server must keep serving"
