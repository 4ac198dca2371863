"""List cursors: opaque, tamper-evident, bound to their query, and keyed per state directory."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.errors import ErrorCode, ToolError

QUERY: dict[str, str | None] = {"backend": "local", "project": "web", "status": None}


def refused(codec: CursorCodec, cursor: str) -> None:
    with pytest.raises(ToolError) as raised:
        codec.decode(cursor)
    assert raised.value.code == ErrorCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("cursor: is not a next_cursor this server returned")


def test_a_cursor_carries_its_query_and_the_backend_cursor(tmp_path: Path) -> None:
    codec = CursorCodec(tmp_path / "cursor.key")
    cursor = codec.encode(QUERY, "page-2")
    assert "page-2" not in cursor, "opaque: the backend's cursor is not readable as is"
    assert codec.decode(cursor) == (QUERY, "page-2")


def test_the_key_is_created_once_private_and_shared_by_servers_of_one_state_directory(tmp_path: Path) -> None:
    key = tmp_path / "state" / "cursor.key"
    cursor = CursorCodec(key).encode(QUERY, "7")
    assert key.stat().st_mode & 0o777 == 0o600
    assert CursorCodec(key).decode(cursor) == (QUERY, "7"), "another server on the same state directory"
    refused(CursorCodec(tmp_path / "other.key"), cursor)


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    key = tmp_path / "cursor.key"
    codecs = [CursorCodec(key) for _ in range(8)]
    cursors: list[str] = []
    threads = [
        threading.Thread(target=lambda c=codec: cursors.append(c.encode(QUERY, "x"))) for codec in codecs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(cursors)) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cursor.key"], "no draft key left behind"


def test_an_edited_or_forged_cursor_is_refused(tmp_path: Path) -> None:
    codec = CursorCodec(tmp_path / "cursor.key")
    payload, _, signature = codec.encode(QUERY, "page-2").partition(".")
    forged = base64.urlsafe_b64encode(json.dumps({"q": QUERY, "c": "page-9"}).encode()).decode().rstrip("=")
    for cursor in (
        f"{forged}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        payload,
        "",
        "." * 10,
        "x" * 5000,
    ):
        refused(codec, cursor)


def test_a_signed_payload_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    codec = CursorCodec(tmp_path / "cursor.key")
    payload = base64.urlsafe_b64encode(json.dumps({"q": "web", "c": 3}).encode()).decode().rstrip("=")
    refused(codec, f"{payload}.{codec._sign(payload)}")
