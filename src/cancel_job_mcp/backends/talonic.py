"""The `talonic` backend: Talonic extraction jobs, through the Talonic REST API v1.

- Base URL `https://api.talonic.com`; `Authorization: Bearer tlnc_...` from `$TALONIC_API_KEY`.
- Cancel `POST /v1/jobs/{id}/cancel`, read `GET /v1/jobs/{id}`, list `GET /v1/jobs?status=&limit=&cursor=`
  answering `{data, pagination{total, limit, has_more, next_cursor}}`.
- Job ids must be UUIDs (Talonic answers 400 otherwise); a bad one is refused here, before any request.

Project scoping: Talonic has no projects; a key sees its organization's jobs, and nothing in a job
says which organization it belongs to: the key decides. So the backend serves every project reference
the configuration routes to it (its `projects` patterns, or `NAME:REF`) and records that reference as
`project_id`. To keep two Talonic organizations apart, configure one backend per key, each with its
own `projects`.

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
- Record: project_id = the project reference asked for; name = `name` ?? `schema.name` ?? id; target =
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

from ..errors.providers import TALONIC_LOGS_INSTEAD, malformed
from ..record import JobRecord, JobStatus, make_record
from .base import Backend, BackendSettings
from .http.checks import uuid_segment
from .http.flows import ProviderPage
from .http.hosted import HostedBackend
from .http.payload import job_times, optional_str, require_fields
from .registry import ProviderSpec

SPEC = ProviderSpec(
    kind="talonic",
    display_name="Talonic",
    default_base_url="https://api.talonic.com",
    page_size=100,
)
PROVIDER = SPEC.display_name
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


def to_record(payload: Any, project: str, *, canceled: bool = False) -> JobRecord:
    """A Talonic job (bare or in `data`) as a record of `project`; `canceled=True` for a cancel's answer."""
    job = require_fields(_unwrap(payload), ("id", "status", "created_at"), PROVIDER)
    error = job.get("error")
    message = optional_str(error.get("message")) if isinstance(error, dict) else optional_str(error)
    raw_status = str(job["status"])
    status = map_status(raw_status, message, canceled=canceled)
    times = job_times(job, PROVIDER)
    raw_schema = job.get("schema")
    schema: dict[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
    config: dict[str, Any] = {key: job[key] for key in _CONFIG_KEYS if job.get(key) is not None}
    config["provider_status"] = raw_status
    return make_record(
        id=str(job["id"]),
        project_id=project,
        name=optional_str(job.get("name")) or optional_str(schema.get("name")) or str(job["id"]),
        status=status,
        target=f"schema:{schema['id']}" if schema.get("id") else "extraction",
        config=config,
        failed_reason=message if status in (JobStatus.FAILED, JobStatus.CANCELED) else None,
        **times,
    )


class TalonicBackend(HostedBackend):
    spec = SPEC
    logs_instead = TALONIC_LOGS_INSTEAD

    def job_path(self, project: str, job_id: str) -> str:
        return f"/v1/jobs/{uuid_segment('job_id', job_id, PROVIDER)}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project)

    def canceled_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project, canceled=True)

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        params = {"limit": size, "cursor": cursor, "status": _UPSTREAM_FILTER.get(status) if status else None}
        body = await self.http.request_json("GET", "/v1/jobs", params=params, what="job list")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise malformed(PROVIDER, "the job list lacks 'data'")
        jobs = [to_record(item, project) for item in body["data"]]
        pagination = body.get("pagination")
        next_cursor = None
        if isinstance(pagination, dict) and pagination.get("has_more") is not False:
            next_cursor = optional_str(pagination.get("next_cursor")) or None
        return jobs, next_cursor


def _unwrap(body: Any) -> Any:
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        return body["data"]
    return body


def create(settings: BackendSettings) -> Backend:
    return TalonicBackend(settings)
