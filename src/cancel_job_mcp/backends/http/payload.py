"""Reading a provider's decoded answer (pure): required fields, timestamps, and the errors they raise.

A provider that answers in a form we cannot read gets `upstream_error` ("not something a retry
fixes"), naming what was wrong; nothing here raises anything else.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, TypedDict

from ...errors.providers import malformed
from ...record import format_timestamp

# The times a job can sanely carry; anything outside is a provider fault, not a date to print.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EPOCH_MILLIS = 1e11  # an epoch number this large is in milliseconds (1e11 s is the year 5138)


def require_fields(payload: Any, fields: tuple[str, ...], provider: str, what: str = "job") -> dict[str, Any]:
    """`payload` as a dict holding every one of `fields` (non-null), else an upstream_error."""
    if not isinstance(payload, dict):
        raise malformed(provider, f"expected a {what} object, got {json_type(payload)}")
    missing = [name for name in fields if payload.get(name) is None]
    if missing:
        raise malformed(provider, f"the {what} lacks {', '.join(repr(m) for m in missing)}")
    return payload


def optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def normalize_timestamp(value: Any, field: str, provider: str) -> str | None:
    """ISO 8601 UTC (`2024-09-14T10:32:00.000Z`) from an ISO string, or epoch seconds/milliseconds.

    Only times from 1970 to 2199 are accepted: a provider's `1e20`, `-1e15` or year 9999 is an
    upstream_error naming the field.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise malformed(provider, f"{field!r} is not a timestamp")
    moment = _epoch(value, field, provider) if not isinstance(value, str) else _iso(value, field, provider)
    if not EARLIEST <= moment < LATEST:
        raise malformed(provider, f"{field!r} is not a time between 1970 and 2199")
    return format_timestamp(moment)


def _epoch(value: float, field: str, provider: str) -> datetime:
    seconds = value / 1000 if abs(value) >= _EPOCH_MILLIS else value
    if not math.isfinite(seconds) or not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
        raise malformed(provider, f"{field!r} is not a time between 1970 and 2199")
    return datetime.fromtimestamp(seconds, UTC)


def _iso(value: str, field: str, provider: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise malformed(provider, f"{field!r} is not an ISO 8601 time between 1970 and 2199") from None


def required_timestamp(value: Any, field: str, provider: str) -> str:
    stamp = normalize_timestamp(value, field, provider)
    if stamp is None:
        raise malformed(provider, f"the job lacks {field!r}")
    return stamp


class JobTimes(TypedDict):
    """A job's four times, as `make_record` takes them (`**times`)."""

    started_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str


def job_times(job: dict[str, Any], provider: str, *, updated_field: str | None = None) -> JobTimes:
    """A job's `created_at` (required), `started_at` and `completed_at`, each ISO 8601 or epoch; its
    `updated_at` is the provider's `updated_field` when it sends one, else the latest of the three."""
    created = required_timestamp(job.get("created_at"), "created_at", provider)
    started = normalize_timestamp(job.get("started_at"), "started_at", provider)
    completed = normalize_timestamp(job.get("completed_at"), "completed_at", provider)
    updated = normalize_timestamp(job.get(updated_field), updated_field, provider) if updated_field else None
    return {
        "started_at": started,
        "completed_at": completed,
        "created_at": created,
        "updated_at": updated or latest(completed, started, created) or created,
    }


def latest(*stamps: str | None) -> str | None:
    """The latest of some normalized timestamps (they sort as text)."""
    present = [s for s in stamps if s is not None]
    return max(present) if present else None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
