"""Our stdio framing, over raw pipes to a real server process: every request whose id can be read is
answered, batches get one reply per member, and a client that probes with server/discover and falls
back to initialize is served."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CLI, env_for
from .mcp_wire import TOOL_NAMES, initialize

pytestmark = pytest.mark.xdist_group(__name__)

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
DISCOVER = {"jsonrpc": "2.0", "id": "probe", "method": "server/discover", "params": {"_meta": MODERN_META}}
PARSE_ERROR, INVALID_REQUEST = -32700, -32600
UNSUPPORTED_PROTOCOL_VERSION = -32022


class RawPipe:
    """A server process on raw pipes: write lines, read lines with a deadline."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [*CLI],
            env=env_for(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data + b"\n")
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode())

    def receive(self, timeout: float = 30) -> Any:
        try:
            return json.loads(self._lines.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"no answer within {timeout} s")

    def silent(self, timeout: float = 0.5) -> bool:
        return self._lines.empty() and not self._wait(timeout)

    def _wait(self, timeout: float) -> bool:
        try:
            self._lines.put(self._lines.get(timeout=timeout))
        except queue.Empty:
            return False
        return True

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def pipe(home: Path) -> Iterator[RawPipe]:
    raw = RawPipe(home)
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def legacy_pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawPipe]:
    """One initialized 2025-11-25 connection shared by the bad-line cases."""
    raw = RawPipe(tmp_path_factory.mktemp("home"))
    raw.send(initialize())
    assert raw.receive()["result"]["protocolVersion"] == "2025-11-25"
    raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    yield raw
    raw.close()


PING = b'{"jsonrpc":"2.0","id":%s,"method":"ping"'
BAD_LINES = {
    "not JSON": (b'{"jsonrpc":"2.0","id":41,"method":"ping" oops}', 41, PARSE_ERROR),
    "truncated": (b'{"jsonrpc":"2.0","id":"cut","method":"tools/list","params":{', "cut", PARSE_ERROR),
    "lone surrogate": (PING % b"42" + b',"params":{"x":"\\ud800"}}', 42, INVALID_REQUEST),
    "nesting 300": (PING % b"43" + b',"params":{"x":' + b"[" * 300 + b"]" * 300 + b"}}", 43, INVALID_REQUEST),
    "nesting 100,000": (
        PING % b"44" + b',"params":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        44,
        PARSE_ERROR,
    ),
    "5,000 digits": (PING % b"45" + b',"params":{"x":' + b"9" * 5000 + b"}}", 45, INVALID_REQUEST),
    "NaN": (PING % b"46" + b',"params":{"x":NaN}}', 46, INVALID_REQUEST),
    "1e999": (PING % b"47" + b',"params":{"x":1e999}}', 47, INVALID_REQUEST),
    "-Infinity": (PING % b"53" + b',"params":{"x":-Infinity}}', 53, INVALID_REQUEST),
    "101 digits": (PING % b"54" + b',"params":{"x":-' + b"9" * 101 + b"}}", 54, INVALID_REQUEST),
    "lone low surrogate": (PING % b"55" + b',"params":{"x":"\\uDC00"}}', 55, INVALID_REQUEST),
    "fractional id": (PING % b"48.5" + b"}", 48.5, INVALID_REQUEST),
    "boolean id": (PING % b"true" + b"}", None, INVALID_REQUEST),
    "no method": (b'{"jsonrpc":"2.0","id":49}', 49, INVALID_REQUEST),
    "wrong jsonrpc": (b'{"jsonrpc":"1.0","id":50,"method":"ping"}', 50, INVALID_REQUEST),
    "not UTF-8": (b'{"jsonrpc":"2.0","id":51,"method":"ping","params":{"x":"\xff"}}', 51, PARSE_ERROR),
    "not an object": (b"42", None, INVALID_REQUEST),
    "empty batch": (b"[]", None, INVALID_REQUEST),
    "5 MiB line": (PING % b"52" + b',"params":{"x":"' + b"x" * (5 << 20) + b'"}}', 52, INVALID_REQUEST),
}

# Lines at the edges of what the cheap path hands to the careful one: served all the same.
GOOD_LINES = {
    "100 digits": PING % b"60" + b',"params":{"x":-' + b"9" * 100 + b',"y":0.' + b"1" * 150 + b"}}",
    "surrogate pair": PING % b"61" + b',"params":{"x":"\\ud83d\\ude00","y":"C:\\\\udata"}}',
    "300 brackets, 3 deep": PING % b"62" + b',"params":{"x":[' + b",".join([b"[]"] * 300) + b"]}}",
    "200 deep": PING % b"63" + b',"params":{"x":' + b"[" * 198 + b"]" * 198 + b"}}",
}


@pytest.mark.parametrize("case", GOOD_LINES, ids=list(GOOD_LINES))
def test_unusual_but_valid_lines_are_served(legacy_pipe: RawPipe, case: str) -> None:
    legacy_pipe.send_raw(GOOD_LINES[case])
    assert "result" in legacy_pipe.receive()


@pytest.mark.parametrize("case", BAD_LINES, ids=list(BAD_LINES))
def test_every_bad_line_gets_an_error_with_its_id(legacy_pipe: RawPipe, case: str) -> None:
    line, request_id, code = BAD_LINES[case]
    legacy_pipe.send_raw(line)
    answer = legacy_pipe.receive()
    assert answer["id"] == request_id
    assert answer["error"]["code"] == code
    legacy_pipe.send({"jsonrpc": "2.0", "id": "after", "method": "ping"})
    assert legacy_pipe.receive() == {"jsonrpc": "2.0", "id": "after", "result": {}}


def test_a_batch_on_a_2025_11_25_connection_gets_an_error_per_request(legacy_pipe: RawPipe) -> None:
    legacy_pipe.send(
        [
            {"jsonrpc": "2.0", "id": 60, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
            {"jsonrpc": "2.0", "id": "b", "method": "tools/list"},
            "junk",
        ]
    )
    answers = legacy_pipe.receive()
    assert [(answer["id"], answer["error"]["code"]) for answer in answers] == [
        (60, INVALID_REQUEST),
        ("b", INVALID_REQUEST),
        (None, INVALID_REQUEST),
    ]
    assert "2025-03-26" in answers[0]["error"]["message"]


@pytest.mark.slow
def test_a_batch_on_a_2025_03_26_connection_gets_a_reply_per_member(pipe: RawPipe) -> None:
    pipe.send(initialize(version="2025-03-26"))
    assert pipe.receive()["result"]["protocolVersion"] == "2025-03-26"
    pipe.send([{"jsonrpc": "2.0", "method": "notifications/initialized"}])
    assert pipe.silent(), "a batch of notifications alone gets no reply"
    pipe.send(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"},
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            7,
        ]
    )
    answers = {json.dumps(answer.get("id")): answer for answer in pipe.receive()}
    assert answers["1"]["result"] == {}
    assert [tool["name"] for tool in answers["2"]["result"]["tools"]] == TOOL_NAMES
    assert answers["3"]["error"]["code"] == -32601
    assert answers["null"]["error"]["code"] == INVALID_REQUEST
    assert len(answers) == 4, "the duplicate id 1 is refused inside the same array"


def test_initialize_waiting_behind_an_unanswered_discover_is_served(pipe: RawPipe) -> None:
    """The AI SDK's order: discover, then (after its 1 s probe) initialize, both before we read a line."""
    pipe.send(DISCOVER)
    pipe.send(initialize(request_id=2))
    answer = pipe.receive()
    if answer["id"] == "probe":  # answered before the initialize was read: that is allowed too
        answer = pipe.receive()
    assert answer["id"] == 2
    assert answer["result"]["protocolVersion"] == "2025-11-25"
    pipe.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    pipe.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    assert len(pipe.receive()["result"]["tools"]) == 6


@pytest.mark.slow
def test_initialize_after_an_answered_discover_is_served(pipe: RawPipe) -> None:
    """The client gave up on its probe just before the answer came: it falls back to initialize."""
    pipe.send(DISCOVER)
    assert pipe.receive()["result"]["supportedVersions"] == ["2026-07-28"]
    pipe.send(initialize(request_id=2))
    assert pipe.receive()["result"]["protocolVersion"] == "2025-11-25"


@pytest.mark.slow
def test_initialize_after_modern_requests_is_still_refused(pipe: RawPipe) -> None:
    """A connection that has served real 2026-07-28 requests does not change era."""
    pipe.send(DISCOVER)
    pipe.receive()
    pipe.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": MODERN_META}})
    assert len(pipe.receive()["result"]["tools"]) == 6
    pipe.send(initialize(request_id=3))
    answer = pipe.receive()
    assert answer["id"] == 3
    assert answer["error"]["code"] == UNSUPPORTED_PROTOCOL_VERSION
