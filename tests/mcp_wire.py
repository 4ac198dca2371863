"""MCP as the tests that speak it by hand write it (httpx over Streamable HTTP, raw stdio pipes): the
messages and headers, written once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

PROTOCOL_VERSION = "2025-11-25"
# What a Streamable HTTP client sends with each POST.
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
# The tools, in tools/list's order: the reviewed snapshot test_tools_list.py holds the whole answer to.
TOOL_NAMES = [
    tool["name"]
    for tool in json.loads((Path(__file__).parent / "snapshots" / "tools_list.json").read_text())["tools"]
]


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
