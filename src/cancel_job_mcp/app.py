"""The composition root: from typed options objects, the job service and the MCP server.

The CLI builds an `AppOptions` once (configuration loaded once) and hands it on; the transports
receive it too, so an HTTP worker process builds its server from the same typed object. Neither
the CLI nor the transports import each other.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import redact
from .audit import AuditLog
from .config import Config, OAuthSettings
from .cursors import CursorCodec
from .defaults import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT,
)
from .http_values import Authority, Origin
from .routing import Router
from .service import JobService

if TYPE_CHECKING:
    from mcp.server import Server

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class AppOptions:
    """Everything the service and the MCP server are made from."""

    home: Path
    config: Config
    read_only: bool = False  # --read-only; the configuration's `read_only = true` counts too
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS
    log_level: str = "warning"

    @property
    def serves_read_only(self) -> bool:
        return self.read_only or self.config.read_only


@dataclass(frozen=True)
class HttpOptions:
    """How the Streamable HTTP transport listens and whom it lets in."""

    host: str = DEFAULT_HTTP_HOST
    port: int = DEFAULT_HTTP_PORT
    stateless: bool = False
    workers: int = 1
    allowed_hosts: tuple[Authority, ...] = ()
    allowed_origins: tuple[Origin, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    token_file: str | None = None
    allow_unauthenticated: bool = False
    oauth: OAuthSettings | None = None  # serve as an OAuth resource server (oauth.py)


def configure_logging(level: str) -> None:
    """Logs go to stderr, never stdout (stdout is the MCP stdio channel)."""
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpcore's debug lines describe raw requests; ours say what matters without them.
    logging.getLogger("httpcore").setLevel(max(logging.INFO, logging.getLogger().level))
    redact.install(logging.getLogger())  # no URL's password or ?access_token= in any line


def build_service(options: AppOptions) -> JobService:
    return JobService(
        Router.from_config(options.config), CursorCodec(options.home / "cursor.key"), AuditLog(options.home)
    )


def build_mcp_server(options: AppOptions) -> tuple[Server[Any], JobService]:
    """The MCP server and the service it owns (the caller closes the service)."""
    from . import confirm  # the MCP SDK: imported only by those who serve
    from .server import CallLimits, build_server

    service = build_service(options)
    limits = CallLimits(options.call_timeout, options.max_concurrent_calls)
    policy = options.config.confirm
    confirmer = confirm.Confirmer(policy, service.audit) if policy.cancel == "ask" else None
    server = build_server(service, options.serves_read_only, limits, confirmer)
    if confirmer is not None:
        server.middleware.append(confirm.boundary(options.home))
    return server, service


@contextmanager
def start_up() -> Iterator[None]:
    """Around a serving process's start: the SDK's import and the server's build.

    They create some 130,000 objects that live as long as the process, and no garbage, yet the cyclic
    collector would run about 190 times over them (some 100 ms, a tenth of the start). It is paused
    meanwhile; what start-up built is then frozen, so later full collections do not rescan it either
    (a 30-150 ms pause every few thousand calls).
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
