"""Shared by the test_battery_* and test_local_* files: a raw JSON-RPC driver for the stdio server,
jobs submitted in-process, and small readers of SQLite and /proc.

`RawStdioServer` starts `cancel-job-mcp` as a subprocess and speaks newline-delimited JSON-RPC to it
directly, so a test can send any JSON at all as tool arguments (an MCP client would refuse some of it
before sending), knows the server's pid (for kill -9 and VmRSS), and keeps its stderr in a file.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from cancel_job_mcp.backends.local import procs
from cancel_job_mcp.backends.local.runtime import LocalBackend, submit_job

from .conftest import CLI, env_for, wait_until
from .fakes.server import FakeProvider

PROTOCOL_VERSION = "2025-11-25"
INTERNAL_ERROR = -32603
KNOWN_CODES = (
    "invalid_argument",
    "unknown_project",
    "not_found",
    "not_cancellable",
    "unauthorized",
    "rate_limited",
    "upstream_unavailable",
    "upstream_error",
    "read_only",
    "busy",
    "timeout",
)


class ProtocolError(AssertionError):
    """The server broke the protocol: no answer in time, a malformed line, or it exited."""


class RawStdioServer:
    def __init__(self, home: Path, *args: str, stderr_path: Path, env: dict[str, str] | None = None) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.process = subprocess.Popen(
            [*CLI, *args],
            env=env_for(home, **(env or {})),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.pid = self.process.pid
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0
        self.sent = 0
        self.notifications: list[dict[str, Any]] = []
        self.abandoned: set[int] = set()  # requests canceled by the client: an answer may still come
        self._early: dict[int, dict[str, Any]] = {}  # answers that came before the one awaited

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def initialize(self) -> dict[str, Any]:
        answer = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "battery", "version": "0"},
            },
        )
        assert "result" in answer, answer
        self.notify("notifications/initialized")
        return answer

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise ProtocolError(f"the server exited (code {self.process.poll()})") from None

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    def send(self, method: str, params: Any) -> int:
        """Send a request without waiting for its answer; returns its id."""
        self._next_id += 1
        self.sent += 1
        self._write({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def receive(self, request_id: int, timeout: float = 30.0) -> dict[str, Any]:
        """The answer to `request_id`; notifications met on the way are kept in `notifications`, and
        answers to other requests sent (concurrent ones answer in any order) until they are asked for."""
        if request_id in self._early:
            return self._early.pop(request_id)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError(f"no answer to request {request_id} within {timeout} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise ProtocolError(f"the server closed stdout (exit code {self.process.poll()})")
            try:
                message = json.loads(line)
            except ValueError:
                raise ProtocolError(f"not JSON on stdout: {line[:200]!r}") from None
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                raise ProtocolError(f"not a JSON-RPC 2.0 message: {line[:200]!r}")
            if "id" not in message:
                self.notifications.append(message)
                continue
            if message["id"] in self.abandoned:
                continue
            if isinstance(message["id"], int) and request_id < message["id"] <= self._next_id:
                self._early[message["id"]] = message
                continue
            if message["id"] != request_id:
                raise ProtocolError(f"answer to id {message['id']!r} while waiting for {request_id}")
            return message

    def abandon(self, request_id: int) -> None:
        """Cancel a request as an impatient client does (notifications/cancelled)."""
        self.abandoned.add(request_id)
        self.notify("notifications/cancelled", {"requestId": request_id, "reason": "the client gave up"})

    def request(self, method: str, params: Any, timeout: float = 30.0) -> dict[str, Any]:
        return self.receive(self.send(method, params), timeout)

    def call_tool(self, name: str, arguments: Any, timeout: float = 30.0) -> dict[str, Any]:
        """A tools/call's JSON-RPC answer, as received (`result` or `error`)."""
        return self.request("tools/call", {"name": name, "arguments": arguments}, timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> str:
        """Close stdin (the server exits), wait; returns its stderr."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        return self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def shared_stdio_server(home: Path, stderr_path: Path) -> Iterator[RawStdioServer]:
    """One initialized raw stdio server for many tests (a module-scoped fixture), killed at the end:
    a server start costs ~1 s of CPU, a call ~1.5 ms."""
    server = RawStdioServer(home, stderr_path=stderr_path)
    try:
        server.initialize()
        yield server
    finally:
        server.kill()
        server.close()


@dataclass
class Ending:
    """How a module's server ended: whether it was still alive when closed, and what it wrote on stderr."""

    alive: bool = False
    stderr: str = ""


@contextlib.contextmanager
def serving(
    home: Path, config: Path, env: dict[str, str], log_level: str, fakes: Iterable[FakeProvider]
) -> Iterator[tuple[RawStdioServer, Ending]]:
    """A raw stdio server on `config` (its stderr beside it), initialized, for a module's tests; when they
    end it is closed, then the fakes, and the Ending says how it ended."""
    options = ("--config", str(config), "--log-level", log_level)
    server = RawStdioServer(home, *options, stderr_path=config.parent / "stderr.txt", env=env)
    ending = Ending()
    try:
        server.initialize()
        yield server, ending
    finally:
        ending.alive = server.process.poll() is None
        ending.stderr = server.close()
        for fake in fakes:
            fake.close()


class StdioServers:
    """Raw stdio servers one test starts, each initialized, all killed when the test ends."""

    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home = home
        self.tmp_path = tmp_path
        self.started: list[RawStdioServer] = []

    def start(self, home: Path | None = None) -> RawStdioServer:
        stderr_path = self.tmp_path / f"stderr-{len(self.started)}.txt"
        server = RawStdioServer(home or self.home, stderr_path=stderr_path)
        self.started.append(server)
        server.initialize()
        return server

    def close(self) -> None:
        for server in self.started:
            server.kill()
            server.close()


def tool_result(answer: dict[str, Any]) -> dict[str, Any]:
    """The CallToolResult of a JSON-RPC answer; fails on a protocol-level error."""
    assert "error" not in answer, f"JSON-RPC error: {answer['error']}"
    result: dict[str, Any] = answer["result"]
    return result


def error_code(result: dict[str, Any]) -> str | None:
    """The leading code of an isError result's text, else None."""
    if not result.get("isError"):
        return None
    text: str = result["content"][0]["text"]
    return text.split(":", 1)[0]


def structured(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result["content"][0]["text"]
    record: dict[str, Any] = result["structuredContent"]
    assert json.loads(result["content"][0]["text"]) == record
    return record


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """`count` processes that keep a CPU busy each, for as long as the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def veryfront_config(path: Path, fake: FakeProvider, *extra: str) -> Path:
    """A config file at `path` routing `proj-*` to the fake Veryfront (token in $VF_TOKEN), plus `extra`
    lines of its table."""
    lines = ["[backends.vf]", 'kind = "veryfront"', f'base_url = "{fake.url}"', 'token_env = "VF_TOKEN"']
    path.write_text("\n".join([*lines, 'projects = ["proj-*"]', *extra, ""]))
    return path


def get_job(server: RawStdioServer, project: str, job_id: str) -> dict[str, Any]:
    """The job's record, read through the get_job tool."""
    return structured(
        tool_result(server.call_tool("get_job", {"project_reference": project, "job_id": job_id}))
    )


def submit_here(home: Path, project: str, *command: str, **options: Any) -> dict[str, Any]:
    """Submit a local job from this process with the runtime's `submit_job` (what the CLI's `submit`
    calls), where submitting is not what the test is about: it saves a CLI start (~0.2 s CPU)."""
    return dict(submit_job(home, project, list(command), **options))


def backend_cancel(home: Path, project: str, job_id: str) -> None:
    """The local backend's cancel alone, in this process: the stop is recorded and begun, not waited for."""

    async def cancel() -> None:
        backend = LocalBackend(home)
        try:
            await backend.cancel_job(project, job_id)
        finally:
            await backend.aclose()

    anyio.run(cancel)


def wait_for_stop(home: Path, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """The job's row once its stop or its end is recorded (completed_at set)."""
    row: dict[str, Any] = wait_until(
        lambda: (row := db_row(home, job_id))["completed_at"] and row, timeout=timeout
    )
    return row


def live_groups(pgids: list[int]) -> list[int]:
    """The process groups of `pgids` that still have a live (not zombie) member: one /proc scan for all."""
    table = procs.process_table()
    return [pgid for pgid in pgids if procs.group_members(table, pgid)]


def wait_ignoring_sigterm(pid: int) -> None:
    """Wait until process `pid` ignores SIGTERM: a job that ignores it from its first line is killed by
    a SIGTERM that comes before that line ran."""
    wait_until(lambda: int(_proc_status(pid, "SigIgn"), 16) & (1 << (signal.SIGTERM - 1)), timeout=30)


def _proc_status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return value.strip()
    raise AssertionError(f"no {field} for pid {pid}")


def vm_rss_kib(pid: int) -> int:
    return int(_proc_status(pid, "VmRSS").split()[0])


def db_row(home: Path, job_id: str) -> dict[str, Any]:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert row is not None, job_id
    return dict(row)


def integrity_check(home: Path) -> str:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return result
