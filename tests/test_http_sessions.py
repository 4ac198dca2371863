"""The HTTP session cap and the request body's bound, against a real server process (issue 20).

Clients that end their sessions without DELETE (the TypeScript SDK among them) must not lock new
clients out: at the cap the least recently used idle session is closed to make room, and only a cap
of busy sessions (each serving a request; an open GET stream counts) refuses with 503. A request
whose body never arrives is closed within the bound, bearer token or not.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from .conftest import HttpServer, start_http_server, stop_http_server, submit
from .mcp_wire import INITIALIZE, MCP_HEADERS, PING, PROTOCOL_VERSION, open_session
from .node_tools import NODE_MODULES, TS_SDK_CLIENT, require

TOKEN = "a-bearer-token-of-enough-length-20"


@pytest.fixture
def capped(home: Path) -> Iterator[HttpServer]:
    # An idle timeout no loaded machine reaches during a test: only the cap can close a session.
    server = start_http_server(home, "--max-sessions", "2", "--session-idle-timeout", "3600")
    yield server
    assert stop_http_server(server) == ""


def session_headers(opened: httpx.Response) -> dict[str, str]:
    return {
        **MCP_HEADERS,
        "Mcp-Session-Id": opened.headers["mcp-session-id"],
        "Mcp-Protocol-Version": PROTOCOL_VERSION,
    }


def ping(url: str, opened: httpx.Response) -> int:
    return httpx.post(url, json={**PING, "id": 2}, headers=session_headers(opened), timeout=30).status_code


def test_at_the_cap_the_least_recently_used_idle_session_makes_room(capped: HttpServer) -> None:
    first, second = open_session(capped.url), open_session(capped.url)
    assert ping(capped.url, first) == 200  # now `second` is the least recently used
    third = open_session(capped.url)
    assert third.status_code == 200
    assert ping(capped.url, second) == 404  # closed to make room: its client starts a new session
    assert ping(capped.url, first) == 200
    assert ping(capped.url, third) == 200


def test_only_a_cap_of_busy_sessions_refuses(capped: HttpServer) -> None:
    with httpx.Client(timeout=30) as http, ExitStack() as streams:
        opened = [open_session(capped.url) for _ in range(2)]
        for session in opened:
            # An open GET stream is a request in flight: the session is busy while it lasts.
            headers = {**session_headers(session), "Accept": "text/event-stream"}
            stream = streams.enter_context(http.stream("GET", capped.url, headers=headers))
            assert stream.status_code == 200
        refused = open_session(capped.url)
        assert refused.status_code == 503
        assert "Too many open sessions" in refused.text
    # The streams are closed: both sessions are idle again, and a new one gets in.
    assert open_session(capped.url).status_code == 200


@pytest.mark.slow
def test_typescript_sdk_clients_that_never_delete_their_sessions_are_not_locked_out(
    home: Path, tmp_path: Path
) -> None:
    node = require(TS_SDK_CLIENT)
    jobs = [submit(home, "demo", "true")["id"] for _ in range(5)]
    # Beside a node_modules link: ES modules resolve packages from their own path.
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    script = shutil.copy(Path(__file__).parent / "node" / "ts_sdk_sessions.mjs", tmp_path)
    server = start_http_server(home, "--max-sessions", "2", "--session-idle-timeout", "3600")
    try:
        argument = json.dumps({"url": server.url, "project": "demo", "jobIds": jobs})
        done = subprocess.run([str(node), script, argument], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        results = [json.loads(line) for line in done.stdout.splitlines()]
        assert [result["jobId"] for result in results] == jobs  # five clients, a cap of two
        for result in results:
            assert not result["isError"]
            assert result["record"]["id"] == result["jobId"]
            assert not result["deleted"]
    finally:
        assert stop_http_server(server) == ""


@pytest.mark.parametrize("tokens", [False, True], ids=["open", "with-a-bearer-token"])
def test_a_request_whose_body_never_arrives_is_closed(home: Path, tokens: bool) -> None:
    env = {"CANCEL_JOB_MCP_HTTP_TOKENS": TOKEN} if tokens else {}
    server = start_http_server(home, "--header-timeout", "1", **env)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(
                b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\n"
                + (f"Authorization: Bearer {TOKEN}\r\n".encode() if tokens else b"")
                + b'Content-Length: 100\r\n\r\n{"jsonrpc"'
            )
            slow.settimeout(60)  # the bound is 1 s: only a server that never closes reaches this
            received = b""
            while chunk := slow.recv(4096):
                received += chunk
            assert b"200 OK" not in received
        headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {TOKEN}"} if tokens else {})}
        assert httpx.post(server.url, json=INITIALIZE, headers=headers, timeout=30).status_code == 200
    finally:
        assert stop_http_server(server) == ""
