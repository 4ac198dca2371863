"""When a hosted backend tries a request again: its retry policy (from the backend's settings) and the
wait a provider asks for (Retry-After, ratelimit-reset, X-RateLimit-Reset), as client.py's docstring
says."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ..base import BackendSettings
from .answer import DEFAULT_LIMIT

DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 10.0
DEFAULT_RETRY_BACKOFF = 0.5
MAX_REPORTED_WAIT = 86_400.0  # a provider's wait beyond a day is reported as a day
RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Policy:
    """The backend's knobs for its requests: retries, the total deadline, the size of an answer."""

    total_timeout: float
    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    max_response_bytes: int = DEFAULT_LIMIT

    @classmethod
    def from_settings(cls, settings: BackendSettings) -> Policy:
        """From the backend's options, as the configuration's models checked them (HostedTable)."""
        options = settings.options
        return cls(
            total_timeout=options.get("total_timeout", settings.connect_timeout + settings.read_timeout),
            max_retries=options.get("max_retries", DEFAULT_MAX_RETRIES),
            max_retry_wait=options.get("max_retry_wait", DEFAULT_MAX_RETRY_WAIT),
            retry_backoff=options.get("retry_backoff", DEFAULT_RETRY_BACKOFF),
            max_response_bytes=options.get("max_response_bytes", DEFAULT_LIMIT),
        )


# --- rate-limit headers ----------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP-date), `ratelimit-reset` or `X-RateLimit-Reset`.

    A reset value is read as epoch seconds (or milliseconds) when it is that large, as a delta in
    seconds otherwise, or as an ISO 8601 time. The wait is clamped to 0-MAX_REPORTED_WAIT; None when
    no header says anything usable (garbage, NaN, infinity and impossible dates say nothing).
    """
    current = time.time() if now is None else now
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        text = retry_after.strip()
        wait = _number(text)
        if wait is None:
            moment = _http_date(text)
            wait = None if moment is None else moment - current
        if wait is not None:
            return _clamped(wait)
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        value = lowered.get(name)
        wait = None if value is None else _reset_wait(value.strip(), current)
        if wait is not None:
            return _clamped(wait)
    return None


def _reset_wait(text: str, now: float) -> float | None:
    number = _number(text)
    if number is not None:
        if number >= 1e11:
            return number / 1000 - now
        if number >= 1e9:
            return number - now
        return number
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() - now
    except (ValueError, OverflowError):
        return None


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _http_date(text: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def _clamped(wait: float) -> float:
    return min(max(wait, 0.0), MAX_REPORTED_WAIT)
