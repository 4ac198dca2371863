"""Who is asking: the transport, the principal behind it, and the client program, as the audit trail
records them. Never a secret: over HTTP the principal is the bearer token's name, not the token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

# Where the HTTP guard (`http_security.BearerAuth`) leaves the name of the token a request presented,
# in the request's ASGI scope.
TOKEN_NAME_KEY = "cancel_job_mcp.token_name"
# A client's handshake fields are free text: each is cut to this many characters.
MAX_FIELD_CHARS = 128


@dataclass(frozen=True)
class Caller:
    """One caller. `transport` is "stdio", "http" or "cli"; `principal` is, over HTTP, the OAuth token's
    subject and client id, or the static token's name (None when the server takes no token), or the OS
    user for stdio and the CLI; the client's name and version
    come from its handshake (or, in the 2026-07-28 era, from the request's `_meta`)."""

    transport: str
    principal: str | None
    client_name: str | None = None
    client_version: str | None = None


@cache  # without $USER, getpass reads the passwd database: once a process is enough
def os_user() -> str:
    """The user this process runs as: the login name, else the numeric uid."""
    import getpass  # with termios, at the first cancel rather than at every start

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER
        return str(os.getuid())


def cli_caller() -> Caller:
    return Caller("cli", os_user())


def caller_of(request: Any, client_info: Any) -> Caller:
    """The caller of one MCP request: `request` is the HTTP request (None on stdio), `client_info` the
    client's `Implementation` from its handshake or request metadata (None when it sent none)."""
    name = _field(getattr(client_info, "name", None))
    version = _field(getattr(client_info, "version", None))
    if request is None:
        return Caller("stdio", os_user(), name, version)
    from .access import caller_name, request_token  # the server's side only: it imports the SDK's auth

    token = request_token(request)
    principal = caller_name(token) if token is not None else request.scope.get(TOKEN_NAME_KEY)
    return Caller("http", principal, name, version)


def _field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    printable = "".join(char if char.isprintable() else "?" for char in value[:MAX_FIELD_CHARS])
    return printable or None
