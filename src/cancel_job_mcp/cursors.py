"""Opaque, tamper-evident list cursors.

A backend's own cursor (a page number, an offset, a provider token) is wrapped together with the
query it belongs to (backend, project, status) and signed with HMAC-SHA256 under a key kept in the
state directory. A cursor that was edited, forged, or replayed against another query is refused.
Servers that share a state directory (replicas behind a load balancer) share the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from .errors import cursor_key_too_short, cursor_key_unreadable, refused_cursor

_SIGNATURE_BYTES = 16
MIN_KEY_BYTES = 32  # as many as a new key has
_MAX_CURSOR_LENGTH = 4096


class CursorCodec:
    def __init__(self, key_path: Path) -> None:
        self._key_path = key_path
        self._key: bytes | None = None

    def encode(self, query: dict[str, str | None], native: str) -> str:
        payload = _b64encode(json.dumps({"q": query, "c": native}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def decode(self, cursor: str) -> tuple[dict[str, Any], str]:
        """(query, backend cursor) inside `cursor`, if this server signed it; check the query after."""
        payload, _, signature = cursor.partition(".")
        expected = self._sign(payload).encode()
        if len(cursor) > _MAX_CURSOR_LENGTH or not hmac.compare_digest(signature.encode(), expected):
            raise refused_cursor()
        content = json.loads(_b64decode(payload))
        query, native = content.get("q"), content.get("c")
        if not isinstance(query, dict) or not isinstance(native, str):
            raise refused_cursor()
        return query, native

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret(), payload.encode(), hashlib.sha256).digest()
        return _b64encode(digest[:_SIGNATURE_BYTES])

    def _secret(self) -> bytes:
        if self._key is None:
            try:
                key = load_or_create_key(self._key_path)
            except OSError as error:
                raise cursor_key_unreadable(self._key_path, error) from None
            if len(key) < MIN_KEY_BYTES:
                raise cursor_key_too_short(self._key_path, len(key), MIN_KEY_BYTES)
            self._key = key
        return self._key


def load_or_create_key(path: Path) -> bytes:
    """Read the key, creating it first if needed; concurrent creators agree on one key."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secrets.token_bytes(32))
    try:
        os.link(draft, path)  # atomic: fails if another process published its key first
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
