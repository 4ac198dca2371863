"""The `digitalocean` backend: App Platform job invocations, through the DigitalOcean API v2.

- Base URL `https://api.digitalocean.com`; `Authorization: Bearer <token>` from `$DIGITALOCEAN_TOKEN`.
- `project_reference` is the app id. Cancel `POST /v2/apps/{app_id}/job-invocations/{id}/cancel`,
  read `GET /v2/apps/{app_id}/job-invocations/{id}`, list `GET /v2/apps/{app_id}/job-invocations`
  with `page`/`per_page` (per_page at most 200).
- Both ids are plain strings in the spec (its own example invocation id is not a valid UUID), so they
  are checked against `^[A-Za-z0-9_-]{1,128}$` (no '.', '/', '%' or spaces), not as UUIDs.

Project scoping: the app id is part of every path and DigitalOcean has no lookup by invocation id
alone, so an invocation of another app answers 404 -> `not_found` and is never canceled.

Decisions where the documents are silent or contradict each other:

- Response wrapper: the spec's description says `{"job_invocation": ...}`, its schema is the bare
  object, its example wraps a one-element list, and godo decodes an object. All three are read:
  `body.get("job_invocation", body)`, then the first element if that is a list. `trigger` and
  `trigger.scheduled` may likewise be lists (as in the example) and are read the same way.
- Status (`phase`): PENDING -> submitted, UNKNOWN -> submitted (undocumented, so non-terminal and a
  client polls again), RUNNING -> working, SUCCEEDED -> completed, FAILED -> failed, CANCELED ->
  canceled, SKIPPED -> canceled with `failed_reason` "skipped: the invocation never ran" (it did not
  run and will not: neither a success nor a failure of the job). Unrecognised phases -> submitted.
  The raw phase is kept in `config["phase"]`.
- Record: id = `id`; project_id = the app id; name = target = `job_name` (id when absent); cron_job_id
  = "{app_id}:{job_name}" when the trigger type is SCHEDULE/SCHEDULED (synthetic: DigitalOcean has no
  cron-job object), else null; config = `{app_id, job_name, deployment_id, trigger, phase}`;
  timeout_seconds = backoff_limit = 0 (the app spec's job timeout would cost an extra call per job, so
  it is not fetched); failed_reason for FAILED/CANCELED is `progress.steps[].reason.message` when
  present, else the phase; updated_at = the latest of completed_at, started_at and created_at.
- No 409 is documented for an invocation that has already finished. On cancel, any 4xx other than
  401/403/404/429 is checked with a GET: a finished invocation gives `not_cancellable` with its phase,
  an active one re-raises the provider's error. A 200 whose invocation is SUCCEEDED/FAILED is also
  `not_cancellable`.
- List: DigitalOcean cannot filter by phase, so the status filter is applied here, one provider page
  at a time (a page may hold fewer jobs than `limit`; only `next_cursor` null means the end). The
  cursor is `"{page}:{per_page}"`, so a continuation keeps the page size it started with. There is a
  next page when `links.pages.next` is present, or when `meta.total` says more remain.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from ..errors import ProviderError, refused_cursor
from ..errors.providers import malformed
from ..record import JobRecord, JobStatus, make_record
from .base import Backend, BackendSettings
from .http.checks import plain_segment
from .http.flows import ProviderPage
from .http.hosted import HostedBackend
from .http.payload import job_times, optional_str, require_fields
from .logs import JobLogs, LogQuery, select_text
from .registry import ProviderSpec

SPEC = ProviderSpec(
    kind="digitalocean",
    display_name="DigitalOcean",
    default_base_url="https://api.digitalocean.com",
    page_size=200,
)
PROVIDER = SPEC.display_name
_CURSOR = re.compile(r"([1-9][0-9]{0,8}):([1-9][0-9]{0,2})")
_PHASES = {
    "UNKNOWN": JobStatus.SUBMITTED,
    "PENDING": JobStatus.SUBMITTED,
    "RUNNING": JobStatus.WORKING,
    "SUCCEEDED": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED,
    "CANCELED": JobStatus.CANCELED,
    "SKIPPED": JobStatus.CANCELED,
}
SKIPPED_REASON = "skipped: the invocation never ran"


def map_status(phase: str) -> JobStatus:
    """A job invocation's `phase` -> our status (unrecognised phases -> submitted)."""
    return _PHASES.get(phase.upper(), JobStatus.SUBMITTED)


def to_record(payload: Any, project: str) -> JobRecord:
    """A job invocation (bare, `{"job_invocation": {...}}` or `{"job_invocation": [{...}]}`) as a record.

    `project` is the app id the invocation was asked for (the invocation itself does not carry it).
    """
    inner: Any = payload.get("job_invocation", payload) if isinstance(payload, dict) else payload
    inner = _first(inner)
    job = require_fields(inner, ("id", "phase", "created_at"), PROVIDER, "job invocation")
    phase = str(job["phase"])
    status = map_status(phase)
    job_name = optional_str(job.get("job_name"))
    trigger = _trigger(job.get("trigger"))
    trigger_type = str(trigger.get("type") or "").upper() if trigger else ""
    times = job_times(job, PROVIDER)
    config = {
        "app_id": project,
        "job_name": job_name,
        "deployment_id": optional_str(job.get("deployment_id")),
        "trigger": trigger,
        "phase": phase,
    }
    return make_record(
        id=str(job["id"]),
        project_id=project,
        cron_job_id=f"{project}:{job_name}" if job_name and trigger_type.startswith("SCHEDULE") else None,
        name=job_name or str(job["id"]),
        status=status,
        target=job_name or "",
        config={key: value for key, value in config.items() if value is not None},
        failed_reason=_failed_reason(job, phase.upper()),
        **times,
    )


def _first(value: Any) -> Any:
    if isinstance(value, list):
        if not value:
            raise malformed(PROVIDER, "the job invocation list is empty")
        return value[0]
    return value


def _trigger(value: Any) -> dict[str, Any] | None:
    if value is None or value == []:
        return None
    trigger = _first(value)
    if not isinstance(trigger, dict):
        raise malformed(PROVIDER, "'trigger' is not an object")
    trigger = dict(trigger)
    if isinstance(trigger.get("scheduled"), list):
        trigger["scheduled"] = trigger["scheduled"][0] if trigger["scheduled"] else None
    if isinstance(trigger.get("manual"), list):
        trigger["manual"] = trigger["manual"][0] if trigger["manual"] else None
    return trigger


def _failed_reason(job: dict[str, Any], phase: str) -> str | None:
    if phase == "SKIPPED":
        return SKIPPED_REASON
    if phase not in ("FAILED", "CANCELED"):
        return None
    progress = job.get("progress")
    steps = progress.get("steps") if isinstance(progress, dict) else None
    for step in steps if isinstance(steps, list) else []:
        reason = step.get("reason") if isinstance(step, dict) else None
        message = reason.get("message") if isinstance(reason, dict) else None
        if isinstance(message, str) and message:
            return message
    return phase.lower()


def _parse_cursor(cursor: str | None, size: int) -> tuple[int, int]:
    """(page, per_page): a continuation keeps the page size it started with."""
    if cursor is None:
        return 1, size
    match = _CURSOR.fullmatch(cursor)
    if match is None or int(match.group(2)) > SPEC.page_size:
        raise refused_cursor()
    return int(match.group(1)), int(match.group(2))


def _has_next(body: dict[str, Any], page: int, per_page: int, received: int) -> bool:
    links = body.get("links")
    pages = links.get("pages") if isinstance(links, dict) else None
    if isinstance(pages, dict) and pages.get("next"):
        return True
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else None
    if isinstance(total, int):
        return (page - 1) * per_page + received < total
    return False


class DigitalOceanBackend(HostedBackend):
    spec = SPEC

    def job_path(self, project: str, job_id: str) -> str:
        job = plain_segment("job_id", job_id, "DigitalOcean expects a job invocation id")
        return f"{_app_path(project)}/{job}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project)

    def refused(self, error: ProviderError) -> bool:
        # No 409 is documented: any 4xx that is not about auth, existence or rate is checked with a GET.
        status = error.status
        return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 429)

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        """The documented logs endpoint answers URLs of the invocation's log files (`historic_urls`,
        and `live_url` while it runs); they are read in turn, without our token, within the
        backend's size and time bounds (HttpClient.read_handed_out)."""
        record = await self.read_job(project, job_id)
        job_name = quote(str(record["config"].get("job_name") or record["name"]), safe="")
        app = plain_segment("project_reference", project, "DigitalOcean expects an app id")
        path = f"/v2/apps/{app}/jobs/{job_name}/invocations/{quote(record['id'], safe='')}/logs"
        body = await self._request("GET", path, project, job_id, params={"type": "JOB_INVOCATION"})
        urls = _log_urls(body)
        data, cut = await self.http.read_handed_out(urls)
        selection = select_text(data.decode("utf-8", "replace"), query)
        return JobLogs(
            project_id=project,
            job_id=record["id"],
            source=f"DigitalOcean GET {path}?type=JOB_INVOCATION, then its {len(urls)} log URL(s)",
            lines=selection.lines,
            truncated=selection.truncated or cut,
            log_bytes=None if cut else len(data),
        )

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        path = _app_path(project)  # DigitalOcean cannot filter by phase: `status` is applied by the caller
        page, per_page = _parse_cursor(cursor, size)
        params = {"page": page, "per_page": per_page}
        body = await self.http.request_json("GET", path, params=params, what=f"app {project!r}")
        if not isinstance(body, dict) or not isinstance(body.get("job_invocations", []), list):
            raise malformed(PROVIDER, "the invocation list lacks 'job_invocations'")
        items = body.get("job_invocations") or []
        jobs = [to_record(item, project) for item in items]
        more = bool(items) and _has_next(body, page, per_page, len(items))
        return jobs, f"{page + 1}:{per_page}" if more else None


def _log_urls(body: Any) -> list[str]:
    """The http(s) URLs of a logs answer, `{"historic_urls": [...], "live_url": ...}`, in that order."""
    if not isinstance(body, dict):
        raise malformed(PROVIDER, "the logs answer is not an object")
    historic = body.get("historic_urls") or []
    live = body.get("live_url")
    urls = [*historic, live] if live else list(historic)
    if not isinstance(historic, list) or not all(isinstance(url, str) for url in urls):
        raise malformed(PROVIDER, "the logs answer's historic_urls and live_url are not URLs")
    if not all(url.startswith(("https://", "http://")) for url in urls):
        raise malformed(PROVIDER, "a log URL is not an http(s) URL")
    return urls


def _app_path(app_id: str) -> str:
    app = plain_segment("project_reference", app_id, "DigitalOcean expects an app id")
    return f"/v2/apps/{app}/job-invocations"


def create(settings: BackendSettings) -> Backend:
    return DigitalOceanBackend(settings)
