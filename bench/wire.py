"""Talking MCP with no SDK client in the loop: hand-written JSON-RPC over raw stdio pipes and HTTP/1.1.

The SDK client validates every result against the tool's output schema and costs about as much as a
small server; these clients cost a few microseconds a call, so what is measured is the server. Requests
use the 2026-07-28 era (no handshake; `_meta` on every request), which every server here speaks.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

PROTOCOL_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**(params or {}), "_meta": META},
    }
    return json.dumps(message, separators=(",", ":")).encode()


def discover(request_id: int = 0) -> bytes:
    return request(request_id, "server/discover")


def initialize(request_id: int = 0) -> bytes:
    """The 2025-11-25 handshake's first request (no `_meta` era stamp)."""
    params = {
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    }
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}).encode()


def tool_call(request_id: int, name: str, arguments: dict[str, Any]) -> bytes:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments})


def is_error(response: bytes) -> bool:
    """True for a JSON-RPC error or an isError tool result (read without parsing the whole answer)."""
    return b'"error":{' in response[:80] or b'"isError":true' in response


class StdioPipes:
    """A server process spoken to over its stdin/stdout: one request line out, one response line back."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._stdout: IO[bytes] = self.process.stdout

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, line: bytes) -> bytes:
        self._stdin.write(line + b"\n")
        self._stdin.flush()
        answer = self._stdout.readline()
        if not answer:
            raise RuntimeError(f"server {self.process.args} closed stdout (exit {self.process.poll()})")
        return answer

    def close(self) -> None:
        self._stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stdout.close()

    def __enter__(self) -> StdioPipes:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def spawn_to_first_answer(command: Sequence[str], env: dict[str, str], first: bytes) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from spawning the server to reading its answer to `first`."""
    start = time.perf_counter()
    with StdioPipes(command, env) as server:
        server.send(first)
        wall = time.perf_counter() - start
        return wall, cpu_ns(server.pid) / 1e9


def cpu_ns(pid: int) -> int:
    """CPU time all threads of a process have run so far, in ns (from the scheduler, not clock ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that just ended
            continue
    return total


class HttpConnection:
    """One keep-alive HTTP/1.1 connection POSTing JSON-RPC to a Streamable HTTP endpoint."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str):
        self._reader, self._writer = reader, writer
        self._head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode()

    @classmethod
    async def open(cls, url: str) -> HttpConnection:
        rest = url.removeprefix("http://")
        host, _, path = rest.partition("/")
        name, _, port = host.partition(":")
        reader, writer = await asyncio.open_connection(name, int(port))
        return cls(reader, writer, host, "/" + path)

    async def call(self, body: bytes, method: str, name: str | None = None) -> bytes:
        headers = (
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"MCP-Protocol-Version: {PROTOCOL_VERSION}\r\nMcp-Method: {method}\r\n"
            + (f"Mcp-Name: {name}\r\n" if name else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(self._head + headers.encode() + body)
        status = await self._reader.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"HTTP answer {status!r}")
        length, chunked = None, False
        while (line := await self._reader.readline()) != b"\r\n":
            key, _, value = line.partition(b":")
            key = key.lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None:
            return await self._reader.readexactly(length)
        if not chunked:
            raise RuntimeError("HTTP answer with neither Content-Length nor chunked encoding")
        body_parts = []
        while size := int((await self._reader.readline()).split(b";")[0], 16):
            body_parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readexactly(2)
        return b"".join(body_parts)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def http_load(
    url: str, clients: int, total: int, calls: Sequence[tuple[str, dict[str, Any]]]
) -> tuple[float, list[float]]:
    """`total` tools/call requests from `clients` concurrent connections; returns (calls/s, latencies)."""
    connections = [await HttpConnection.open(url) for _ in range(clients)]
    bodies = [(tool_call(i, name, arguments), name) for i, (name, arguments) in enumerate(calls)]
    latencies: list[float] = []

    async def client(index: int, connection: HttpConnection) -> None:
        for i in range(total // clients):
            body, name = bodies[(index + i) % len(bodies)]
            start = time.perf_counter()
            answer = await connection.call(body, "tools/call", name)
            latencies.append(time.perf_counter() - start)
            if is_error(answer):
                raise RuntimeError(f"{name}: {answer[:300]!r}")

    try:
        start = time.perf_counter()
        await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
        elapsed = time.perf_counter() - start
    finally:
        for connection in connections:
            await connection.close()
    return len(latencies) / elapsed, latencies


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """`command` under `taskset -c CPUS` when asked (and taskset exists)."""
    if cpus is None or not Path("/usr/bin/taskset").exists():
        return list(command)
    return ["taskset", "-c", cpus, *command]


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "CANCEL_JOB_MCP_HOME": str(home)}
