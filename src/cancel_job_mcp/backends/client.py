"""The HTTP client of a hosted backend: one connection pool per backend, auth, retries, error mapping.

Every hosted backend (Veryfront, DigitalOcean, Ionworks, Talonic, Ray) talks to its provider through an
`HttpClient`. It owns the single `httpx.AsyncClient` of the backend (created on first use, closed
in `aclose`), sets explicit connect/read timeouts, the `User-Agent` and the auth header, and turns every
answer that is not a 2xx into a `ProviderError` (a `ToolError`) with an actionable message.

Error mapping (one table for all providers):

=====================================  ======================  ===============================
provider answer                        error code              retried?
=====================================  ======================  ===============================
400, 422                               invalid_argument        no
401, 403                               unauthorized            no
404                                    not_found               no
409                                    not_cancellable         no (callers GET the job to say
                                                               which status it is in)
429                                    rate_limited            yes, see below
503                                    upstream_unavailable    yes, see below
other 5xx                              upstream_unavailable    no
timeout, refused/reset connection      upstream_unavailable    no
2xx with malformed JSON, a body that   upstream_error          no
lacks required fields, or a wrong
shape; any other unexpected status
=====================================  ======================  ===============================

`upstream_unavailable` means "the provider could not be reached or is failing: try again later";
`upstream_error` means "the provider answered, but not in the documented way": retrying will not help,
so a malformed body is never reported as a transient outage.

Retries: only 429 and 503, at most `max_retries` times (default 2). The wait is the one the provider
asks for (`Retry-After` as seconds or HTTP-date, then `ratelimit-reset` / `X-RateLimit-Reset` as epoch
seconds, epoch milliseconds, a delta in seconds or an ISO 8601 time), else an exponential backoff
starting at `retry_backoff` seconds. A wait longer than `max_retry_wait` (default 10 s) is not slept
through: the error is raised at once with the wait in its message (`ProviderError.retry_after`).
The three knobs come from the backend's `options` table (`max_retries`, `max_retry_wait`,
`retry_backoff`), so tests can keep them tiny.

Secrets: the token is read once from the environment variable `settings.token_env` when the client is
created. It is sent only in the auth header and never appears in an error message or a log line:
messages name the environment variable, never its value, and of a provider's error body at most one
short JSON message field is kept, dropped entirely if it mentions the token or an auth header.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from .. import __version__
from ..errors import ErrorCode
from .base import BackendConfigError, BackendSettings
from .credentials import read_token, redact
from .payload import ProviderError, malformed
from .registry import ProviderSpec

logger = logging.getLogger("cancel_job_mcp.backends.http")

USER_AGENT = f"cancel-job-mcp/{__version__}"
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 10.0
DEFAULT_RETRY_BACKOFF = 0.5
RETRIED_STATUSES = frozenset({429, 503})
UNIX_SOCKET = "unix:"
_MESSAGE_LIMIT = 160
_MESSAGE_KEYS = ("message", "detail", "error_description", "title", "error")
_SECRET_HINTS = re.compile(r"authorization|bearer\s|x-api-key|api[_-]?key\s*[:=]|token\s*[:=]", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait: float = DEFAULT_MAX_RETRY_WAIT
    backoff: float = DEFAULT_RETRY_BACKOFF

    @classmethod
    def from_settings(cls, settings: BackendSettings) -> RetryPolicy:
        options = settings.options
        try:
            policy = cls(
                max_retries=int(options.get("max_retries", DEFAULT_MAX_RETRIES)),
                max_wait=float(options.get("max_retry_wait", DEFAULT_MAX_RETRY_WAIT)),
                backoff=float(options.get("retry_backoff", DEFAULT_RETRY_BACKOFF)),
            )
        except (TypeError, ValueError) as exc:
            raise BackendConfigError(
                f"backend {settings.name!r}: max_retries, max_retry_wait and retry_backoff must be numbers"
            ) from exc
        if policy.max_retries < 0 or policy.max_wait < 0 or policy.backoff < 0:
            raise BackendConfigError(
                f"backend {settings.name!r}: max_retries, max_retry_wait and retry_backoff must not be"
                " negative"
            )
        return policy


# --- rate-limit headers ----------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP-date), `ratelimit-reset` or `X-RateLimit-Reset`.

    A reset value is read as epoch seconds (or milliseconds) when it is that large, as a delta in
    seconds otherwise, or as an ISO 8601 time. None when no header says anything usable.
    """
    current = time.time() if now is None else now
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        text = retry_after.strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            pass
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return max(0.0, moment.timestamp() - current)
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        value = lowered.get(name)
        if value is None:
            continue
        wait = _reset_wait(value.strip(), current)
        if wait is not None:
            return wait
    return None


def _reset_wait(text: str, now: float) -> float | None:
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        if number >= 1e11:
            return max(0.0, number / 1000 - now)
        if number >= 1e9:
            return max(0.0, number - now)
        return max(0.0, number)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


# --- the client ------------------------------------------------------------------------------------


class HttpClient:
    """The HTTP side of one hosted backend, made from its settings and its provider's spec.

    The spec's `auth_header`/`auth_scheme` say how the token is sent: `("Authorization", "Bearer")`
    gives `Authorization: Bearer <token>`, `("X-API-Key", None)` gives `X-API-Key: <token>`.
    """

    def __init__(
        self, settings: BackendSettings, spec: ProviderSpec, *, headers: Mapping[str, str] | None = None
    ) -> None:
        if spec.default_base_url is None and settings.base_url is None:
            raise BackendConfigError(f"backend {settings.name!r} ({settings.kind}) needs base_url to be set")
        self.settings = settings
        self.provider = spec.display_name
        self.base_url = (settings.base_url or spec.default_base_url or "").rstrip("/")
        self.token_env = settings.token_env or spec.token_env
        self.retry = RetryPolicy.from_settings(settings)
        self._token = read_token(settings, spec.token_env, required=spec.token_required)
        self._auth_header = spec.auth_header
        self._auth_scheme = spec.auth_scheme
        self._extra_headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self._extra_headers}
            if self._token is not None:
                value = f"{self._auth_scheme} {self._token}" if self._auth_scheme else self._token
                headers[self._auth_header] = value
            # `unix:/path`: a server on a unix socket (slurmrestd); the URL's host is then only a name.
            unix, _, path = self.base_url.partition(UNIX_SOCKET)
            socket = path if not unix and path else None
            self._client = httpx.AsyncClient(
                base_url="http://localhost" if socket else self.base_url,
                transport=httpx.AsyncHTTPTransport(uds=socket) if socket else None,
                headers=headers,
                timeout=httpx.Timeout(
                    connect=self.settings.connect_timeout,
                    read=self.settings.read_timeout,
                    write=self.settings.read_timeout,
                    pool=self.settings.connect_timeout,
                ),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "resource",
    ) -> httpx.Response:
        """Send one request (retrying 429/503 as documented above); a 2xx response or a ProviderError.

        `path` must already hold percent-encoded segments. `what` names the thing asked for in a
        not-found message, e.g. "job 'abc' in project 'p'".
        """
        client = self._http()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            logger.debug("%s %s %s (attempt %d)", self.provider, method, path, attempt + 1)
            try:
                response = await client.request(method, path, params=query or None, json=json)
            except httpx.TimeoutException as exc:
                raise self._transport_error(exc, timed_out=True) from None
            except httpx.TransportError as exc:
                raise self._transport_error(exc, timed_out=False) from None
            logger.debug("%s %s %s -> HTTP %d", self.provider, method, path, response.status_code)
            if response.is_success:
                return response
            if response.status_code in RETRIED_STATUSES and attempt < self.retry.max_retries:
                wait = parse_retry_after(response.headers)
                if wait is None:
                    wait = self.retry.backoff * (2**attempt)
                if wait <= self.retry.max_wait:
                    logger.debug("%s HTTP %d: retrying in %.3f s", self.provider, response.status_code, wait)
                    attempt += 1
                    await anyio.sleep(wait)
                    continue
            raise self.error_for(response, what)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "resource",
    ) -> Any:
        response = await self.request(method, path, params=params, json=json, what=what)
        try:
            body = response.json()
        except ValueError:
            raise malformed(
                self.provider, f"HTTP {response.status_code} with a body that is not JSON"
            ) from None
        # A provider that echoes our credential into a job's fields must not hand it to the caller.
        return redact(body, self._token) if self._token else body

    def error_for(self, response: httpx.Response, what: str = "resource") -> ProviderError:
        """The ToolError for a non-2xx response (see the module docstring's table)."""
        status = response.status_code
        detail = self._provider_message(response)
        said = f" {self.provider} said: {detail}" if detail else ""
        if status in (400, 422):
            return ProviderError(
                ErrorCode.INVALID_ARGUMENT,
                f"{self.provider} rejected the request as invalid (HTTP {status}).{said}",
                status=status,
            )
        if status in (401, 403):
            problem = "rejected the credentials" if status == 401 else "refused access with these credentials"
            return ProviderError(
                ErrorCode.UNAUTHORIZED,
                f"{self.provider} {problem} (HTTP {status}). Check that the environment variable"
                f" {self.token_env} holds a valid {self.provider} token with access to this project"
                " (the server reads it at start).",
                status=status,
            )
        if status == 404:
            return ProviderError(
                ErrorCode.NOT_FOUND,
                f"{self.provider} found no {what} (HTTP 404). Check the project reference and the job id.",
                status=status,
            )
        if status == 409:
            return ProviderError(
                ErrorCode.NOT_CANCELLABLE,
                f"{self.provider} refused the change because of the {what}'s current state (HTTP 409).{said}",
                status=status,
            )
        if status == 429:
            wait = parse_retry_after(response.headers)
            when = f"retry after {math.ceil(wait)} s" if wait is not None else "wait a minute before retrying"
            return ProviderError(
                ErrorCode.RATE_LIMITED,
                f"{self.provider} is rate limiting this token (HTTP 429); {when}.",
                status=status,
                retry_after=wait,
            )
        if status >= 500:
            wait = parse_retry_after(response.headers) if status == 503 else None
            return ProviderError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self.provider} is failing (HTTP {status}); try again shortly.{said}",
                status=status,
                retry_after=wait,
            )
        return ProviderError(
            ErrorCode.UPSTREAM_ERROR,
            f"{self.provider} answered with an unexpected HTTP {status}.{said}",
            status=status,
        )

    def _transport_error(self, exc: httpx.TransportError, *, timed_out: bool) -> ProviderError:
        if timed_out:
            problem = f"did not answer in time ({type(exc).__name__})"
        else:
            problem = f"could not be reached ({type(exc).__name__})"
        return ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{self.provider} at {self.base_url} {problem}; check the network and the backend's base_url,"
            " then try again.",
        )

    def _provider_message(self, response: httpx.Response) -> str | None:
        """At most one short message field of a JSON error body; None if it might carry a secret."""
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        text: str | None = None
        for key in _MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
        if text is None:
            return None
        text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
        if (self._token and self._token in text) or _SECRET_HINTS.search(text):
            return None
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 3] + "..."
        return text
