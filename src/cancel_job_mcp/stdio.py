"""MCP over stdio: our framing in front of the SDK's serving loop.

We read and write the lines ourselves, not through the SDK's `stdio_server`, for what its transport
does not do (each shown beside the bare SDK in tests/test_stdio_sdk.py):

1. Every request whose id can be read is answered: a line that is not JSON, or is cut short, gets
   -32700 with the id read from its start (the SDK logs such a line and answers nothing).
2. A line is bounded before the SDK sees it (stdio_lines.py): at most 4 MiB (the SDK reads a line of
   any length into memory), UTF-8 (the SDK replaces bad bytes and serves the request), no lone
   surrogate, no number of over 100 digits, no NaN or Infinity (the SDK serves NaN), at most 200
   levels, an id that is a string or an integer; -32600 with the id otherwise.
3. A JSON-RPC batch gets one reply per member: real answers on a 2025-03-26 connection (the one
   revision that has batches), an error each otherwise (the SDK answers nothing).
4. A client that probes with `server/discover` and then falls back to `initialize` (the AI SDK waits
   one second, less than our start-up on a busy machine) is served: while a connection has seen
   nothing but `server/discover`, an `initialize` starts it over in the handshake era (the SDK
   refuses it, -32022).
5. When the input ends, the requests still running are finished and answered (within
   `drain_seconds`, the call timeout and a little more) before the loop stops:
   `cat requests | cancel-job-mcp` gets every answer (the SDK cancels them, answering
   -32000 "Connection closed").
6. An answer that cannot be encoded (it would need UTF-8 to carry a lone surrogate) becomes an error
   answer to its request, never the end of the connection (the SDK's writer fails, and the
   transport with it).

As the SDK's transport does, while serving, fd 0 reads /dev/null and fd 1 writes to stderr, so a
stray print or a job's child process never touches the wire; the wire itself is a private,
non-inheritable copy of both. The SDK offers that claim only together with its own reader (the
claim alone is private, `mcp.server.stdio._claim_fd`), so `claimed_stdio` does it here.
"""

from __future__ import annotations

import logging
import os
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
from pydantic_core import PydanticSerializationError

from .defaults import DEFAULT_CALL_TIMEOUT, DRAIN_MARGIN_SECONDS
from .stdio_lines import (
    BATCH_VERSIONS,
    CANCELLED,
    DISCOVER,
    MAX_LINE_BYTES,
    OversizedLine,
    Refusal,
    RequestId,
    decode_line,
    decode_member,
    has_modern_envelope,
    readable_id,
)

log = logging.getLogger(__name__)


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


DRAIN_SECONDS = DEFAULT_CALL_TIMEOUT + DRAIN_MARGIN_SECONDS


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
                modern = request.method != "initialize" and has_modern_envelope(request)
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
                    Refusal(readable_id(member), types.INVALID_REQUEST, reason).encode()
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
