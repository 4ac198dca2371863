"""Serving the MCP server over Streamable HTTP (stdio is in `stdio`).

Over HTTP the server is safe to expose: DNS-rebinding protection is always on (explicit Host and
Origin allow-lists, whatever the bind address), requests need a bearer token when tokens are
configured, bodies are capped, sessions are limited in number and idle time, a connection that
does not finish its request headers in time is closed, and binding beyond loopback without
tokens is refused unless the operator says so. The tokens guard this server only; backends use
their own credentials.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import AppOptions, HttpOptions, build_mcp_server, configure_logging, start_up
from .backends.http.credentials import protected
from .config import HTTP_TOKENS_ENV, OAUTH_CLIENT_ID_ENV, OAUTH_CLIENT_SECRET_ENV, OAuthSettings
from .cors import Cors
from .http_security import (
    AllowList,
    ASGIApp,
    BearerAuth,
    HostOriginGuard,
    OnlyPost,
)
from .http_values import LOOPBACK_NAMES, NamedToken, host_name, named_token
from .sessions import evict_idle_sessions_when_full

if TYPE_CHECKING:
    from mcp.server import Server

    from .oauth import IntrospectionClient

MIN_TOKEN_LENGTH = 16
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
# A worker that exits this soon after its start, twice in a row, is failing to start: it is not restarted.
WORKER_START_SECONDS = 10.0


class ServeError(Exception):
    """A setting that makes serving unsafe or impossible, reported before anything listens."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def load_tokens(token_file: str | None, environ: dict[str, str] | None = None) -> list[NamedToken]:
    """Bearer tokens from `$CANCEL_JOB_MCP_HTTP_TOKENS` (comma-separated) and the token file (one a
    line), each `NAME:TOKEN` or a bare token. The name is what the audit trail records of a caller; a
    bare token is named `token-N` after its place in the list (the environment's first)."""
    environ = dict(os.environ) if environ is None else environ
    entries = [entry.strip() for entry in environ.get(HTTP_TOKENS_ENV, "").split(",") if entry.strip()]
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ServeError(f"cannot read the token file {token_file}: {error.strerror}") from None
        entries += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    tokens = [named_token(entry, index) for index, entry in enumerate(entries, start=1)]
    if any(len(token.secret) < MIN_TOKEN_LENGTH for token in tokens):
        raise ServeError(
            f"every HTTP bearer token must be at least {MIN_TOKEN_LENGTH} characters;"
            " generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    names = [token.name for token in tokens]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ServeError(f"each HTTP token needs a name of its own; given twice: {', '.join(duplicates)}")
    return tokens


def allow_list(options: HttpOptions) -> AllowList:
    """Loopback names and the bind address on any port, plus what the operator allows."""
    bound = {*LOOPBACK_NAMES} | ({host_name(options.host)} if not _is_unspecified(options.host) else set())
    return AllowList.build(bound, options.allowed_hosts, options.allowed_origins)


def introspection_client(
    oauth: OAuthSettings | None, environ: dict[str, str] | None = None
) -> IntrospectionClient | None:
    """The introspection endpoint with the credentials from the environment (never the file)."""
    if oauth is None or oauth.introspection_endpoint is None:
        return None
    environ = dict(os.environ) if environ is None else environ
    client_id = environ.get(OAUTH_CLIENT_ID_ENV, "").strip()
    secret = environ.get(OAUTH_CLIENT_SECRET_ENV, "").strip()
    if not client_id or not secret:
        raise ServeError(
            f"an introspection endpoint is configured: set {OAUTH_CLIENT_ID_ENV} and"
            f" {OAUTH_CLIENT_SECRET_ENV} to this server's client credentials at the authorization server"
        )
    from .oauth import IntrospectionClient

    return IntrospectionClient(oauth.introspection_endpoint, client_id, secret)


def check_exposure(options: HttpOptions, tokens: Sequence[NamedToken]) -> None:
    if is_loopback(options.host) or tokens or options.oauth or options.allow_unauthenticated:
        return
    raise ServeError(
        f"refusing to serve on {options.host} without authentication: anyone who can reach it could"
        f" cancel jobs. Set {HTTP_TOKENS_ENV} (or --token-file), bind to 127.0.0.1, or pass"
        " --allow-unauthenticated if another layer authenticates requests."
    )


def http_app(server: Server[Any], options: HttpOptions, tokens: Sequence[NamedToken]) -> ASGIApp:
    """The SDK's Streamable HTTP app behind our guards: Host/Origin, CORS, then the token, then the method."""
    from mcp.server.transport_security import TransportSecuritySettings

    app: ASGIApp = server.streamable_http_app(
        stateless_http=options.stateless,
        max_request_body_size=options.max_body_bytes,
        max_sessions=options.max_sessions,
        session_idle_timeout=options.session_idle_timeout,
        # HostOriginGuard does this, matching names and ports exactly (the SDK matches prefixes).
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if options.stateless:
        app = OnlyPost(app)
    else:
        evict_idle_sessions_when_full(server.session_manager)
    if options.oauth is not None:
        app = _oauth_guard(app, options, options.oauth, tokens)
    elif tokens:
        app = BearerAuth(app, tokens)
    if options.allowed_origins:
        app = Cors(
            app, options.allowed_origins, ("POST",) if options.stateless else ("GET", "POST", "DELETE")
        )
    for token in tokens:  # never shown: in logs, nor in a job's output (get_job_logs)
        protected(token.secret)
    return HostOriginGuard(app, allow_list(options))


def _oauth_guard(
    app: ASGIApp, options: HttpOptions, oauth: OAuthSettings, tokens: Sequence[NamedToken]
) -> ASGIApp:
    from .oauth import OAuthGuard, OAuthVerifier
    from .server import tool_scopes

    introspection = introspection_client(oauth)
    if introspection is not None:
        protected(introspection.client_secret)
    verifier = OAuthVerifier(oauth, introspection)
    return OAuthGuard(app, verifier, tool_scopes(), tokens, options.max_body_bytes)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection that has not sent a request's headers within
    `header_timeout` seconds of connecting or of the previous response, or, once the headers are in,
    the rest of its body within `header_timeout` more (a slow client would otherwise hold it forever;
    a bearer token does not change that)."""

    _header_deadline: Any = None
    _body_deadline: Any = None

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._header_deadline is not None:
            self._header_deadline.cancel()  # the headers are in
            self._header_deadline = None
        if self.conn.their_state is h11.SEND_BODY:
            if self._body_deadline is None:
                self._body_deadline = self.loop.call_later(self.header_timeout, self._body_too_slow)
        elif self._body_deadline is not None:
            self._body_deadline.cancel()  # the body is in
            self._body_deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        for deadline in (self._header_deadline, self._body_deadline):
            if deadline is not None:
                deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()


def _listen(options: HttpOptions, port: int | None = None) -> socket.socket:
    """A listening socket on the configured address (on `port` if given). With several workers each
    gets its own, all bound to one port with SO_REUSEPORT (only this user's processes can join)."""
    address = options.host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    port = options.port if port is None else port
    try:
        listener = socket.create_server(
            (address, port), family=family, backlog=2048, reuse_port=options.workers > 1
        )
    except OSError as error:
        raise ServeError(f"cannot listen on {options.host}:{port}: {error.strerror or error}") from None
    # create_server leaves proto 0, and asyncio sets TCP_NODELAY only on connections accepted from an
    # IPPROTO_TCP socket: without it, a keep-alive client waits ~40 ms (Nagle + delayed ACK) for the
    # body uvicorn writes after the headers.
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=listener.detach())


def _announce(options: HttpOptions, sock: socket.socket, tokens: Sequence[NamedToken]) -> None:
    """The one line an operator needs, whatever the log level: the URL, and whether tokens are needed."""
    port = sock.getsockname()[1]
    url = f"http://{host_name(options.host)}:{port}/mcp"
    auth = (
        f"OAuth access token from {options.oauth.issuer} required"
        if options.oauth
        else ("bearer token required" if tokens else "no token required")
    )
    mode = (
        f"stateless, {options.workers} workers"
        if options.workers > 1
        else ("stateless" if options.stateless else "sessions")
    )
    print(f"cancel-job-mcp: serving MCP at {url} ({auth}; {mode})", file=sys.stderr, flush=True)


def _uvicorn_config(app: Any, options: HttpOptions, log_level: str, **extra: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        # uvicorn calls this with the protocol's arguments; a partial is what carries our setting.
        http=cast(Any, partial(HeaderDeadlineProtocol, header_timeout=options.header_timeout)),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=None,
        log_level=log_level,
        **extra,
    )


@dataclass(frozen=True)
class Endpoint:
    """What serving over HTTP needs that can be refused, checked and bound before any server is built:
    a refusal then costs no SDK import."""

    tokens: tuple[NamedToken, ...]
    sock: socket.socket


def open_endpoint(options: HttpOptions) -> Endpoint:
    tokens = load_tokens(options.token_file)
    check_exposure(options, tokens)
    introspection_client(options.oauth)
    return Endpoint(tuple(tokens), _listen(options))


async def serve_http(server: Server[Any], app: AppOptions, options: HttpOptions, endpoint: Endpoint) -> None:
    """Serve in this process."""
    import uvicorn

    _announce(options, endpoint.sock, endpoint.tokens)
    config = _uvicorn_config(http_app(server, options, endpoint.tokens), options, app.log_level)
    await uvicorn.Server(config).serve(sockets=[endpoint.sock])


def run_http_workers(app: AppOptions, options: HttpOptions, endpoint: Endpoint) -> int:
    """Several worker processes on one port, each building its own server (always stateless), until
    SIGINT or SIGTERM stops them all; returns the exit status (130 after SIGINT, Ctrl-C).

    Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads new connections
    across the workers. On one shared socket (as uvicorn's own supervisor runs workers) the worker that
    wakes first accepts a whole burst of connections, and keeps them: 92 % / 8 % of the calls was seen.
    A worker that dies is replaced on its socket; one that keeps exiting as it starts stops them all
    (ServeError). Each worker is a spawned process that receives the typed options, so it builds
    exactly what this process would.
    """
    import multiprocessing
    import signal
    import threading

    from uvicorn.config import STARTUP_FAILURE

    _announce(options, endpoint.sock, endpoint.tokens)
    port = endpoint.sock.getsockname()[1]
    sockets = [endpoint.sock, *(_listen(options, port) for _ in range(options.workers - 1))]
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signal_number: int, frame: object) -> None:
        stopped_by.append(signal_number)
        stop.set()

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, on_signal)

    def start(sock: socket.socket) -> multiprocessing.process.BaseProcess:
        worker = spawn.Process(target=_serve_worker, args=(app, options, endpoint.tokens, sock))
        worker.start()
        return worker

    workers = [start(sock) for sock in sockets]
    started = [time.monotonic()] * len(workers)
    quick_exits = [0] * len(workers)  # in a row, per socket
    try:
        while not stop.wait(0.5):
            for index, worker in enumerate(workers):
                if worker.is_alive():
                    continue
                quick = time.monotonic() - started[index] < WORKER_START_SECONDS
                quick_exits[index] = quick_exits[index] + 1 if quick else 0
                # A worker that cannot build its server (a broken install, say) fails the same way each
                # time: restarting it again would only burn a CPU.
                if worker.exitcode == STARTUP_FAILURE or quick_exits[index] >= 2:
                    raise ServeError(
                        f"a worker process keeps exiting while it starts (status {worker.exitcode})"
                    )
                workers[index], started[index] = start(sockets[index]), time.monotonic()
    finally:
        for worker in workers:
            worker.terminate()  # SIGTERM: uvicorn finishes the requests under way
        for worker in workers:
            worker.join()
    return 128 + signal.SIGINT if signal.SIGINT in stopped_by else 0


def _serve_worker(
    app: AppOptions, options: HttpOptions, tokens: Sequence[NamedToken], sock: socket.socket
) -> None:
    """One worker process: uvicorn serving `worker_app` on its own socket. Ctrl-C reaches every process
    of the terminal's group: the workers leave it to the parent, which stops them (SIGTERM)."""
    import signal

    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    factory = partial(worker_app, app, options, tokens)
    uvicorn.Server(_uvicorn_config(factory, options, app.log_level, factory=True)).run(sockets=[sock])


def worker_app(app: AppOptions, options: HttpOptions, tokens: Sequence[NamedToken]) -> ASGIApp:
    """The ASGI app of one worker process."""
    configure_logging(app.log_level)
    with start_up():
        server, _ = build_mcp_server(app)
    return http_app(server, options, tokens)
