"""The `ionworks` backend: Ionworks jobs, through the Ionworks REST API.

- Base URL `https://api.ionworks.com`; header `X-API-Key: <key>` from `$IONWORKS_API_KEY` (the spec
  documents no scheme; the official SDK sends X-API-Key).
- Cancel `POST /jobs/{job_id}/cancel` (with an empty JSON object, as the SDK sends), read
  `GET /jobs/{job_id}`, list `GET /jobs?limit=&offset=&status=`.
- Ids are documented only as strings; project references and job ids are checked against
  `^[A-Za-z0-9_-]{1,128}$` (no '.', '/', '%' or spaces) and percent-encoded.

Project scoping: Ionworks reads and cancels jobs by id alone, but each job says which project it
belongs to (`project_id`, or for organization-level jobs with no project, `organization_id`). So
`cancel_job` and `get_job` always GET the job first and compare: a job of another project answers
`not_found` and no cancel is sent. `list_jobs` keeps only the named project's jobs. This check is
made by us, not by Ionworks: it relies on `project_id`/`organization_id` in the GET answer (a GET and
then a POST, so it costs one extra request per cancel).

Decisions where the documents are silent or contradict each other:

- Status: pending -> submitted, processing -> working, completed -> completed, failed -> failed,
  canceled/cancelled -> canceled. `waiting` (undocumented) -> working when the job has a
  `started_at` (it has run and waits, e.g. on child jobs), else submitted. Any other value falls back
  on the server-derived flags: terminal and failed -> failed, terminal and not failed -> completed,
  not terminal -> submitted; without those flags the answer is malformed (`upstream_error`).
- Record: id = `job_id`; project_id = `project_id` ?? `organization_id`; name = target = `job_type`;
  batch_id = `parent_job_id`; failed_reason = `error` (with `error_code` appended); config keeps
  priority, user_id, organization_id, access_level, params_path, metadata_path, callback_url,
  compute_time, error_code and the raw status (`result` is dropped: it is output, not config);
  timeout_seconds = backoff_limit = 0 (Ionworks has neither).
- List: the docs say "a paginated list with the total count" but the SDK expects a bare array, so
  both are read (`jobs`, `items`, `data` or `results` hold the array in an object). Pagination is
  by offset: the cursor is the decimal offset of the next provider page. Only `limit` and `status`
  are documented, `offset` is the usual FastAPI name and an assumption. There is a next page when a
  `total`/`has_more` says so, or, for a bare array, when the page was full. The project filter (and
  the status filter when ours does not map to one Ionworks status) is applied here, one provider page
  at a time (a page may hold fewer jobs than `limit`; only `next_cursor` null means the end).
- Ionworks documents no 409 for canceling a finished job; since the job is read before the cancel,
  a finished job is reported `not_cancellable` (already canceled: its record) without a POST, and a
  409 (`error_code: CONFLICT`) is handled as for every provider.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ..errors import refused_cursor
from ..errors.providers import malformed, record_for_logs
from ..record import JobRecord, JobStatus, make_record
from .base import Backend, BackendSettings
from .http.checks import plain_segment
from .http.flows import ProviderPage
from .http.hosted import HostedBackend
from .http.payload import (
    normalize_timestamp,
    optional_str,
    require_fields,
    required_timestamp,
)
from .registry import ProviderSpec

SPEC = ProviderSpec(
    kind="ionworks",
    display_name="Ionworks",
    default_base_url="https://api.ionworks.com",
    auth_header="X-API-Key",
    auth_scheme=None,
    page_size=100,
)
PROVIDER = SPEC.display_name
_EXPECTS_PROJECT = "Ionworks expects a project id"
_OFFSET = re.compile(r"0|[1-9][0-9]{0,8}")
_STATUSES = {
    "pending": JobStatus.SUBMITTED,
    "processing": JobStatus.WORKING,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "canceled": JobStatus.CANCELED,
    "cancelled": JobStatus.CANCELED,
}
# Our status -> the one Ionworks status that means exactly it (others are filtered here).
_UPSTREAM_FILTER = {
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}
_CONFIG_KEYS = (
    "priority",
    "user_id",
    "organization_id",
    "access_level",
    "params_path",
    "metadata_path",
    "callback_url",
    "compute_time",
    "error_code",
)
_LIST_KEYS = ("jobs", "items", "data", "results")


def map_status(
    status: str, *, is_terminal: bool | None = None, is_failed: bool | None = None, started: bool = False
) -> JobStatus:
    """An Ionworks status -> ours; `waiting` and unknown values as described in the module docstring."""
    value = status.lower()
    if value in _STATUSES:
        return _STATUSES[value]
    if value == "waiting":
        return JobStatus.WORKING if started else JobStatus.SUBMITTED
    if is_terminal is None:
        raise malformed(PROVIDER, f"unknown job status {status[:40]!r} without 'is_terminal'")
    if not is_terminal:
        return JobStatus.SUBMITTED
    return JobStatus.FAILED if is_failed else JobStatus.COMPLETED


def to_record(payload: Any, project: str) -> JobRecord:
    """An Ionworks `JobResponse` as a record.

    The job says which project it is in (`project_id`, else its required `organization_id`), so
    `project` (the reference asked for) is not used for project_id: ownership is never assumed.
    """
    job = require_fields(
        payload, ("job_id", "job_type", "status", "organization_id", "created_at", "updated_at"), PROVIDER
    )
    started = normalize_timestamp(job.get("started_at"), "started_at", PROVIDER)
    is_terminal = job.get("is_terminal")
    is_failed = job.get("is_failed")
    status = map_status(
        str(job["status"]),
        is_terminal=is_terminal if isinstance(is_terminal, bool) else None,
        is_failed=is_failed if isinstance(is_failed, bool) else None,
        started=started is not None,
    )
    error = optional_str(job.get("error"))
    error_code = optional_str(job.get("error_code"))
    if error and error_code:
        error = f"{error} ({error_code})"
    config: dict[str, Any] = {key: job[key] for key in _CONFIG_KEYS if job.get(key) is not None}
    config["provider_status"] = str(job["status"])
    job_type = str(job["job_type"])
    return make_record(
        id=str(job["job_id"]),
        project_id=optional_str(job.get("project_id")) or str(job["organization_id"]),
        batch_id=optional_str(job.get("parent_job_id")),
        name=job_type,
        status=status,
        target=job_type,
        config=config,
        failed_reason=error or error_code,
        started_at=started,
        completed_at=normalize_timestamp(job.get("completed_at"), "completed_at", PROVIDER),
        created_at=required_timestamp(job["created_at"], "created_at", PROVIDER),
        updated_at=required_timestamp(job["updated_at"], "updated_at", PROVIDER),
    )


def in_project(record: JobRecord, project: str) -> bool:
    """True when the job belongs to `project` (its project_id, or its organization if it has no project)."""
    return record["project_id"] == project


def _page_items(body: Any) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(body, list):
        return body, {}
    if isinstance(body, dict):
        for key in _LIST_KEYS:
            if isinstance(body.get(key), list):
                return body[key], body
    raise malformed(PROVIDER, "the job list is neither an array nor an object holding one")


def _has_next(meta: dict[str, Any], offset: int, limit: int, received: int) -> bool:
    has_more = meta.get("has_more")
    if isinstance(has_more, bool):
        return has_more
    total = meta.get("total", meta.get("total_count"))
    if isinstance(total, int) and not isinstance(total, bool):
        return offset + received < total
    return received >= limit


class IonworksBackend(HostedBackend):
    spec = SPEC
    cancel_body: ClassVar[Any] = {}  # as the SDK sends
    read_before_cancel = True  # Ionworks cancels by id alone: another project's job is never canceled
    logs_instead = record_for_logs("Ionworks' error and error code")

    def job_path(self, project: str, job_id: str) -> str:
        plain_segment("project_reference", project, _EXPECTS_PROJECT)
        return f"/jobs/{plain_segment('job_id', job_id, 'Ionworks expects a job id')}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project)

    def owns(self, record: JobRecord, project: str) -> bool:
        return in_project(record, project)

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        plain_segment("project_reference", project, _EXPECTS_PROJECT)
        if cursor is not None and _OFFSET.fullmatch(cursor) is None:
            raise refused_cursor()
        offset = int(cursor or "0")
        params = {"limit": size, "offset": offset, "status": _UPSTREAM_FILTER.get(status) if status else None}
        body = await self.http.request_json("GET", "/jobs", params=params, what="job list")
        items, meta = _page_items(body)
        jobs = [to_record(item, project) for item in items]
        more = bool(items) and _has_next(meta, offset, size, len(items))
        return jobs, str(offset + len(items)) if more else None


def create(settings: BackendSettings) -> Backend:
    return IonworksBackend(settings)
