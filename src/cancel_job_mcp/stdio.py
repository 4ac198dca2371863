"""MCP over stdio: our framing in front of the SDK's serving loop.

We read the lines ourselves, so that:
- every request whose id can be read gets an answer, even when its line is not valid JSON, holds a lone
  surrogate, nests too deep or carries an absurd number (-32700 / -32600 with that id);
- a JSON-RPC batch gets one reply per member: real answers on a 2025-03-26 connection (the one
  revision that has batches), an error each otherwise;
- when the input ends, the requests still running are finished and answered (within `drain_seconds`,
  the call timeout and a little more) before the loop stops: `(cat requests; sleep 1) | cancel-job-mcp`
  gets every answer;
- an answer that cannot be encoded (it would need UTF-8 to carry a lone surrogate) becomes an error
  answer to its request, never the end of the connection;
- a client that probes with `server/discover` and then falls back to `initialize` (the AI SDK waits
  one second, less than our start-up on a busy machine) is served: while a connection has seen
  nothing but `server/discover`, an `initialize` starts it over in the handshake era.

While serving, fd 0 reads /dev/null and fd 1 writes to stderr, so a stray print or a job's child
process never touches the wire; the wire itself is a private, non-inheritable copy of both.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import anyio
from anyio.abc import TaskGroup
from mcp import types
from mcp.server import Server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 200
MAX_NUMBER_DIGITS = 100
BATCH_VERSIONS = frozenset({"2025-03-26"})  # the only revision whose JSON-RPC layer has batches
DISCOVER = "server/discover"
CANCELLED = "notifications/cancelled"

RequestId = str | int | float


@dataclass(frozen=True)
class Refusal:
    """A frame we answer ourselves with a JSON-RPC error, echoing the request's id when it was readable."""

    id: RequestId | None
    code: int
    message: str

    def encode(self) -> str:
        frame = {"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}}
        return json.dumps(frame, separators=(",", ":"))


class _Unusable:
    """Stands in for a number or constant JSON allows but we refuse (5,000 digits, NaN, 1e999)."""

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 20 else f"{text[:12]}... ({len(text)} characters)"


def _parse_int(text: str) -> int | _Unusable:
    return int(text) if len(text.lstrip("-")) <= MAX_NUMBER_DIGITS else _Unusable(text)


def _parse_float(text: str) -> float | _Unusable:
    number = float(text) if len(text) <= MAX_NUMBER_DIGITS * 4 else math.inf
    return number if math.isfinite(number) else _Unusable(text)


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_Unusable)


class _NeedsCare(Exception):
    """Raised by the plain decoder's hooks: the line holds something only the careful path may judge."""


def _plain_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _NeedsCare
    return int(text)


def _plain_float(text: str) -> float:
    number = float(text) if len(text) <= MAX_NUMBER_DIGITS else math.inf
    if not math.isfinite(number):
        raise _NeedsCare
    return number


def _refuse_constant(text: str) -> float:
    raise _NeedsCare


_PLAIN_DECODER = json.JSONDecoder(
    parse_int=_plain_int, parse_float=_plain_float, parse_constant=_refuse_constant
)


def _decode_plain(text: str) -> Any:
    """The common line in one C pass, or None when the line needs the careful path.

    A value decoded here needs no walk: it cannot nest deeper than the line has brackets, its strings
    came from UTF-8 and escapes other than `\\uD800`-`\\uDFFF` (the only way to write a lone surrogate), and
    the hooks refused every number the careful path would refuse.
    """
    if text.count("{") + text.count("[") > MAX_DEPTH or "\\ud" in text or "\\uD" in text:
        return None
    try:
        return _PLAIN_DECODER.decode(text)
    except (ValueError, _NeedsCare):
        return None


def _problem(value: Any) -> str | None:
    """Why a decoded JSON value cannot be served, or None: depth, numbers, lone surrogates."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"the message nests deeper than {MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds a lone UTF-16 surrogate, which is not Unicode text"
        elif isinstance(item, _Unusable):
            return f"the number {item.text} is out of range (at most {MAX_NUMBER_DIGITS} digits, finite)"
    return None


def _readable_id(value: Any) -> RequestId | None:
    if isinstance(value, dict):
        request_id = value.get("id")
        if isinstance(request_id, str | int | float) and not isinstance(request_id, bool):
            return request_id
    return None


def salvage_id(text: str) -> RequestId | None:
    """The top-level `id` of a line that does not parse, if it comes before the damage."""

    def skip_space(index: int) -> int:
        return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]  # `*` always matches

    try:
        index = skip_space(0)
        if text[index] != "{":
            return None
        while True:
            key, index = _DECODER.raw_decode(text, skip_space(index + 1))
            index = skip_space(index)
            if not isinstance(key, str) or text[index] != ":":
                return None
            value, index = _DECODER.raw_decode(text, skip_space(index + 1))
            if key == "id":
                return _readable_id({"id": value})
            index = skip_space(index)
            if text[index] != ",":
                return None
    except (ValueError, IndexError, RecursionError):
        return None


def decode_line(line: bytes | OversizedLine) -> SessionMessage | list[Any] | Refusal | None:
    """One line off the wire: a message, a batch (its raw members), a refusal, or None (blank)."""
    if isinstance(line, OversizedLine):
        readable = salvage_id(line.head.decode("utf-8", "replace"))
        return Refusal(
            readable, types.INVALID_REQUEST, f"Invalid request: the line exceeds {MAX_LINE_BYTES} bytes"
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        readable = salvage_id(line.decode("utf-8", "replace"))
        return Refusal(readable, types.PARSE_ERROR, "Parse error: the line is not UTF-8 text")
    value = _decode_plain(text)
    if value is None:  # a JSON null is refused by decode_member, and as well by the careful path
        return _decode_carefully(text)
    return value if isinstance(value, list) else decode_member(value)


def _decode_carefully(text: str) -> SessionMessage | list[Any] | Refusal | None:
    """Any line the plain decoder passed on: blank, invalid, or holding what we refuse."""
    if not text.strip():
        return None
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return Refusal(salvage_id(text), types.PARSE_ERROR, "Parse error: the line is not valid JSON")
    if problem := _problem(value):
        return Refusal(_readable_id(value), types.INVALID_REQUEST, f"Invalid request: {problem}")
    if isinstance(value, list):
        return value
    return decode_member(value)


def decode_member(value: Any) -> SessionMessage | Refusal:
    """A decoded JSON value as a JSON-RPC message, or the reason it is not one."""
    if isinstance(value, dict) and "id" in value and "method" in value:
        # A request, most likely: validating one model costs a third of trying the whole union, whose
        # choice for a valid request is this same model (the member that sets the most fields).
        try:
            return SessionMessage(types.JSONRPCRequest.model_validate(value, by_name=False))
        except ValidationError:
            pass  # not a request after all: the union below names what it is, or why not
    request_id = _readable_id(value)
    if not isinstance(value, dict):
        return Refusal(None, types.INVALID_REQUEST, "Invalid request: a message must be a JSON object")
    try:
        message = types.jsonrpc_message_adapter.validate_python(value, by_name=False)
    except ValidationError:
        return Refusal(request_id, types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message")
    if "id" in value and isinstance(message, types.JSONRPCNotification):
        # The SDK would read a request with a bad id as a notification and never answer it.
        return Refusal(
            request_id, types.INVALID_REQUEST, "Invalid request: id must be a string or an integer"
        )
    return SessionMessage(message)


def _has_modern_envelope(message: types.JSONRPCRequest) -> bool:
    meta = (message.params or {}).get("_meta")
    return isinstance(meta, dict) and types.PROTOCOL_VERSION_META_KEY in meta


class FrameWriter:
    """Writes whole lines to the wire, one at a time."""

    def __init__(self, wire: BinaryIO) -> None:
        self._wire = wire
        self._lock = anyio.Lock()

    async def write(self, frame: str) -> None:
        data = (frame + "\n").encode("utf-8")
        async with self._lock:
            await anyio.to_thread.run_sync(self._write_and_flush, data)

    def _write_and_flush(self, data: bytes) -> None:
        self._wire.write(data)
        self._wire.flush()


def _encoded_or_refusal(message: SessionMessage, request_id: RequestId | None) -> str | None:
    """The message as a line; if it cannot be one, an error answer to the request it answered (None
    for a notification: it is dropped)."""
    try:
        return message.message.model_dump_json(by_alias=True, exclude_unset=True)
    except PydanticSerializationError as error:
        log.error("a message to the client (answering %r) could not be encoded: %s", request_id, error)
        if request_id is None:
            return None
        problem = "Internal error: the answer could not be encoded as UTF-8 JSON; nothing else was affected"
        return Refusal(request_id, types.INTERNAL_ERROR, problem).encode()


@dataclass
class _Batch:
    """Replies to one 2025-03-26 batch, written as one array when every request in it is answered."""

    waiting: set[RequestId]
    replies: list[str] = field(default_factory=list)


class _SdkLoop:
    """One run of the SDK's serving loop on in-memory streams; cancel it to start over."""

    def __init__(self, server: Server[Any], connection: StdioConnection) -> None:
        self.inbox, self._inbox_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        self._outbox_in, self._outbox = anyio.create_memory_object_stream[SessionMessage](0)
        self._server = server
        self._connection = connection
        self.scope = anyio.CancelScope()

    async def run(self) -> None:
        with self.scope:
            async with anyio.create_task_group() as group:
                group.start_soon(self._relay_replies)
                await self._server.run(
                    self._inbox_out, self._outbox_in, self._server.create_initialization_options()
                )

    async def _relay_replies(self) -> None:
        async with self._outbox:
            async for message in self._outbox:
                await self._connection.deliver(message)


DRAIN_SECONDS = 130.0  # the default call timeout (120 s) and a margin


class StdioConnection:
    """One client on a pair of byte streams."""

    def __init__(
        self, server: Server[Any], writer: FrameWriter, drain_seconds: float = DRAIN_SECONDS
    ) -> None:
        self._server = server
        self._writer = writer
        self._drain_seconds = drain_seconds
        self._unanswered: set[RequestId] = set()  # requests passed to the SDK, not yet answered
        self._all_answered = anyio.Event()
        self._loop: _SdkLoop | None = None
        self._era: str | None = None  # decided by the first request, as the SDK does
        self._only_discovered = True  # every request so far was server/discover
        self._initialize_ids: set[RequestId] = set()
        self._version: str | None = None  # the protocol version `initialize` settled on
        self._batches: dict[RequestId, _Batch] = {}

    async def serve(self, lines: AsyncIterator[bytes | OversizedLine]) -> None:
        """Serve until the input ends."""
        async with anyio.create_task_group() as group:
            self._start_loop(group)
            async for line in lines:
                await self._receive(group, decode_line(line))
            with anyio.move_on_after(self._drain_seconds):
                while self._unanswered:
                    self._all_answered = anyio.Event()
                    await self._all_answered.wait()
            if self._unanswered:
                log.warning(
                    "stdin closed; %d request(s) still unanswered after %g s",
                    len(self._unanswered),
                    self._drain_seconds,
                )
            assert self._loop is not None
            await self._loop.inbox.aclose()

    def _answered(self, request_id: Any) -> None:
        self._unanswered.discard(request_id)
        if not self._unanswered:
            self._all_answered.set()

    def _start_loop(self, group: TaskGroup) -> None:
        self._loop = _SdkLoop(self._server, self)
        group.start_soon(self._loop.run)

    async def _receive(self, group: TaskGroup, decoded: SessionMessage | list[Any] | Refusal | None) -> None:
        if decoded is None:
            return
        if isinstance(decoded, Refusal):
            log.info("refused a message on stdio: %s", decoded.message)
            await self._writer.write(decoded.encode())
        elif isinstance(decoded, list):
            await self._receive_batch(group, decoded)
        else:
            await self._forward(group, decoded)

    async def _forward(self, group: TaskGroup, message: SessionMessage) -> None:
        request = message.message
        if isinstance(request, types.JSONRPCNotification) and request.method == CANCELLED:
            cancelled = (request.params or {}).get("requestId")
            self._answered(cancelled)  # the SDK sends no answer to a cancelled request
            await self._drop_from_batch(cancelled)
        if isinstance(request, types.JSONRPCRequest):
            if self._era is None:
                modern = request.method != "initialize" and _has_modern_envelope(request)
                self._era = "modern" if modern else "handshake"
            elif request.method == "initialize" and self._era == "modern" and self._only_discovered:
                self._restart_in_handshake_era(group)
            if request.method == "initialize":
                self._initialize_ids.add(request.id)
            self._only_discovered = self._only_discovered and request.method == DISCOVER
            self._unanswered.add(request.id)
        assert self._loop is not None
        await self._loop.inbox.send(message)

    def _restart_in_handshake_era(self, group: TaskGroup) -> None:
        """The client gave up waiting for its discover and fell back to initialize: serve that."""
        log.info("initialize after server/discover: serving this connection in the handshake era")
        assert self._loop is not None
        self._loop.scope.cancel()
        self._loop.inbox.close()
        self._unanswered.clear()  # the discovers the old loop had: it answers none of them now
        self._era = "handshake"
        self._start_loop(group)

    async def _receive_batch(self, group: TaskGroup, members: list[Any]) -> None:
        if not members:
            empty = Refusal(None, types.INVALID_REQUEST, "Invalid request: an empty batch")
            await self._writer.write(empty.encode())
            return
        decoded = [decode_member(member) for member in members]
        if self._version not in BATCH_VERSIONS:
            reason = (
                "Invalid request: JSON-RPC batches exist only in protocol version 2025-03-26 (this"
                f" connection: {self._version or 'not initialized'}); send one message per line"
            )
            await self._write_array(
                [
                    Refusal(_readable_id(member), types.INVALID_REQUEST, reason).encode()
                    for member, message in zip(members, decoded, strict=True)
                    if not isinstance(message, SessionMessage)
                    or isinstance(message.message, types.JSONRPCRequest)
                ]
            )
            return
        batch = _Batch(waiting=set())
        accepted: list[SessionMessage] = []
        for message in decoded:
            if isinstance(message, Refusal):
                batch.replies.append(message.encode())
                continue
            if isinstance(message.message, types.JSONRPCRequest):
                request_id = message.message.id
                if request_id in self._batches or request_id in batch.waiting:
                    duplicate = Refusal(request_id, types.INVALID_REQUEST, "Invalid request: duplicate id")
                    batch.replies.append(duplicate.encode())
                    continue
                batch.waiting.add(request_id)
                self._batches[request_id] = batch
            accepted.append(message)
        if not batch.waiting:
            await self._write_array(batch.replies)
        for message in accepted:
            await self._forward(group, message)

    async def _drop_from_batch(self, request_id: Any) -> None:
        """A cancelled request gets no answer (the SDK sends none), so its batch stops waiting for it;
        should an answer come anyway, it is written alone."""
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return
        batch = self._batches.pop(request_id, None)
        if batch is None:
            return
        batch.waiting.discard(request_id)
        if not batch.waiting:
            await self._write_array(batch.replies)

    async def _write_array(self, frames: list[str]) -> None:
        if frames:  # a batch of notifications alone gets no reply at all
            await self._writer.write("[" + ",".join(frames) + "]")

    async def deliver(self, message: SessionMessage) -> None:
        """A message from the SDK to the client: alone, or into the batch it answers."""
        reply = message.message
        request_id = reply.id if isinstance(reply, types.JSONRPCResponse | types.JSONRPCError) else None
        frame = _encoded_or_refusal(message, request_id)
        if request_id is not None:
            self._answered(request_id)
        if frame is None:
            return
        if request_id is not None and request_id in self._initialize_ids:
            self._initialize_ids.discard(request_id)
            version = (
                reply.result.get("protocolVersion") if isinstance(reply, types.JSONRPCResponse) else None
            )
            self._version = version if isinstance(version, str) else None
        batch = self._batches.pop(request_id, None) if request_id is not None else None
        if batch is None:
            await self._writer.write(frame)
            return
        batch.replies.append(frame)
        batch.waiting.discard(request_id)
        if not batch.waiting:
            await self._write_array(batch.replies)


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than MAX_LINE_BYTES: only its head is kept, to read the id from."""

    head: bytes


async def read_lines(wire: BinaryIO) -> AsyncIterator[bytes | OversizedLine]:
    """Lines from the wire, each at most MAX_LINE_BYTES long; longer ones are skipped but for their head."""
    while True:
        line = await anyio.to_thread.run_sync(wire.readline, MAX_LINE_BYTES + 1, abandon_on_cancel=True)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        head = line[:4096]
        while line and not line.endswith(b"\n"):
            line = await anyio.to_thread.run_sync(wire.readline, MAX_LINE_BYTES, abandon_on_cancel=True)
        yield OversizedLine(head)


@contextmanager
def claimed_stdio() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Private copies of fds 0 and 1 for the wire; meanwhile fd 0 reads /dev/null, fd 1 writes to stderr."""
    sys.stdout.flush()
    wire_in = os.fdopen(os.dup(0), "rb")
    wire_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        yield wire_in, wire_out
    finally:
        sys.stdout.flush()
        os.dup2(wire_out.fileno(), 1)
        os.dup2(wire_in.fileno(), 0)


async def serve_stdio(server: Server[Any], drain_seconds: float = DRAIN_SECONDS) -> None:
    with claimed_stdio() as (wire_in, wire_out):
        await StdioConnection(server, FrameWriter(wire_out), drain_seconds).serve(read_lines(wire_in))
