"""The `veryfront` backend: jobs of Veryfront projects, through the Veryfront REST API.

- Base URL `https://api.veryfront.com` (`base_url` overrides it); `Authorization: Bearer <token>` from
  `$VERYFRONT_API_TOKEN` (or the variable named by `token_env`).
- Cancel `POST /projects/{project_reference}/jobs/{job_id}/cancel`, read `GET /projects/{ref}/jobs/{id}`,
  list `GET /projects/{ref}/jobs?limit=&cursor=&status=`.
- `project_reference` must match `^[a-zA-Z0-9_-]{1,128}$` and `job_id` must be a UUID (the documented
  path formats); anything else is `invalid_argument` and nothing is sent.

Project scoping: the project is part of every path, so Veryfront itself only finds (and cancels) a job
within the named project; a job of another project answers 404 -> `not_found`. The response's
`project_id` is not compared with the reference because the reference may be a slug while `project_id`
is the project's id.

Decisions where the documents are silent or loose:

- The record is Veryfront's own 18-field record. The extra fields (`canonical_run_id`, `context_id`,
  `created_by`, `kind`, `failure_detail`, `result_summary`, `result`) are dropped; `failure_detail`
  fills `failed_reason` when that is null. A null `config` becomes `{}`, a missing `timeout_seconds` or
  `backoff_limit` becomes 0, a missing `name` becomes the id, a missing `target` becomes "".
- A response may be the bare record or wrapped as `{"data": record}` / `{"job": record}`; all are read.
- Status is the identity on the five documented values. The canonical-runs spellings (`pending`,
  `running`, `cancelled`, ...) are accepted as synonyms; any other value is recorded as `submitted`
  (non-terminal, so a client polls again) with the raw value kept in `config["provider_status"]`.
- The list answer is `{"data": [...]}`; the next cursor is read from `next_cursor`, `pagination.next_cursor`
  or `meta.next_cursor`, whichever is present (the stored docs do not show it). Status filtering is done
  by Veryfront (`status=`), which shares our vocabulary. Limit is clamped to Veryfront's 1-100.
- Veryfront documents no answer for canceling a finished job; a 409 is treated as for every provider
  (the job is read and its status named), and a 200 whose record is completed/failed is `not_cancellable`.
"""

from __future__ import annotations

from typing import Any

from ..errors.providers import malformed, record_for_logs
from ..record import JobRecord, JobStatus, make_record
from .base import Backend, BackendSettings
from .http.checks import plain_segment, uuid_segment
from .http.flows import ProviderPage
from .http.hosted import HostedBackend
from .http.payload import job_times, optional_str, require_fields
from .registry import ProviderSpec

SPEC = ProviderSpec(
    kind="veryfront",
    display_name="Veryfront",
    default_base_url="https://api.veryfront.com",
    page_size=100,
)
PROVIDER = SPEC.display_name
_STATUSES = {
    "submitted": JobStatus.SUBMITTED,
    "pending": JobStatus.SUBMITTED,
    "queued": JobStatus.SUBMITTED,
    "waiting": JobStatus.SUBMITTED,
    "working": JobStatus.WORKING,
    "running": JobStatus.WORKING,
    "completed": JobStatus.COMPLETED,
    "succeeded": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "canceled": JobStatus.CANCELED,
    "cancelled": JobStatus.CANCELED,
}


def map_status(status: str) -> JobStatus:
    """Veryfront's status -> ours (identity on the documented five; unknown values -> submitted)."""
    return _STATUSES.get(status.lower(), JobStatus.SUBMITTED)


def to_record(payload: Any, project: str) -> JobRecord:
    """A Veryfront job (bare or wrapped in `data`/`job`) as a record; `project` fills a missing project_id."""
    job = require_fields(_unwrap(payload), ("id", "status", "created_at"), PROVIDER)
    raw_status = str(job["status"])
    status = map_status(raw_status)
    config = job.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise malformed(PROVIDER, "'config' is not an object")
    config = dict(config)
    if raw_status.lower() not in _STATUSES or raw_status != status.value:
        config["provider_status"] = raw_status
    times = job_times(job, PROVIDER, updated_field="updated_at")
    return make_record(
        id=str(job["id"]),
        project_id=optional_str(job.get("project_id")) or project,
        environment_id=optional_str(job.get("environment_id")),
        branch_id=optional_str(job.get("branch_id")),
        cron_job_id=optional_str(job.get("cron_job_id")),
        batch_id=optional_str(job.get("batch_id")),
        name=optional_str(job.get("name")) or str(job["id"]),
        status=status,
        target=optional_str(job.get("target")) or "",
        config=config,
        timeout_seconds=_number(job.get("timeout_seconds"), "timeout_seconds"),
        backoff_limit=_number(job.get("backoff_limit"), "backoff_limit"),
        exit_code=_exit_code(job.get("exit_code")),
        failed_reason=optional_str(job.get("failed_reason")) or optional_str(job.get("failure_detail")),
        **times,
    )


def _unwrap(payload: Any) -> Any:
    if isinstance(payload, dict) and "id" not in payload:
        for key in ("data", "job"):
            if isinstance(payload.get(key), dict):
                return payload[key]
    return payload


def _number(value: Any, field: str) -> float:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(PROVIDER, f"{field!r} is not a number")
    return value


def _exit_code(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise malformed(PROVIDER, "'exit_code' is not an integer")
    return int(value)


def _next_cursor(body: dict[str, Any]) -> str | None:
    for holder in (body, body.get("pagination"), body.get("meta")):
        if isinstance(holder, dict):
            value = holder.get("next_cursor")
            if isinstance(value, str) and value:
                return value
    return None


class VeryfrontBackend(HostedBackend):
    spec = SPEC
    logs_instead = record_for_logs("Veryfront's failure detail")

    def job_path(self, project: str, job_id: str) -> str:
        return f"{_jobs_path(project)}/{uuid_segment('job_id', job_id, PROVIDER)}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project)

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        # Veryfront filters by status itself: it shares our vocabulary.
        params = {"limit": size, "cursor": cursor, "status": status.value if status else None}
        body = await self.http.request_json(
            "GET", _jobs_path(project), params=params, what=f"project {project!r}"
        )
        if isinstance(body, list):
            return [to_record(item, project) for item in body], None
        if not isinstance(body, dict):
            raise malformed(PROVIDER, "the job list is neither an object nor a list")
        items = body.get("data")
        if not isinstance(items, list):
            raise malformed(PROVIDER, "the job list lacks 'data'")
        return [to_record(item, project) for item in items], _next_cursor(body)


def _jobs_path(project: str) -> str:
    reference = plain_segment("project_reference", project, "Veryfront expects a project id or slug")
    return f"/projects/{reference}/jobs"


def create(settings: BackendSettings) -> Backend:
    return VeryfrontBackend(settings)
