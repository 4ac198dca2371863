"""Each addition of stdio.py, shown against the bare SDK: the same bytes go to our server and to the
same MCP server behind the SDK's own `stdio_server` (tests/bare_sdk_stdio.py), and each test asserts
what both answer. Should an SDK release start doing one of these itself, its test fails here, and
that addition can go."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from pydantic_core import PydanticSerializationError

from cancel_job_mcp.stdio import FrameWriter, StdioConnection
from cancel_job_mcp.stdio_lines import MAX_LINE_BYTES

from .battery_support import submit_here
from .conftest import CLI, cancel_active_jobs, env_for, wait_for_process_group
from .mcp_wire import initialize
from .test_stdio import DISCOVER

BARE_SDK = [sys.executable, str(Path(__file__).with_name("bare_sdk_stdio.py"))]
SERVERS = {"ours": CLI, "bare SDK": BARE_SDK}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def ping(request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "ping"}


class Session:
    """One server process on raw pipes; every line it writes is kept, in order."""

    def __init__(self, command: list[str], home: Path) -> None:
        self.process = subprocess.Popen(
            command,
            env=env_for(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.received: list[Any] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        """A server a failed test left running is killed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, *lines: bytes | Any) -> None:
        assert self.process.stdin is not None
        for line in lines:
            self.process.stdin.write((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")
        self.process.stdin.flush()

    def _next(self, timeout: float) -> bool:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"nothing from the server within {timeout} s")
        if line is None:
            return False
        self.received.append(json.loads(line))
        return True

    def wait_for(self, request_id: Any, timeout: float = 60) -> dict[str, Any]:
        """The answer to `request_id`, once it comes (what comes before it is kept too)."""
        while not any(isinstance(m, dict) and m.get("id") == request_id for m in self.received):
            if not self._next(timeout):
                pytest.fail(f"the server ended without answering {request_id!r}")
        return next(m for m in self.received if isinstance(m, dict) and m.get("id") == request_id)

    def finish(self, timeout: float = 60) -> list[Any]:
        """Close stdin; everything the server wrote until it exited."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        while self._next(timeout):
            pass
        self.process.wait(timeout=timeout)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.received


def answers(received: list[Any]) -> dict[Any, Any]:
    """Each answer by its id; a batch's array by the ids it answers."""
    found: dict[Any, Any] = {}
    for message in received:
        for member in message if isinstance(message, list) else [message]:
            if "id" in member:
                found[member["id"]] = member.get("error", {}).get("code", "result")
    return found


def serve_both(home: Path, *lines: bytes | Any, last: Any = None) -> dict[str, dict[Any, Any]]:
    """What each server answers to `lines`, all read before stdin closes: up to the answer to the
    request `last`, or to a ping sent after them."""
    found = {}
    for name, command in SERVERS.items():
        with Session(command, home) as session:
            session.send(*lines, *([] if last else [ping("sync")]))
            session.wait_for(last or "sync")
            found[name] = answers(session.finish())
    return found


PING = b'{"jsonrpc":"2.0","id":%s,"method":"ping"'
# case: (the line's id, the line, what we answer, what the bare SDK answers: "result", or None for nothing)
BAD_LINES = {
    "not JSON (id salvaged)": (41, PING % b"41" + b" oops}", PARSE_ERROR, None),
    "cut short (id salvaged)": ("cut", PING % b'"cut"' + b',"params":{', PARSE_ERROR, None),
    "not UTF-8 (refused, not replaced)": (
        42,
        PING % b"42" + b',"params":{"x":"\xe9"}}',
        PARSE_ERROR,
        "result",
    ),
    "a lone surrogate": (43, PING % b"43" + b',"params":{"x":"\\ud800"}}', INVALID_REQUEST, None),
    "5,000 digits": (44, PING % b"44" + b',"params":{"x":' + b"9" * 5000 + b"}}", INVALID_REQUEST, None),
    "NaN (not JSON)": (45, PING % b"45" + b',"params":{"x":NaN}}', INVALID_REQUEST, "result"),
    "a fractional id": (46.5, PING % b"46.5" + b"}", INVALID_REQUEST, None),
    "over 4 MiB (memory bounded)": (
        47,
        PING % b"47" + b',"params":{"x":"' + b"a" * MAX_LINE_BYTES + b'"}}',
        INVALID_REQUEST,
        "result",
    ),
    "201 levels": (
        49,
        PING % b"49" + b',"params":{"x":' + b"[" * 199 + b"]" * 199 + b"}}",
        INVALID_REQUEST,
        "result",
    ),
    "a batch on 2025-11-25": (48, b"[" + PING % b"48" + b"}]", INVALID_REQUEST, None),
}


@pytest.mark.slow
def test_every_readable_id_is_answered_where_the_sdk_drops_or_serves_the_line(home: Path) -> None:
    """Additions 1-3: the id salvaged; a line's bounds (size, UTF-8, surrogates, numbers, depth,
    id); batches."""
    found = serve_both(home, initialize(), INITIALIZED, *(line for _, line, _, _ in BAD_LINES.values()))
    for case, (request_id, _, ours, bare) in BAD_LINES.items():
        assert (found["ours"].get(request_id), found["bare SDK"].get(request_id)) == (ours, bare), case


@pytest.mark.slow
def test_a_batch_on_2025_03_26_is_answered_where_the_sdk_answers_nothing(home: Path) -> None:
    """Addition 3: batches, on the one revision that has them."""
    batch = [ping(5), ping(6)]
    found = serve_both(home, initialize(version="2025-03-26"), INITIALIZED, batch)
    assert [found["ours"].get(5), found["ours"].get(6)] == ["result", "result"]
    assert [found["bare SDK"].get(5), found["bare SDK"].get(6)] == [None, None]


@pytest.mark.slow
def test_initialize_after_discover_is_served_where_the_sdk_refuses_it(home: Path) -> None:
    """Addition 4: the discover -> initialize fallback."""
    found = serve_both(home, DISCOVER, initialize(), last=1)
    assert found["ours"][1] == "result"
    assert found["bare SDK"][1] == UNSUPPORTED_PROTOCOL_VERSION


@pytest.mark.slow
def test_the_calls_under_way_when_stdin_ends_are_answered_where_the_sdk_cancels_them(home: Path) -> None:
    """Addition 5: draining. A cancel that must wait out a 3 s grace period is under way at EOF."""
    job = submit_here(home, "p", "sh", "-c", "trap '' TERM; sleep 600", grace_seconds=3)
    wait_for_process_group(home, job["id"])
    cancel = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "cancel_job", "arguments": {"project_reference": "p", "job_id": job["id"]}},
    }
    found = {}
    try:
        for name, command in SERVERS.items():
            with Session(command, home) as session:
                session.send(initialize(), INITIALIZED, cancel)
                found[name] = answers(session.finish())
    finally:
        cancel_active_jobs(home)
    # The SDK cancels the calls under way at EOF: an error (Connection closed), not the result.
    assert found == {"ours": {1: "result", 2: "result"}, "bare SDK": {1: "result", 2: CONNECTION_CLOSED}}


async def bare_sdk_writes(message: SessionMessage) -> None:
    """The SDK's stdio transport (on in-memory text files) writing `message`, until it ends."""
    files = anyio.wrap_file(io.StringIO()), anyio.wrap_file(io.StringIO())
    async with stdio_server(*files) as (source, sink), source, sink:
        await sink.send(message)
        await anyio.sleep_forever()


@pytest.mark.anyio
async def test_an_answer_that_cannot_be_encoded_becomes_an_error_where_the_sdk_ends(home: Path) -> None:
    """Addition 6: an answer holding a lone surrogate (UTF-8 cannot carry it) costs only itself."""
    unencodable = SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=9, result={"cwd": "caf\udce9"}))
    with pytest.raises(ExceptionGroup) as ended:
        await bare_sdk_writes(unencodable)
    assert ended.group_contains(PydanticSerializationError)

    wire = io.BytesIO()
    connection = StdioConnection(Server("ours"), FrameWriter(wire))
    await connection.deliver(unencodable)
    await connection.deliver(SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=10, result={})))
    first, second = map(json.loads, wire.getvalue().splitlines())
    assert (first["id"], first["error"]["code"]) == (9, INTERNAL_ERROR)
    assert second == {"jsonrpc": "2.0", "id": 10, "result": {}}
