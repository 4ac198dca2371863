"""Reading a provider's answer within bounds: at most `limit` bytes after decompression, and JSON that
holds no NaN or Infinity, no number beyond a float, and no nesting deeper than `MAX_DEPTH`.

The body is read raw and decompressed here (gzip or deflate, the encodings we ask for), a piece at a
time, never more than the limit in memory: a 300 KB gzip answer that would inflate to 400 MB stops
at the limit. Every failure is a `malformed` answer (upstream_error) saying what was wrong.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import AsyncIterator
from typing import Any

from .payload import ProviderError, malformed

ACCEPT_ENCODING = "gzip, deflate"
DEFAULT_LIMIT = 4 * 1024 * 1024
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
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep(provider) from None
    except _NotFinite:
        raise malformed(provider, "a number is NaN, Infinity or beyond what a float holds") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of more than 4300 digits
        raise malformed(provider, "the body is not JSON") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise _too_deep(provider)
    return value


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


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests lists and objects more than `limit` levels (checked without recursion)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, list | dict)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, list | dict)
        ]
        if not level:
            return False
    return True
