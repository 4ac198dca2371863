"""The HTTP options' values, parsed from the command line and the configuration: Host and Origin
allow-list entries, and the named bearer tokens. Plain data, no HTTP stack: the app and the service
hold them; `http_security` enforces them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}
# A host is an IP literal in brackets, or a name/IPv4 of the characters DNS names use; then an optional port.
_AUTHORITY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::([0-9]{1,5}))?")
_ORIGIN = re.compile(r"(https?)://(.+)")


@dataclass(frozen=True)
class Authority:
    """A Host header value or an allow-list entry: a name and, optionally, a port."""

    name: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Authority:
        match = _AUTHORITY.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a host name or address with an optional :PORT")
        port = int(match[2]) if match[2] else None
        if port is not None and not 0 < port <= 65535:
            raise ValueError(f"{text!r} has a port outside 1-65535")
        name = match[1].lower()
        if name.startswith("["):
            _check_ipv6(name, text)
        return cls(name, port)


def _check_ipv6(bracketed: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(bracketed[1:-1])
    except ValueError:
        raise ValueError(f"{text!r} holds a bracketed address that is not IPv6") from None


@dataclass(frozen=True)
class Origin:
    """An Origin header value or an allow-list entry: scheme, name and port (else the scheme's default)."""

    scheme: str
    authority: Authority

    @classmethod
    def parse(cls, text: str) -> Origin:
        match = _ORIGIN.fullmatch(text)
        try:
            authority = Authority.parse(match[2]) if match else None
        except ValueError:
            authority = None
        if match is None or authority is None:
            raise ValueError(f"{text!r} is not an origin like https://app.example.com[:PORT] (no path)")
        port = authority.port or DEFAULT_PORTS[match[1]]
        return cls(match[1], Authority(authority.name, port))


def host_name(host: str) -> str:
    """A bind address as it appears in a Host header: IPv6 in brackets, names lowercased."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare.lower()


class NamedToken(NamedTuple):
    """A bearer token and the name the audit trail records for whoever presents it."""

    name: str
    secret: str


_TOKEN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


def named_token(entry: str, index: int) -> NamedToken:
    """One configured token, `NAME:TOKEN` or a bare token (then named `token-INDEX`)."""
    name, separator, secret = entry.partition(":")
    if separator and _TOKEN_NAME.fullmatch(name):
        return NamedToken(name, secret.strip())
    return NamedToken(f"token-{index}", entry)
