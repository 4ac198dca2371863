"""Serving the MCP server over Streamable HTTP (stdio is in `stdio`).

Over HTTP the server is safe to expose: DNS-rebinding protection is always on (explicit Host and
Origin allow-lists, whatever the bind address), requests need a bearer token when tokens are
configured, bodies are capped, and binding beyond loopback without tokens is refused unless the
operator says so. The tokens guard this server only; backends use their own credentials.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings

from .app import AppOptions, build_mcp_server, configure_logging
from .config import HTTP_TOKENS_ENV

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class ServeError(Exception):
    """A setting that makes serving unsafe or impossible, reported before anything listens."""


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    stateless: bool = False
    workers: int = 1
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    token_file: str | None = None
    allow_unauthenticated: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_tokens(token_file: str | None, environ: dict[str, str] | None = None) -> list[str]:
    """Bearer tokens from `$CANCEL_JOB_MCP_HTTP_TOKENS` (comma-separated) and the token file (one a line)."""
    environ = dict(os.environ) if environ is None else environ
    tokens = [token.strip() for token in environ.get(HTTP_TOKENS_ENV, "").split(",") if token.strip()]
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ServeError(f"cannot read the token file {token_file}: {error.strerror}") from None
        tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if any(len(token) < MIN_TOKEN_LENGTH for token in tokens):
        raise ServeError(
            f"every HTTP bearer token must be at least {MIN_TOKEN_LENGTH} characters;"
            " generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return tokens


def transport_security(options: HttpOptions) -> TransportSecuritySettings:
    """Host and Origin allow-lists: loopback names, the bound host, and what the operator allows."""
    hosts = set(LOOPBACK_NAMES)
    if not _is_unspecified(options.host):
        hosts.add(f"[{options.host}]" if ":" in options.host else options.host)
    allowed_hosts = {_host_pattern(name) for name in (*hosts, *options.allowed_hosts)}
    allowed_origins = {f"http://{name}:*" for name in hosts} | set(options.allowed_origins)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(allowed_hosts),
        allowed_origins=sorted(allowed_origins),
    )


def _host_pattern(host: str) -> str:
    """`name` or `[v6]` allows any port; `name:port` only that port."""
    has_port = ":" in host[host.rfind("]") + 1 :]
    return host if has_port else f"{host}:*"


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def check_exposure(options: HttpOptions, tokens: Sequence[str]) -> None:
    if is_loopback(options.host) or tokens or options.allow_unauthenticated:
        return
    raise ServeError(
        f"refusing to serve on {options.host} without authentication: anyone who can reach it could"
        f" cancel jobs. Set {HTTP_TOKENS_ENV} (or --token-file), bind to 127.0.0.1, or pass"
        " --allow-unauthenticated if another layer authenticates requests."
    )


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <one of the tokens>`."""

    def __init__(self, app: Any, tokens: Sequence[str]) -> None:
        self.app = app
        self._tokens = [token.encode() for token in tokens]

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        # Compare against every token, without stopping early, so timing says nothing about which.
        if presented is not None and any([hmac.compare_digest(presented, token) for token in self._tokens]):
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="cancel-job-mcp"' + (', error="invalid_token"' if presented else "")
        message = "Send Authorization: Bearer <token> with a token this server accepts."
        body = json.dumps({"error": "unauthorized", "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", challenge.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _presented(scope: dict[str, Any]) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return credentials.strip() if scheme.lower() == b"bearer" and credentials.strip() else None
        return None


def http_app(server: Server[Any], options: HttpOptions, tokens: Sequence[str]) -> Any:
    app = server.streamable_http_app(
        host=options.host,
        stateless_http=options.stateless,
        max_request_body_size=options.max_body_bytes,
        transport_security=transport_security(options),
    )
    return BearerAuth(app, tokens) if tokens else app


async def serve_http(server: Server[Any], app: AppOptions, options: HttpOptions) -> None:
    """Serve in this process."""
    import uvicorn

    tokens = load_tokens(options.token_file)
    check_exposure(options, tokens)
    log.info(
        "serving MCP over Streamable HTTP at http://%s:%d/mcp (%s, %s)",
        options.host,
        options.port,
        "stateless" if options.stateless else "stateful sessions",
        f"{len(tokens)} bearer token(s)" if tokens else "no authentication",
    )
    config = uvicorn.Config(
        http_app(server, options, tokens),
        host=options.host,
        port=options.port,
        log_config=None,
        log_level=app.log_level,
    )
    await uvicorn.Server(config).serve()


def run_http_workers(app: AppOptions, options: HttpOptions) -> None:
    """Several uvicorn worker processes on one port; each builds its own server (always stateless).

    Each worker is a spawned process that receives the typed options (pickled by multiprocessing
    with uvicorn's config), so it builds exactly what this process would, reading nothing again.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    tokens = load_tokens(options.token_file)
    check_exposure(options, tokens)
    log.info("serving MCP over Streamable HTTP with %d workers", options.workers)
    config = uvicorn.Config(
        partial(worker_app, app, options, tuple(tokens)),
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_config=None,
        log_level=app.log_level,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app(app: AppOptions, options: HttpOptions, tokens: Sequence[str]) -> Any:
    """The ASGI app of one worker process."""
    configure_logging(app.log_level)
    server, _ = build_mcp_server(app)
    return http_app(server, options, tokens)
