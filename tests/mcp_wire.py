"""MCP as the tests that speak it by hand write it (httpx over Streamable HTTP, raw stdio pipes): the
messages and headers, written once."""

from __future__ import annotations

from typing import Any

import httpx

PROTOCOL_VERSION = "2025-11-25"
# What a Streamable HTTP client sends with each POST.
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def initialize(request_id: int | str = 1, version: str = PROTOCOL_VERSION) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }


INITIALIZE = initialize()


def open_session(url: str, **headers: str) -> httpx.Response:
    """POST initialize over Streamable HTTP; a stateful server's answer names the new session."""
    return httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers}, timeout=30)
