"""Reading one line of MCP over stdio into a message, as stdio.py's docstring says: every request whose
id can be read gets an answer (salvage_id), and what a line holds is bounded (size, depth, numbers,
lone surrogates) before the SDK sees it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from mcp import types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from .json_depth import nesting_exceeds

MAX_LINE_BYTES = 4 * 1024 * 1024
# A client's message: about as deep as the SDK's JSON reader takes over Streamable HTTP (pydantic-core
# refuses past 201 levels), so what one transport serves the other serves too. A provider's answer has a
# smaller limit of its own (backends/http/answer.py).
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


def _problem(text: str, value: Any) -> str | None:
    """Why the JSON `text`, decoded as `value`, cannot be served, or None: depth, numbers, lone
    surrogates."""
    if nesting_exceeds(text, MAX_DEPTH):
        return f"the message nests deeper than {MAX_DEPTH} levels"
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict | list):
            pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds a lone UTF-16 surrogate, which is not Unicode text"
        elif isinstance(item, _Unusable):
            return f"the number {item.text} is out of range (at most {MAX_NUMBER_DIGITS} digits, finite)"
    return None


def readable_id(value: Any) -> RequestId | None:
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
                return readable_id({"id": value})
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
    if problem := _problem(text, value):
        return Refusal(readable_id(value), types.INVALID_REQUEST, f"Invalid request: {problem}")
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
    request_id = readable_id(value)
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


def has_modern_envelope(message: types.JSONRPCRequest) -> bool:
    meta = (message.params or {}).get("_meta")
    return isinstance(meta, dict) and types.PROTOCOL_VERSION_META_KEY in meta


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than MAX_LINE_BYTES: only its head is kept, to read the id from."""

    head: bytes
