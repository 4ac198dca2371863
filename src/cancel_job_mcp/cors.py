"""CORS for the origins an operator allowed by name (--allowed-origin), so a browser host on another
origin (a web chat rendering the job panel, the Inspector's page) can reach the HTTP endpoint.

It sits behind HostOriginGuard (which already refused unknown Origins with 403) and in front of the
bearer token check: a preflight carries no token, and a 401 must be readable by the page to show
its WWW-Authenticate challenge. Origins allowed only because they are loopback get no CORS answer:
any local web page would otherwise be able to call the tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .http_security import ASGIApp, Message, Receive, Scope, Send, header, send_json
from .http_values import Origin

ALLOWED_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    # The 2026-07-28 era's routing headers, sent by its clients on every POST.
    "mcp-method",
    "mcp-name",
)
# Mcp-Param-<name>: one per x-mcp-header tool parameter, so not a fixed list.
PARAM_HEADER = re.compile(r"mcp-param-[a-z0-9-]+")
EXPOSED_RESPONSE_HEADERS = b"Mcp-Session-Id, WWW-Authenticate"
PREFLIGHT_MAX_AGE = b"600"


class Cors:
    """Answers preflights and marks responses readable, for the explicitly allowed origins only."""

    def __init__(self, app: ASGIApp, origins: Iterable[Origin], methods: Iterable[str]) -> None:
        self.app = app
        self._origins = frozenset(origins)
        self._methods = ", ".join(methods).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._allows(origin)
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") is not None:
            await (self._preflight(scope, origin, send) if allowed else _refuse_preflight(send))
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_readable(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_response_headers(origin)]
            await send(message)

        await self.app(scope, receive, send_readable)

    def _allows(self, value: str) -> bool:
        try:
            return Origin.parse(value) in self._origins
        except ValueError:
            return False

    async def _preflight(self, scope: Scope, origin: str, send: Send) -> None:
        requested = header(scope, b"access-control-request-headers") or ""
        names = (part.strip().lower() for part in requested.split(","))
        params = [name for name in names if PARAM_HEADER.fullmatch(name)]
        headers = [
            *_response_headers(origin),
            (b"access-control-allow-methods", self._methods),
            (b"access-control-allow-headers", ", ".join((*ALLOWED_REQUEST_HEADERS, *params)).encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _response_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSED_RESPONSE_HEADERS),
        (b"vary", b"Origin"),
    ]


async def _refuse_preflight(send: Send) -> None:
    message = "Cross-origin requests are answered only for origins the operator names with --allowed-origin."
    await send_json(send, 403, {"error": "forbidden_origin", "message": message})
