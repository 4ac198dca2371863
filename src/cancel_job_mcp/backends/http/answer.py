"""Reading a provider's answer within bounds: at most `limit` bytes after decompression, and JSON that
holds no NaN or Infinity, no number beyond a float, no nesting deeper than `MAX_DEPTH`, and no lone
UTF-16 surrogate (legal JSON, `"\\ud800"`, but not text: no answer of ours could carry it).

The body is read raw and decompressed here (gzip or deflate, the encodings we ask for), a piece at a
time, never more than the limit in memory: a 300 KB gzip answer that would inflate to 400 MB stops
at the limit. Every failure is a `malformed` answer (upstream_error) saying what was wrong.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

from ...errors import ProviderError
from ...errors.providers import malformed
from ...json_depth import nesting_exceeds

ACCEPT_ENCODING = "gzip, deflate"
DEFAULT_LIMIT = 4 * 1024 * 1024
# A job record nests a few levels. The answer is walked by recursion (redaction) and returned inside
# a tool result, which must stay readable by a client that refuses a message past 200 levels
# (stdio_lines.MAX_DEPTH, the SDK's own JSON reader): far below both.
MAX_DEPTH = 64
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class TooLarge(Exception):
    """The answer is longer than the limit (the caller says whose answer it was)."""


async def read_body(
    chunks: AsyncIterator[bytes], encoding: str | None, length: str | None, limit: int, provider: str
) -> bytes:
    """The body, decompressed, from its raw `chunks`; TooLarge past `limit` bytes, raw or decompressed."""
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise TooLarge
    coding = (encoding or "identity").strip().lower()
    if coding not in ("identity", *_WBITS):
        raise malformed(
            provider, f"the answer is in the content encoding {coding[:40]!r}, which we did not ask for"
        )
    decompressor = zlib.decompressobj(_WBITS[coding]) if coding in _WBITS else None
    body = bytearray()
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise TooLarge
            if decompressor is None:
                body += chunk
            else:
                # max_length: never inflate more than one byte past the limit, whatever the ratio.
                while chunk and len(body) <= limit:
                    body += decompressor.decompress(chunk, limit + 1 - len(body))
                    chunk = decompressor.unconsumed_tail
            if len(body) > limit:
                raise TooLarge
        if decompressor is not None:
            body += decompressor.flush()
            if not decompressor.eof:
                raise malformed(provider, f"the {coding} body ends before its end marker")
    except zlib.error:
        raise malformed(provider, f"the body is not valid {coding}") from None
    if len(body) > limit:
        raise TooLarge
    return bytes(body)


def decode_json(data: bytes, provider: str) -> Any:
    """`data` as JSON, refusing NaN, Infinity, numbers beyond a float and absurd nesting."""
    try:
        text = _json_text(data)
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep(provider) from None
    except _NotFinite:
        raise malformed(provider, "a number is NaN, Infinity or beyond what a float holds") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of more than 4300 digits
        raise malformed(provider, "the body is not JSON") from None
    if nesting_exceeds(text, MAX_DEPTH):
        raise _too_deep(provider)
    if _may_hold_surrogates(text) and _holds_lone_surrogate(value):
        raise malformed(provider, "a string holds a lone UTF-16 surrogate, which is not Unicode text")
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _may_hold_surrogates(text: str) -> bool:
    """True when a string may decode to a lone surrogate: an escape of one (`\\ud800`; a pair decodes
    to one character), or one the bytes carried (decoded with surrogatepass)."""
    return _SURROGATE.search(text) is not None


def _holds_lone_surrogate(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
    return False


def json_strings(data: bytes) -> str:
    """A text in which every key and string of the JSON `data` appears as it decodes (escapes resolved).

    Searching it for something is searching every string of the JSON at once, at the speed of one
    pass over the body; pieces of text across two strings may be found too (a false alarm, never a miss).
    """
    text = _json_text(data)
    return _ESCAPE.sub(_unescaped, text) if "\\" in text else text


def _json_text(data: bytes) -> str:
    """`data` decoded as `json.loads` decodes bytes (UTF-8, -16 or -32, told apart by the first bytes)."""
    return data.decode(json.detect_encoding(data), "surrogatepass")


_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescaped(escape: re.Match[str]) -> str:
    code = escape.group()[1:]
    return chr(int(code[1:], 16)) if len(code) == 5 else _ESCAPED.get(code, code)


class _NotFinite(Exception):
    pass


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(text)
    return number


def _too_deep(provider: str) -> ProviderError:
    return malformed(provider, f"the JSON is nested more than {MAX_DEPTH} levels deep")
