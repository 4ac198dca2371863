"""The runtime job record every backend returns: the 18 fields of the documented output schema."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict, cast


class JobStatus(StrEnum):
    SUBMITTED = "submitted"
    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


ACTIVE_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.WORKING})
TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class JobRecord(TypedDict):
    id: str
    project_id: str
    environment_id: str | None
    branch_id: str | None
    cron_job_id: str | None
    batch_id: str | None
    name: str
    status: str
    target: str
    config: dict[str, Any]
    timeout_seconds: float
    backoff_limit: float
    exit_code: int | None
    failed_reason: str | None
    started_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str


def make_record(
    *,
    id: str,
    project_id: str,
    name: str,
    status: str,
    target: str,
    created_at: str,
    updated_at: str,
    config: dict[str, Any] | None = None,
    timeout_seconds: float = 0,
    backoff_limit: float = 0,
    environment_id: str | None = None,
    branch_id: str | None = None,
    cron_job_id: str | None = None,
    batch_id: str | None = None,
    exit_code: int | None = None,
    failed_reason: str | None = None,
    started_at: str | None = None,
    completed_at: str | None = None,
) -> JobRecord:
    """A record from the fields a backend knows; the others take their null (or zero, or empty) values."""
    given = locals()  # exactly the parameters: one per field of the record
    record = {field: given[field] for field in JobRecord.__annotations__}  # in the schema's order
    record["config"] = {} if config is None else config
    return cast(JobRecord, record)


def is_terminal(record: JobRecord) -> bool:
    return record["status"] in TERMINAL_STATUSES


def utc_now() -> str:
    """The current time as ISO 8601 UTC with millisecond precision, e.g. 2026-11-22T10:00:00.123Z."""
    return format_timestamp(datetime.now(UTC))


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
