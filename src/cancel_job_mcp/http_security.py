"""What guards the HTTP endpoint before the MCP SDK sees a request: Host and Origin allow-lists
(parsed into a name and an optional port, matched exactly), bearer tokens, and the methods a
stateless server does not serve. Pure ASGI, no framework.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .caller import TOKEN_NAME_KEY
from .http_values import DEFAULT_PORTS, Authority, NamedToken, Origin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class AllowList:
    """Host names that may be served on any port, and exact host:port pairs; the same for origins."""

    any_port_hosts: frozenset[str]
    hosts: frozenset[Authority]
    any_port_origins: frozenset[tuple[str, str]]  # (scheme, name)
    origins: frozenset[Origin]

    @classmethod
    def build(
        cls, bound_names: Iterable[str], hosts: Iterable[Authority], origins: Iterable[Origin]
    ) -> AllowList:
        """`bound_names` (loopback and the bind address) are allowed on any port, in Host and in Origin."""
        names = frozenset(bound_names)
        hosts = tuple(hosts)
        return cls(
            any_port_hosts=names | {host.name for host in hosts if host.port is None},
            hosts=frozenset(host for host in hosts if host.port is not None),
            any_port_origins=frozenset((scheme, name) for name in names for scheme in DEFAULT_PORTS),
            origins=frozenset(origins),
        )

    def allows_host(self, value: str) -> bool:
        try:
            host = Authority.parse(value)
        except ValueError:
            return False
        return host.name in self.any_port_hosts or host in self.hosts

    def allows_origin(self, value: str) -> bool:
        try:
            origin = Origin.parse(value)
        except ValueError:
            return False
        return (origin.scheme, origin.authority.name) in self.any_port_origins or origin in self.origins


async def send_json(
    send: Send, status: int, body: dict[str, str], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class HostOriginGuard:
    """DNS-rebinding protection: an unknown Host gets 421, an unknown Origin 403 (no Origin is fine)."""

    def __init__(self, app: ASGIApp, allowed: AllowList) -> None:
        self.app = app
        # A server sees few distinct values: each is parsed once. Bounded, so a client sending endless
        # distinct values cannot grow it.
        self._allows_host = lru_cache(maxsize=256)(allowed.allows_host)
        self._allows_origin = lru_cache(maxsize=256)(allowed.allows_origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = header(scope, b"host")
            if host is None or not self._allows_host(host):
                message = (
                    "This server does not answer to that Host; its operator can allow it with --allowed-host."
                )
                await send_json(send, 421, {"error": "misdirected_request", "message": message})
                return
            origin = header(scope, b"origin")
            if origin is not None and not self._allows_origin(origin):
                message = (
                    "Requests from that Origin are refused; its operator can allow it with --allowed-origin."
                )
                await send_json(send, 403, {"error": "forbidden_origin", "message": message})
                return
        await self.app(scope, receive, send)


class BearerAuth:
    """Every HTTP request needs `Authorization: Bearer <one of the tokens>`; the name of the token it
    presented goes into its scope (`caller.TOKEN_NAME_KEY`)."""

    def __init__(self, app: ASGIApp, tokens: Sequence[NamedToken]) -> None:
        self.app = app
        self._tokens = [(token.name, token.secret.encode()) for token in tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        # Compare against every token, without stopping early, so timing says nothing about which.
        matches = [hmac.compare_digest(presented or b"", secret) for _, secret in self._tokens]
        if presented is not None and any(matches):
            scope[TOKEN_NAME_KEY] = self._tokens[matches.index(True)][0]
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="cancel-job-mcp"' + (', error="invalid_token"' if presented else "")
        message = "Send Authorization: Bearer <token> with a token this server accepts."
        await send_json(
            send,
            401,
            {"error": "unauthorized", "message": message},
            [(b"www-authenticate", challenge.encode())],
        )

    @staticmethod
    def _presented(scope: Scope) -> bytes | None:
        credentials = bearer_credentials(scope)
        return credentials.encode("latin-1") if credentials is not None else None


def bearer_credentials(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if the request has one."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


class OnlyPost:
    """A stateless server has no session to stream to (GET) or end (DELETE): 405, at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "DELETE"):
            message = "This server is stateless: send each JSON-RPC message in its own POST."
            await send_json(
                send, 405, {"error": "method_not_allowed", "message": message}, [(b"allow", b"POST")]
            )
            return
        await self.app(scope, receive, send)


def replayed_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits on the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
