"""Room for new HTTP sessions: at the session cap, the least recently used idle session is closed.

Many clients (the TypeScript SDK, mcp-remote, the Inspector) end a session without `DELETE`: it stays
open until its idle timeout, and with the SDK's plain cap every new client would then get 503 once
`--max-sessions` sessions were left behind. Here a new session closes the idle one used longest ago
(its client, should it come back, gets 404 and opens a new session, as the protocol says); only when
every open session is serving a request (an open GET stream counts) is the new one refused.

The SDK's session manager has no hook for this: we wrap its admission step, and read each session's
idle countdown (its transport's `idle_scope`, whose deadline is the last request's end plus the idle
timeout, or infinite while a request is in flight).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

log = logging.getLogger(__name__)


def evict_idle_sessions_when_full(manager: StreamableHTTPSessionManager) -> None:
    """From now on, a new session at the cap first closes the least recently used idle session."""
    admit = manager._admit_session

    def admit_or_make_room(requestor: Any) -> Any:
        transport = admit(requestor)
        if transport is None and _close_least_recently_used(manager):
            transport = admit(requestor)
        return transport

    manager._admit_session = admit_or_make_room  # type: ignore[method-assign]


def _close_least_recently_used(manager: StreamableHTTPSessionManager) -> bool:
    """Close the idle session whose last request ended longest ago; False when every one is busy."""
    idle = {
        session_id: transport.idle_scope.deadline
        for session_id, transport in manager._server_instances.items()
        if transport.idle_scope is not None
        and not transport.idle_scope.cancel_called
        and math.isfinite(transport.idle_scope.deadline)
    }
    if not idle:
        return False
    session_id = min(idle, key=idle.__getitem__)
    transport = manager._server_instances.pop(session_id)  # its place is free from now on
    assert transport.idle_scope is not None
    transport.idle_scope.cancel()  # its serving task ends, and discards the session
    log.info("session cap reached: closed the least recently used idle session %s", session_id[:8])
    return True
