"""The HTTP client of a hosted backend: one connection pool per backend, auth, retries, error mapping.

Every hosted backend (Veryfront, DigitalOcean, Ionworks, Talonic, Ray, Slurm) talks to its provider through an
`HttpClient`. It owns the single `httpx.AsyncClient` of the backend (created on first use, closed
in `aclose`), sets explicit connect/read timeouts, the `User-Agent` and the auth header, reads every
answer within bounds (answer.py), and turns every answer that is not a 2xx into a `ProviderError`
(a `ToolError`) with an actionable message.

Bounds: each request has a total deadline covering connect, headers and body (the option
`total_timeout`, default connect_timeout + read_timeout), so a provider that sends one byte a second
ends in `upstream_unavailable` on time; a body is read up to `max_response_bytes` after
decompression (default 4 MiB), beyond which it is `upstream_error`; JSON with NaN, Infinity or
absurd nesting is `upstream_error`.

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
the whole answer later than the        upstream_unavailable    no
total deadline
2xx with malformed JSON, a body that   upstream_error          no
lacks required fields, a wrong shape,
or over the size limit; any other
unexpected status
=====================================  ======================  ===============================

`upstream_unavailable` means "the provider could not be reached or is failing: try again later";
`upstream_error` means "the provider answered, but not in the documented way": retrying will not help,
so a malformed body is never reported as a transient outage.

Retries: only 429 and 503, at most `max_retries` times (default 2). The wait is the one the provider
asks for (`Retry-After` as seconds or HTTP-date, then `ratelimit-reset` / `X-RateLimit-Reset` as epoch
seconds, epoch milliseconds, a delta in seconds or an ISO 8601 time), clamped to 0-86,400 s (a value
that is not a finite number or a real date is ignored), else an exponential backoff starting at
`retry_backoff` seconds. A wait longer than `max_retry_wait` (default 10 s) is not slept
through: the error is raised at once with the wait in its message (`ProviderError.retry_after`).
The three knobs come from the backend's `options` table (`max_retries`, `max_retry_wait`,
`retry_backoff`), so tests can keep them tiny.

Secrets: the token is read once from the environment variable `settings.token_env` when the client is
created. It is sent only in the auth header and never appears in an error message, a record or a log
line, in any form (credentials.py): messages name the environment variable, never its value; every
answer is redacted before it is read; of a provider's error body at most one message field is quoted,
redacted and cut to 300 characters, and dropped entirely if it still mentions an auth header.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from ... import __version__
from ...backoff import Backoff
from ...errors import ProviderError
from ...errors.providers import (
    answer_too_large,
    answer_too_slow,
    credentials_refused,
    log_url_failed,
    malformed,
    provider_failing,
    provider_found_none,
    rate_limited,
    refused_by_its_state,
    rejected_as_invalid,
    setting_missing,
    unexpected_status,
    unreachable,
)
from ..base import BackendSettings
from ..registry import ProviderSpec
from .answer import ACCEPT_ENCODING, TooLarge, decode_json, json_strings, read_body
from .credentials import protected, read_token
from .retry import RETRIED_STATUSES, Policy, parse_retry_after

logger = logging.getLogger("cancel_job_mcp.backends.http")

USER_AGENT = f"cancel-job-mcp/{__version__}"
ERROR_BODY_LIMIT = 64 * 1024  # of an error answer only a message is used
UNIX_SOCKET = "unix:"
_MESSAGE_LIMIT = 300
_MESSAGE_KEYS = ("message", "detail", "error_description", "title", "error")
_SECRET_HINTS = re.compile(r"authorization|bearer\s|x-api-key|api[_-]?key\s*[:=]|token\s*[:=]", re.IGNORECASE)


# --- the client ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes | None  # None: an error answer whose body could not be read within its bounds


class HttpClient:
    """The HTTP side of one hosted backend, made from its settings and its provider's spec.

    The spec's `auth_header`/`auth_scheme` say how the token is sent: `("Authorization", "Bearer")`
    gives `Authorization: Bearer <token>`, `("X-API-Key", None)` gives `X-API-Key: <token>`. `headers`
    go with every request; `read_error` reads a provider's own error answers (None leaves one to the
    common table).
    """

    def __init__(
        self,
        settings: BackendSettings,
        spec: ProviderSpec,
        *,
        headers: Mapping[str, str] | None = None,
        read_error: Callable[[Answer], ProviderError | None] | None = None,
    ) -> None:
        if spec.default_base_url is None and settings.base_url is None:
            raise setting_missing(settings.name, settings.kind, "base_url")
        self.settings = settings
        self.provider = spec.display_name
        self.base_url = (settings.base_url or spec.default_base_url or "").rstrip("/")
        self.token_env = settings.token_env or spec.token_env
        self.policy = Policy.from_settings(settings)
        self._token = read_token(settings, spec.token_env, required=spec.token_required)
        self._redactor = protected(self._token) if self._token else None
        self._auth_header = spec.auth_header
        self._auth_scheme = spec.auth_scheme
        self._extra_headers = dict(headers or {})
        self._read_error = read_error
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                **self._extra_headers,
            }
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

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "resource",
    ) -> Any:
        """Send one request (retrying 429/503 as documented above); the 2xx answer's JSON, redacted.

        `path` must already hold percent-encoded segments. `what` names the thing asked for in a
        not-found or conflict message, e.g. "job 'abc'".
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        backoffs = iter(Backoff(first=self.policy.retry_backoff))
        while True:
            logger.debug("%s %s %s (attempt %d)", self.provider, method, path, attempt + 1)
            answer = await self._exchange(method, path, query, json)
            logger.debug("%s %s %s -> HTTP %d", self.provider, method, path, answer.status)
            if 200 <= answer.status < 300 and answer.body is not None:
                return self._decoded(answer.body)
            if answer.status in RETRIED_STATUSES and attempt < self.policy.max_retries:
                backoff = next(backoffs)  # one step per retry, whether the provider names a wait or not
                wait = parse_retry_after(answer.headers)
                if wait is None:
                    wait = backoff
                if wait <= self.policy.max_retry_wait:
                    logger.debug("%s HTTP %d: retrying in %.3f s", self.provider, answer.status, wait)
                    attempt += 1
                    await anyio.sleep(wait)
                    continue
            raise self.error_for(answer, what)

    async def _exchange(self, method: str, path: str, query: dict[str, Any], json: Any) -> Answer:
        """One request and its whole answer, within the total deadline and the size limit."""
        client = self._http()
        deadline = self.policy.total_timeout
        try:
            with anyio.fail_after(deadline):
                async with client.stream(method, path, params=query or None, json=json) as response:
                    success = response.is_success
                    limit = self.policy.max_response_bytes if success else ERROR_BODY_LIMIT
                    try:
                        body: bytes | None = await read_body(
                            response.aiter_raw(),
                            response.headers.get("content-encoding"),
                            response.headers.get("content-length"),
                            limit,
                            self.provider,
                        )
                    except (TooLarge, ProviderError):
                        if success:
                            raise
                        body = None  # an error answer is mapped by its status alone
                    return Answer(response.status_code, response.headers, body)
        except TimeoutError:
            raise answer_too_slow(self.provider, self.base_url, deadline) from None
        except TooLarge:
            raise answer_too_large(self.provider, self.policy.max_response_bytes) from None
        except httpx.TimeoutException as exc:
            raise self._transport_error(exc, timed_out=True) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timed_out=False) from None

    async def read_handed_out(self, urls: list[str]) -> tuple[bytes, bool]:
        """The bodies of URLs the provider handed out (pre-signed log files), one after the other,
        sent without our credential (they may be on any host) and read as they come: at most
        `max_response_bytes` together, within `total_timeout`. Returns (data, cut): `cut` when a
        bound, or a source that stalled or ended early, stopped the reading."""
        data = bytearray()
        limit = self.policy.max_response_bytes
        timeout = httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout)
        async with httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            with anyio.move_on_after(self.policy.total_timeout):
                for url in urls:
                    if await self._read_into(client, url, data, limit):
                        return bytes(data), True
                return bytes(data), False
        return bytes(data), True  # the total deadline passed

    async def _read_into(self, client: httpx.AsyncClient, url: str, data: bytearray, limit: int) -> bool:
        """Append `url`'s body to `data` up to `limit` bytes; True if the reading was cut short."""
        try:
            async with client.stream("GET", url) as response:
                if not response.is_success:
                    raise log_url_failed(self.provider, response.status_code)
                if response.headers.get("content-encoding", "identity") != "identity":
                    raise malformed(self.provider, "a log URL answered with a compressed body, unasked")
                async for chunk in response.aiter_raw():
                    room = limit - len(data)
                    data += chunk[:room]
                    if len(chunk) > room:
                        return True
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError):
            return True  # a source that stalls or breaks off: what came so far is the answer
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timed_out=False) from None
        return False

    def redacted(self, text: str) -> str:
        """`text` without our token in any form."""
        return self._redactor.text(text) if self._redactor is not None else text

    def _decoded(self, body: bytes) -> Any:
        value = decode_json(body, self.provider)
        # A provider that echoes our credential into a job's fields must not hand it to the caller;
        # the walk through every field is paid only when one pass over the answer's strings finds it.
        if self._redactor is not None and self._redactor.found_in(json_strings(body)):
            return self._redactor.value(value)
        return value

    def error_for(self, answer: Answer, what: str = "resource") -> ProviderError:
        """The ToolError for a non-2xx answer: the provider's own reading (`read_error`), else the
        module docstring's table."""
        if self._read_error is not None and (error := self._read_error(answer)) is not None:
            return error
        status = answer.status
        detail = self._provider_message(answer.body)
        said = f" {self.provider} said: {detail}" if detail else ""
        if status in (400, 422):
            return rejected_as_invalid(self.provider, status, said)
        if status in (401, 403):
            return credentials_refused(self.provider, status, self.token_env)
        if status == 404:
            return provider_found_none(self.provider, what)
        if status == 409:
            return refused_by_its_state(self.provider, what, said)
        if status == 429:
            return rate_limited(self.provider, parse_retry_after(answer.headers))
        if status >= 500:
            wait = parse_retry_after(answer.headers) if status == 503 else None
            return provider_failing(self.provider, status, said, wait)
        return unexpected_status(self.provider, status, said)

    def _transport_error(self, exc: httpx.HTTPError, *, timed_out: bool) -> ProviderError:
        problem = "did not answer in time" if timed_out else "could not be reached"
        return unreachable(self.provider, self.base_url, f"{problem} ({type(exc).__name__})")

    def _provider_message(self, body: bytes | None) -> str | None:
        """One message field of a JSON error body, redacted and cut short; None if it may hold a secret."""
        try:
            value = decode_json(body, self.provider) if body else None
        except ProviderError:
            return None
        if not isinstance(value, dict):
            return None
        text = next((value[key] for key in _MESSAGE_KEYS if isinstance(value.get(key), str)), "")
        text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
        if self._redactor is not None:
            text = self._redactor.text(text)
        if not text or _SECRET_HINTS.search(text):
            return None
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."
