"""Checks on what a hosted backend puts in a request: path segments, cursors, statuses, page sizes,
and the address of a service that an environment variable alone can name.

A value that fails is `invalid_argument` and nothing is sent to the provider.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from ...errors import invalid_argument, refused_cursor
from ...errors.providers import address_not_a_url, address_port_invalid, address_with_credentials
from ...record import JobStatus
from ...redact import without_url_secrets
from ..base import BackendSettings

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CURSOR = re.compile(r"[\x21-\x7e]{1,1024}")


@dataclass(frozen=True)
class ServiceAddress:
    """Where a backend that `env` alone can enable finds its HTTP API: `base_url`, else `$env`, else
    `default`. The words are the provider's: `what` the URL must be ("the HTTP address of a Ray
    dashboard"), `instead` what to give in its place and why, `credential` where a secret goes
    instead of the URL, and `port` which port the service listens on by default."""

    kind: str
    env: str
    default: str
    what: str
    instead: str
    credential: str
    port: str

    def url(self, settings: BackendSettings, environ: Mapping[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        configured = settings.base_url or env.get(self.env, "").strip()
        if not configured:
            return self.default
        source = "base_url" if settings.base_url else self.env
        shown = without_url_secrets(configured)[:80]
        parts = urlsplit(configured)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise address_not_a_url(settings.name, self.kind, source, shown, self.what, self.instead)
        if "@" in parts.netloc:
            raise address_with_credentials(settings.name, self.kind, source, self.credential)
        try:
            parts.port  # noqa: B018  # raises for a port outside 0-65535 or not a number
        except ValueError:
            raise address_port_invalid(settings.name, self.kind, source, shown, self.port) from None
        return configured.rstrip("/")


def encode_segment(value: str) -> str:
    """Percent-encode one path segment: every character but unreserved ones, including '/'."""
    return quote(value, safe="")


def checked_segment(field: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    """Validate a path segment against the provider's documented format, then percent-encode it."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "a value"
        raise invalid_argument(field, f"{rule}; got {shown}. Nothing was sent to the provider.")
    return encode_segment(value)


def plain_segment(field: str, value: str, expects: str) -> str:
    """A segment of 1-128 letters, digits, '_' or '-'; `expects` names it ("Ionworks expects a job id")."""
    return checked_segment(field, value, _PLAIN_ID, f"{expects} of 1-128 letters, digits, '_' or '-'")


def uuid_segment(field: str, value: str, provider: str) -> str:
    return checked_segment(
        field, value, _UUID, f"{provider} expects a UUID such as 3c90c3cc-0d44-4b50-8888-8dd25736052a"
    )


def checked_cursor(cursor: str | None) -> str | None:
    """A provider's own cursor as it came back to us: printable ASCII, no spaces, at most 1 KiB."""
    if cursor is None:
        return None
    if _CURSOR.fullmatch(cursor) is None:
        raise refused_cursor()
    return cursor


def checked_status(status: str | None) -> JobStatus | None:
    if status is None:
        return None
    try:
        return JobStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise invalid_argument("status", f"must be one of {allowed}; got {status!r}") from None


def checked_limit(limit: int, maximum: int) -> int:
    """The page size to ask the provider for: at least 1, at most the provider's maximum."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise invalid_argument("limit", "must be a positive integer")
    return min(limit, maximum)
