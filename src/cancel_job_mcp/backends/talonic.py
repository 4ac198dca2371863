"""The `talonic` backend: Talonic extraction jobs, through the Talonic REST API v1.

- Base URL `https://api.talonic.com`; `Authorization: Bearer tlnc_...` from `$TALONIC_API_KEY`.
- Cancel `POST /v1/jobs/{id}/cancel`, read `GET /v1/jobs/{id}`, list `GET /v1/jobs?status=&limit=&cursor=`
  answering `{data, pagination{total, limit, has_more, next_cursor}}`.
- Job ids must be UUIDs (Talonic answers 400 otherwise); a bad one is refused here, before any request.

Project scoping: Talonic has no projects; a key sees its organization's jobs. The backend serves one
project reference, the account name configured as `options.account` (default: the backend's name).
Any other reference answers `not_found` without a request, so a reference naming another account is
never used to cancel this account's jobs. Beyond that, nothing in a Talonic job says which account it
belongs to: the key decides.

Decisions where the documents are silent or contradict each other:

- A cancel is reported by Talonic as `status: "failed"` with `error: {code: "job_failed", message:
  "Cancelled via API"}`. A 2xx from POST .../cancel is always recorded `canceled`. A job read with GET
  is `canceled` when its status is failed and `error.message` mentions "cancel" (any case), else
  `failed`; this relies on the message text, as there is no dedicated code. `failed_reason` is the
  message in both cases.
- Status: pending, queued -> submitted; processing -> working; complete (the OpenAPI enum) and
  completed (the SDK docs) -> completed; failed -> failed or canceled as above; cancelled/canceled ->
  canceled. Unrecognised values -> submitted (non-terminal, so a client polls again). The raw
  status is kept in `config["provider_status"]`.
- Record: project_id = the account name; name = `name` ?? `schema.name` ?? id; target =
  "schema:<schema.id>" (or "extraction" without a schema); config keeps schema, document_count,
  completed_documents, grid_stats, current_phase, progress and links; updated_at (Talonic has none) =
  the latest of completed_at, started_at and created_at; timeout_seconds = backoff_limit = 0.
- Error codes come in lower and upper case across the docs; only the HTTP status is used.
- Rate limits: Retry-After when sent, else X-RateLimit-Reset as epoch seconds or ISO 8601 (both
  forms appear in Talonic's material); the shared client reads all of them.
- 409 (already completed or failed) is answered with a GET: a job already canceled gives its record
  (canceling twice is not an error), any other finished job `not_cancellable` naming its status.
- List: submitted spans two Talonic statuses and failed/canceled share one, so `status=` is sent only
  where it maps one-to-one (working -> processing, completed -> complete) or narrows (failed and
  canceled -> failed); the rest of the filtering happens here, one provider page at a time (a page may
  hold fewer jobs than `limit`; only `next_cursor` null means the end). The cursor is Talonic's own.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ErrorCode, ToolError
from ..record import JobRecord, JobStatus
from ._http import (
    HostedBackend,
    cancel_with_followup,
    checked_cursor,
    checked_limit,
    checked_status,
    filtered_page,
    latest,
    malformed,
    normalize_timestamp,
    optional_str,
    require_fields,
    required_timestamp,
    uuid_segment,
)
from .base import Backend, BackendSettings, JobPage

PROVIDER = "Talonic"
KIND = "talonic"
DEFAULT_BASE_URL = "https://api.talonic.com"
MAX_PAGE = 100
_CANCEL_MARKER = re.compile(r"cancel", re.IGNORECASE)
_STATUSES = {
    "pending": JobStatus.SUBMITTED,
    "queued": JobStatus.SUBMITTED,
    "processing": JobStatus.WORKING,
    "complete": JobStatus.COMPLETED,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELED,
    "canceled": JobStatus.CANCELED,
}
_UPSTREAM_FILTER = {
    JobStatus.WORKING: "processing",
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "failed",
}
_CONFIG_KEYS = (
    "schema",
    "document_count",
    "completed_documents",
    "grid_stats",
    "current_phase",
    "progress",
    "links",
)


def map_status(status: str, error_message: str | None = None, *, canceled: bool = False) -> JobStatus:
    """A Talonic status -> ours. `canceled` says the job came back from a successful cancel request."""
    mapped = _STATUSES.get(status.lower(), JobStatus.SUBMITTED)
    if mapped == JobStatus.FAILED and (canceled or (error_message and _CANCEL_MARKER.search(error_message))):
        return JobStatus.CANCELED
    return mapped


def to_record(payload: dict[str, Any], project: str, *, canceled: bool = False) -> JobRecord:
    """A Talonic job as a record of account `project`; `canceled=True` for the answer to a cancel."""
    job = require_fields(payload, ("id", "status", "created_at"), PROVIDER)
    error = job.get("error")
    message = optional_str(error.get("message")) if isinstance(error, dict) else optional_str(error)
    raw_status = str(job["status"])
    status = map_status(raw_status, message, canceled=canceled)
    created = required_timestamp(job["created_at"], "created_at", PROVIDER)
    started = normalize_timestamp(job.get("started_at"), "started_at", PROVIDER)
    completed = normalize_timestamp(job.get("completed_at"), "completed_at", PROVIDER)
    raw_schema = job.get("schema")
    schema: dict[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
    config: dict[str, Any] = {key: job[key] for key in _CONFIG_KEYS if job.get(key) is not None}
    config["provider_status"] = raw_status
    return JobRecord(
        id=str(job["id"]),
        project_id=project,
        environment_id=None,
        branch_id=None,
        cron_job_id=None,
        batch_id=None,
        name=optional_str(job.get("name")) or optional_str(schema.get("name")) or str(job["id"]),
        status=status,
        target=f"schema:{schema['id']}" if schema.get("id") else "extraction",
        config=config,
        timeout_seconds=0,
        backoff_limit=0,
        exit_code=None,
        failed_reason=message if status in (JobStatus.FAILED, JobStatus.CANCELED) else None,
        started_at=started,
        completed_at=completed,
        created_at=created,
        updated_at=latest(completed, started, created) or created,
    )


class TalonicBackend(HostedBackend):
    kind = KIND
    provider = PROVIDER
    default_base_url = DEFAULT_BASE_URL

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        self.account = str(settings.options.get("account") or settings.name)

    def _check_project(self, project: str, job_id: str | None = None) -> None:
        if project != self.account:
            where = f"job {job_id!r} in project" if job_id is not None else "project"
            raise ToolError(
                ErrorCode.NOT_FOUND,
                f"Talonic has no {where} {project!r}: this backend serves the Talonic account"
                f" {self.account!r} (use {self.account!r} as the project reference). Nothing was sent"
                " to Talonic.",
            )

    def _job_path(self, project: str, job_id: str) -> str:
        path = f"/v1/jobs/{uuid_segment('job_id', job_id, PROVIDER)}"
        self._check_project(project, job_id)
        return path

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        path = self._job_path(project, job_id)
        body = await self.http.request_json("GET", path, what=f"job {job_id!r}")
        return to_record(_unwrap(body), project)

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        path = self._job_path(project, job_id)

        async def post() -> JobRecord:
            body = await self.http.request_json("POST", f"{path}/cancel", what=f"job {job_id!r}")
            return to_record(_unwrap(body), project, canceled=True)

        return await cancel_with_followup(self.http, job_id, post, lambda: self.get_job(project, job_id))

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        self._check_project(project)
        wanted = checked_status(status)
        size = checked_limit(limit, MAX_PAGE)

        async def fetch(page_cursor: str | None) -> tuple[list[JobRecord], str | None]:
            params = {
                "limit": size,
                "cursor": page_cursor,
                "status": _UPSTREAM_FILTER.get(wanted) if wanted else None,
            }
            body = await self.http.request_json("GET", "/v1/jobs", params=params, what="job list")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise malformed(PROVIDER, "the job list lacks 'data'")
            jobs = [to_record(_unwrap(item), project) for item in body["data"]]
            pagination = body.get("pagination")
            next_cursor = None
            if isinstance(pagination, dict) and pagination.get("has_more") is not False:
                next_cursor = optional_str(pagination.get("next_cursor")) or None
            return jobs, next_cursor

        return await filtered_page(
            fetch, lambda job: wanted is None or job["status"] == wanted, checked_cursor(cursor)
        )


def _unwrap(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        inner: dict[str, Any] = body["data"]
        return inner
    if not isinstance(body, dict):
        raise malformed(PROVIDER, "the job is not an object")
    return body


def create(settings: BackendSettings) -> Backend:
    return TalonicBackend(settings)
