"""The HTTP transport is safe to expose: bearer tokens, loopback-only without them, Host/Origin
allow-lists on every bind address, body and call limits, stateless mode and several workers."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.app import HttpOptions
from cancel_job_mcp.backends.local import procs
from cancel_job_mcp.http_values import Authority, Origin
from cancel_job_mcp.transports import allow_list

from .conftest import (
    IGNORES_TERM,
    HttpServer,
    client,
    run_cli,
    start_http_server,
    stop_http_server,
    submit,
    wait_for_process_group,
    wait_until,
)
from .mcp_wire import INITIALIZE, MCP_HEADERS, PING, TOOL_NAMES, open_session

pytestmark = pytest.mark.xdist_group(__name__)

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded_server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    """Two tokens, bound to every interface with an extra allowed Host: shared by the module's tests."""
    return module_http_servers(
        "--host",
        "0.0.0.0",
        "--allowed-host",
        "mcp.internal.test",
        CANCEL_JOB_MCP_HTTP_TOKENS=f"{TOKEN},another-token-0123456789",
    )


@pytest.fixture(scope="module")
def open_server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    """No tokens, on loopback, with an extra allowed Host and tight body and header limits: shared by the
    module's tests, each of which sends only small, prompt requests."""
    return module_http_servers(
        "--allowed-host", "mcp.internal.example", "--max-body-bytes", "2048", "--header-timeout", "1"
    )


def authed_client(url: str, token: str, mode: str = "auto") -> Any:
    import httpx2

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return http, client(streamable_http_client(url, http_client=http), mode)


@pytest.mark.slow
@pytest.mark.anyio
async def test_bearer_tokens_guard_the_endpoint(guarded_server: HttpServer) -> None:
    url = guarded_server.url
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
        bad = {**MCP_HEADERS, "Authorization": "Bearer nope"}
        wrong = await http.post(url, json=INITIALIZE, headers=bad)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="cancel-job-mcp"'
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "nope" not in wrong.text

    for token in (TOKEN, "another-token-0123456789"):
        http, session = authed_client(url, token)
        async with http, session:
            result = await session.call_tool("get_job", {"project_reference": "demo", "job_id": "job_x"})
        assert result.content[0].text.startswith("not_found: "), token


def test_tokens_shorter_than_sixteen_characters_are_refused(home: Path) -> None:
    done = run_cli_serve(home, "--transport", "http", env={"CANCEL_JOB_MCP_HTTP_TOKENS": "short"})
    assert done.returncode == 2
    assert "at least 16 characters" in done.stderr


def run_cli_serve(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    import subprocess

    from .conftest import CLI, env_for

    return subprocess.run(
        [*CLI, "serve", *args], env=env_for(home, **(env or {})), capture_output=True, text=True, timeout=30
    )


def test_binding_beyond_loopback_without_tokens_is_refused(home: Path) -> None:
    done = run_cli_serve(home, "--transport", "http", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_a_wildcard_bind_keeps_dns_rebinding_protection_on(guarded_server: HttpServer) -> None:
    url = guarded_server.url
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    evil_host = httpx.post(url, json=PING, headers={**auth, "Host": "evil.example.com"})
    evil_origin = httpx.post(url, json=PING, headers={**auth, "Origin": "http://evil.example.com"})
    allowed = httpx.post(url, json=INITIALIZE, headers={**auth, "Host": "mcp.internal.test:8080"})
    assert evil_host.status_code == 421
    assert evil_origin.status_code == 403
    assert allowed.status_code == 200


def operator_allow_list(host: str = "127.0.0.1") -> Any:
    return allow_list(
        HttpOptions(
            host=host,
            allowed_hosts=(Authority.parse("mcp.internal.example"), Authority.parse("[fd00::1]:8443")),
            allowed_origins=(Origin.parse("https://app.example.com"),),
        )
    )


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("mcp.internal.example", True),  # what a reverse proxy forwards
        ("mcp.internal.example:8011", True),
        ("MCP.Internal.Example:443", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("localhost:18641", True),
        ("[::1]:9", True),
        ("10.0.0.5:8000", True),  # the bind address
        ("[fd00::1]:8443", True),
        ("[fd00::1]:8444", False),  # that one only on its port
        ("[fd00::1]", False),
        ("127.0.0.1:evil.com", False),  # prefix tricks
        ("localhost.evil.com", False),
        ("mcp.internal.example.evil.com", False),
        ("mcp.internal.example:8011:1", False),
        ("evil.com", False),
        ("localhost:99999", False),
        ("", False),
        ("local host", False),
    ],
)
def test_host_headers_are_parsed_and_matched_exactly(host: str, allowed: bool) -> None:
    assert operator_allow_list("10.0.0.5").allows_host(host) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:18641", True),
        ("http://127.0.0.1", True),
        ("https://[::1]:3000", True),
        ("https://app.example.com", True),
        ("https://app.example.com:443", True),
        ("https://APP.example.com", True),
        ("http://app.example.com", False),  # another scheme is another origin
        ("https://app.example.com:8443", False),
        ("http://localhost:18641.evil.com", False),  # prefix tricks
        ("http://localhost.evil.com", False),
        ("https://app.example.com.evil.com", False),
        ("https://app.example.com/path", False),
        ("null", False),
        ("http://evil.com", False),
    ],
)
def test_origin_headers_are_parsed_and_matched_exactly(origin: str, allowed: bool) -> None:
    assert operator_allow_list().allows_origin(origin) is allowed


@pytest.mark.slow  # seven sessions; test_server keeps a foreign Host and Origin in the inner loop
def test_host_and_origin_are_checked_on_the_wire(open_server: HttpServer) -> None:
    def status(**headers: str) -> int:
        return httpx.post(open_server.url, json=INITIALIZE, headers={**MCP_HEADERS, **headers}).status_code

    assert status(Host="mcp.internal.example") == 200
    assert status(Host="mcp.internal.example:8011") == 200
    assert status(Host="localhost") == 200
    assert status(Host="127.0.0.1") == 200
    assert status(Host="127.0.0.1:evil.com") == 421
    assert status(Origin="http://localhost:18641.evil.com") == 403
    assert status(Origin=f"http://localhost:{open_server.port}") == 200


@pytest.mark.slow
def test_an_oversized_body_is_refused(open_server: HttpServer) -> None:
    huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * 10_000}}
    response = httpx.post(open_server.url, json=huge, headers=MCP_HEADERS)
    assert response.status_code == 413


@pytest.mark.anyio
async def test_stateless_mode_serves_every_request_without_a_session(home: Path) -> None:
    server = start_http_server(home, "--stateless")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.post(server.url, json=INITIALIZE, headers=MCP_HEADERS)
            stream = await http.get(server.url, headers={"Accept": "text/event-stream"}, timeout=10)
        assert response.status_code == 200
        assert "mcp-session-id" not in response.headers
        assert stream.status_code == 405, "GET has no session to stream: answered at once"
        assert stream.headers["allow"] == "POST"
        for mode in ("auto", "legacy"):
            async with client(server.url, mode) as session:
                tools = (await session.list_tools()).tools
            assert [tool.name for tool in tools] == TOOL_NAMES
    finally:
        stop_http_server(server)


@pytest.mark.slow
def test_the_start_up_line_says_where_and_whether_tokens_are_needed(
    open_server: HttpServer, guarded_server: HttpServer
) -> None:
    assert open_server.announcement == (
        f"cancel-job-mcp: serving MCP at {open_server.url} (no token required; sessions)\n"
    )
    assert guarded_server.announcement == (
        f"cancel-job-mcp: serving MCP at http://0.0.0.0:{guarded_server.port}/mcp"
        " (bearer token required; sessions)\n"
    )
    assert TOKEN not in guarded_server.announcement


@pytest.mark.slow
def test_an_idle_session_expires_and_makes_room(home: Path) -> None:
    server = start_http_server(home, "--max-sessions", "1", "--session-idle-timeout", "1")
    try:
        first = open_session(server.url)
        assert first.status_code == 200
        # Polling with a new session does not touch the idle one; once it expires there is room.
        wait_until(lambda: open_session(server.url).status_code == 200, timeout=30, interval=0.2)
        session = {**MCP_HEADERS, "Mcp-Session-Id": first.headers["mcp-session-id"]}
        assert httpx.post(server.url, json=PING, headers=session).status_code == 404
    finally:
        stop_http_server(server)


@pytest.mark.slow
def test_a_connection_that_dawdles_over_its_headers_is_closed(open_server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", open_server.port)) as slow:
        slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\n")
        slow.settimeout(30)
        assert slow.recv(100) == b"", "the server closed the connection"
    assert open_session(open_server.url).status_code == 200


@pytest.mark.slow
@pytest.mark.anyio
async def test_several_workers_serve_one_port_and_cancel_for_real(home: Path) -> None:
    server = start_http_server(home, "--workers", "2")
    try:
        jobs = [submit(home, "demo", "sleep", "600") for _ in range(4)]
        for job in jobs:
            wait_for_process_group(home, job["id"])
        records: list[dict[str, Any]] = []

        async def cancel(job_id: str) -> None:
            async with client(server.url) as session:
                result = await session.call_tool(
                    "cancel_job", {"project_reference": "demo", "job_id": job_id}
                )
                records.append(result.structured_content)

        async with anyio.create_task_group() as group:
            for job in jobs:
                group.start_soon(cancel, job["id"])
        assert sorted(record["id"] for record in records) == sorted(job["id"] for job in jobs)
        assert {record["status"] for record in records} == {"canceled"}
        assert len(worker_processes(server.process.pid)) == 2, "uvicorn should run two worker processes"
    finally:
        stop_http_server(server)


@pytest.mark.slow
@pytest.mark.anyio
async def test_calls_beyond_the_concurrency_cap_get_busy_and_slow_calls_answer_in_time(home: Path) -> None:
    # The cancel holds the only slot for the call timeout: long enough that a loaded machine still gets
    # the second call in while it does.
    job = submit(home, "demo", "python3", "-c", IGNORES_TERM, options=("--grace-period", "10"))
    wait_for_process_group(home, job["id"])
    server = start_http_server(home, "--max-concurrent-calls", "1", "--call-timeout", "6")
    try:
        async with client(server.url, "legacy") as first, client(server.url, "legacy") as second:
            results: dict[str, Any] = {}

            async def slow_cancel() -> None:
                results["slow"] = await first.call_tool(
                    "cancel_job", {"project_reference": "demo", "job_id": job["id"]}
                )

            async with anyio.create_task_group() as group:
                group.start_soon(slow_cancel)
                await anyio.to_thread.run_sync(wait_until, lambda: db_status(home, job["id"]) == "canceled")
                results["busy"] = await second.call_tool(
                    "get_job", {"project_reference": "demo", "job_id": job["id"]}
                )
        assert results["busy"].content[0].text.startswith("busy: ")
        # The grace period (10 s) outlasts the call timeout (6 s): the cancel answers in time with the
        # latest record, the stop still under way (no completed_at yet), instead of hanging.
        slow = results["slow"]
        assert slow.is_error is False, slow.content[0].text
        assert slow.structured_content["status"] == "canceled"
        assert slow.structured_content["completed_at"] is None
        final = json.loads(run_cli(home, "show", "demo", job["id"]).stdout)
        assert final["status"] == "canceled"
    finally:
        stop_http_server(server)


@pytest.mark.slow
def test_each_worker_listens_on_its_own_socket_and_a_dead_one_is_replaced_on_it(home: Path) -> None:
    server = start_http_server(home, "--workers", "2")
    try:
        workers = wait_until(lambda: len(found := worker_processes(server.process.pid)) == 2 and found, 60)
        # Each worker has its own listening socket on the port (SO_REUSEPORT), so the kernel spreads a
        # burst of connections across them; on one shared socket the first worker awake takes them all.
        listening = {pid: tcp_sockets(pid, server.port, LISTEN) for pid in workers}
        assert all(len(sockets) == 1 for sockets in listening.values()), listening
        assert len(set().union(*listening.values())) == 2, "the workers share a socket"
        clients = [httpx.Client(timeout=60) for _ in range(16)]
        try:
            for client_ in clients:  # all 16 connected before any is served
                assert client_.post(server.url, json=INITIALIZE, headers=MCP_HEADERS).status_code == 200
            served = {pid: len(tcp_sockets(pid, server.port, ESTABLISHED)) for pid in workers}
        finally:
            for client_ in clients:
                client_.close()
        assert sum(served.values()) == 16
        assert all(served.values()), f"a worker accepted no connection: {served}"

        # A worker killed outright is replaced, on the same socket: every new connection is answered.
        os.kill(workers[0], signal.SIGKILL)
        replaced = wait_until(
            lambda: len(now := worker_processes(server.process.pid)) == 2 and workers[0] not in now and now,
            60,
        )
        replacement = next(pid for pid in replaced if pid != workers[1])
        assert tcp_sockets(replacement, server.port, LISTEN) == listening[workers[0]]
        for _ in range(16):
            assert httpx.post(server.url, json=INITIALIZE, headers=MCP_HEADERS, timeout=60).status_code == 200
    finally:
        stop_http_server(server)
    assert server.process.returncode == 0


@pytest.mark.slow
def test_workers_that_cannot_start_stop_the_server_instead_of_restarting_forever(
    home: Path, tmp_path: Path
) -> None:
    # A broken install, as only the workers see it: the parent never imports the MCP SDK.
    broken = tmp_path / "broken" / "mcp"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('this mcp is broken')\n")
    server = start_http_server(home, "--workers", "2", PYTHONPATH=str(broken.parent))
    try:
        _, stderr = server.process.communicate(timeout=120)
    finally:
        stop_http_server(server)
    assert server.process.returncode == 2
    assert "cancel-job-mcp: a worker process keeps exiting while it starts" in stderr
    assert 2 <= stderr.count("ImportError: this mcp is broken") <= 4, "each worker is started at most twice"


LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(pid: int, port: int, state: str) -> set[int]:
    """The inodes of `pid`'s TCP sockets on local `port` in `state` (/proc/net/tcp's hex code)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state and int(fields[9]) in inodes:
                found.add(int(fields[9]))
    return found


def worker_processes(server_pid: int) -> list[int]:
    """The server's worker processes: multiprocessing spawns them (its resource tracker is no worker)."""
    return [
        pid
        for pid in procs.descendants(server_pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def db_status(home: Path, job_id: str) -> str:
    import sqlite3

    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        return str(conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
