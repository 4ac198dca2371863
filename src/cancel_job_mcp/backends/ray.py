"""The `ray` backend: jobs of a Ray cluster, through the Jobs REST API of its dashboard.

The server talks HTTP only (it does not need the `ray` package). The dashboard address is the
backend's `base_url`, else `$RAY_ADDRESS` when that is an http(s) URL, else http://127.0.0.1:8265.
A cluster is one project: `project_id` is the project reference given (e.g. `cluster1` in
`ray:cluster1`); which references reach this backend is the router's decision (`projects`).

Requests (checked against a Ray 2.60 head node):

- cancel: `POST /api/jobs/{id}/stop`. `{"stopped": true}` means Ray *asked* the job to stop; the job
  is usually still RUNNING (or PENDING) right after, and the returned record (from a GET made at once)
  says so. The caller polls `get_job` until the job is terminal. `{"stopped": false}` (HTTP 200)
  means Ray has nothing to stop, i.e. the job already finished: `not_cancellable`, naming its status.
  A job started by a driver calling `ray.init` (type DRIVER) cannot be stopped (HTTP 400).
- read: `GET /api/jobs/{id}`, which accepts a submission id or a Ray job id. Unknown: HTTP 404 with
  a text/plain body ("Job X does not exist"): `not_found`.
- list: `GET /api/jobs/`, every job of the cluster in one answer (a JSON array in 2.60; a dict in
  older versions). This backend sorts it newest first (by `start_time`, then id), filters by status
  and pages it itself. The cursor is `<start_time in epoch ms>:<id>` of the last job of the previous
  page; the next page holds the jobs that sort after it, so jobs submitted in between do not shift it.

Auth: none by default. For a cluster behind a proxy or with Ray token auth, set `token_env` to the
variable holding the token; it is sent as `Authorization: Bearer <token>`, or in the header named by
the option `auth_header` (with the scheme of the option `auth_scheme`, "" for the bare token).

Mapping to the record: id = submission_id (a driver's job_id for DRIVER jobs), name = metadata.name
else the id, target = entrypoint, exit_code = driver_exit_code, failed_reason = the first line of
Ray's message on FAILED and STOPPED (Ray appends up to 20,000 characters of logs to a failure
message; they are dropped), created_at = start_time (Ray sets it at submission), started_at = the
same once the job left PENDING, completed_at = end_time, updated_at = the later of the two. Ray has
no timeout or retry count: timeout_seconds = backoff_limit = 0. `config` keeps the entrypoint, its
resources, the metadata and the runtime_env with the values of `env_vars` redacted and credentials
removed from URLs, plus `_provider` (Ray's own status, id, job type and error type).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ..errors import NOTHING_CANCELED, ProviderError, ToolError, not_cancellable
from ..errors.providers import (
    malformed,
    on_ray_cluster,
    ray_did_not_stop,
    ray_driver_not_stoppable,
    ray_job_not_found,
)
from ..record import TERMINAL_STATUSES, JobRecord, JobStatus, make_record
from .base import Backend, BackendSettings, JobPage
from .http.checks import ServiceAddress, checked_segment
from .http.credentials import REDACTED
from .http.flows import ProviderPage, cursor_position, cut_page
from .http.hosted import HostedBackend
from .http.payload import latest, normalize_timestamp, required_timestamp
from .logs import JobLogs, LogQuery, select_text
from .registry import ProviderSpec

DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8265"
SPEC = ProviderSpec(kind="ray", display_name="Ray", default_base_url=DEFAULT_DASHBOARD_URL, page_size=1000)
ADDRESS_ENV = SPEC.address_env or ""  # RAY_ADDRESS, listed in the registry
PROVIDER = SPEC.display_name
FAILED_REASON_LIMIT = 500

# A submission id (Ray's own are `raysubmit_` + 16 characters) or a Ray job id (hex, e.g. 02000000).
SUBMISSION_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
SUBMISSION_ID_RULE = (
    "must be a Ray submission id or job id: 1-128 letters, digits, '_', '-' or '.', not starting with '.'"
)
_CURSOR = re.compile(r"(-?\d{1,20}):(.+)")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")

STATUS_MAP: Mapping[str, JobStatus] = {
    "PENDING": JobStatus.SUBMITTED,
    "RUNNING": JobStatus.WORKING,
    "SUCCEEDED": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED,
    "STOPPED": JobStatus.CANCELED,
}
RESOURCE_FIELDS = ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory", "entrypoint_resources")


# --- the mapping (pure) ----------------------------------------------------------------------------


def to_record(payload: Any, project: str) -> JobRecord:
    """The record for one Ray `JobDetails` object (as `GET /api/jobs/{id}` returns it)."""
    if not isinstance(payload, dict):
        raise malformed(PROVIDER, "expected a job object")
    job_id = _job_id(payload)
    raw_status = payload.get("status")
    if not isinstance(raw_status, str):
        raise malformed(PROVIDER, f"job {job_id!r} has no status")
    status = STATUS_MAP.get(raw_status.upper(), JobStatus.SUBMITTED)
    created_at = required_timestamp(payload.get("start_time"), "start_time", PROVIDER)
    ended = normalize_timestamp(payload.get("end_time"), "end_time", PROVIDER)
    completed_at = ended if status in TERMINAL_STATUSES else None
    metadata = payload.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    exit_code = payload.get("driver_exit_code")
    return make_record(
        id=job_id,
        project_id=project,
        name=name if isinstance(name, str) and name.strip() else job_id,
        status=status,
        target=str(payload.get("entrypoint") or ""),
        config=_config(payload, job_id, raw_status),
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        failed_reason=_failed_reason(payload, status, raw_status),
        started_at=None if status is JobStatus.SUBMITTED else created_at,
        completed_at=completed_at,
        created_at=created_at,
        updated_at=latest(created_at, completed_at) or created_at,
    )


def _job_id(payload: dict[str, Any]) -> str:
    for key in ("submission_id", "job_id"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    raise malformed(PROVIDER, "a job has neither a submission_id nor a job_id")


def _config(payload: dict[str, Any], job_id: str, raw_status: str) -> dict[str, Any]:
    config: dict[str, Any] = {"entrypoint": payload.get("entrypoint")}
    for key in RESOURCE_FIELDS:
        if payload.get(key) is not None:
            config[key] = payload[key]
    metadata = payload.get("metadata")
    config["metadata"] = dict(metadata) if isinstance(metadata, dict) else {}
    config["runtime_env"] = redact_runtime_env(payload.get("runtime_env"))
    config["_provider"] = {
        "name": "ray",
        "status": raw_status,
        "raw_id": job_id,
        "type": payload.get("type"),
        "job_id": payload.get("job_id"),
        "error_type": payload.get("error_type"),
    }
    return config


def redact_runtime_env(runtime_env: Any) -> dict[str, Any]:
    """A copy of a runtime_env without secrets: `env_vars` values redacted, URL credentials removed."""
    if not isinstance(runtime_env, dict):
        return {}
    cleaned: dict[str, Any] = {}
    for key, value in runtime_env.items():
        if key == "env_vars" and isinstance(value, dict):
            cleaned[key] = {name: REDACTED for name in value}
        else:
            cleaned[key] = _strip_url_credentials(value)
    return cleaned


def _strip_url_credentials(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", value)
    if isinstance(value, list):
        return [_strip_url_credentials(item) for item in value]
    if isinstance(value, dict):
        return {key: _strip_url_credentials(item) for key, item in value.items()}
    return value


def _failed_reason(payload: dict[str, Any], status: JobStatus, raw_status: str) -> str | None:
    if status not in (JobStatus.FAILED, JobStatus.CANCELED):
        return None
    message = payload.get("message")
    lines = message.strip().splitlines() if isinstance(message, str) else []
    first_line = lines[0].strip() if lines else ""
    # "Job entrypoint command failed with exit code 3, last available logs (truncated to 20,000 chars):"
    first_line = re.sub(r",? *last available logs.*$", "", first_line).strip()
    if len(first_line) > FAILED_REASON_LIMIT:
        first_line = first_line[: FAILED_REASON_LIMIT - 3] + "..."
    if first_line:
        return first_line
    error_type = payload.get("error_type")
    return error_type if isinstance(error_type, str) and error_type else f"Ray reports the job {raw_status}."


# --- the backend -----------------------------------------------------------------------------------


ADDRESS = ServiceAddress(
    kind="ray",
    env=ADDRESS_ENV,
    default=DEFAULT_DASHBOARD_URL,
    what="the HTTP address of a Ray dashboard",
    instead="The server uses the Jobs REST API, so give the dashboard URL, e.g. http://127.0.0.1:8265"
    " (not a ray:// client address or a GCS host:port).",
    credential="give the credential as a token (token_env, with auth_header and auth_scheme for a proxy"
    " that wants Basic auth)",
    port="the Ray dashboard listens on 8265 by default",
)


class RayBackend(HostedBackend):
    """Cancels, reads and lists the jobs of one Ray cluster."""

    spec = SPEC

    def client_spec(self, settings: BackendSettings) -> ProviderSpec:
        scheme = settings.options.get("auth_scheme", SPEC.auth_scheme)
        return dataclasses.replace(
            SPEC,
            default_base_url=ADDRESS.url(settings),
            auth_header=str(settings.options.get("auth_header", SPEC.auth_header)),
            auth_scheme=str(scheme) if scheme else None,
        )

    def job_path(self, project: str, job_id: str) -> str:
        return f"/api/jobs/{checked_segment('job_id', job_id, SUBMISSION_ID, SUBMISSION_ID_RULE)}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(body, project)

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return ray_job_not_found(job_id, project, self.http.base_url, consequence)

    async def read_job(self, project: str, job_id: str, consequence: str = "") -> JobRecord:
        record = await super().read_job(project, job_id, consequence)
        if job_id not in (record["id"], record["config"]["_provider"]["job_id"]):
            # Another job's record must never stand for this one (a proxy's cache, a bug upstream).
            raise malformed(PROVIDER, f"asked for job {job_id!r}, it answered with job {record['id']!r}")
        return record

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        path = f"{self.job_path(project, job_id)}/stop"
        try:
            answer = await self.http.request_json("POST", path, what=f"job {job_id!r}")
        except ProviderError as exc:
            if exc.status == 404:
                raise self.not_found(project, job_id, NOTHING_CANCELED) from None
            if exc.status == 400 and await self._is_driver(project, job_id):
                # Ray's text/plain answer: "Can only stop submission type jobs".
                raise ray_driver_not_stoppable(job_id, project) from None
            raise
        stopped = answer.get("stopped") if isinstance(answer, dict) else None
        if not isinstance(stopped, bool):
            raise malformed(PROVIDER, "the stop answer lacks a boolean 'stopped'")
        record = await self.get_job(project, job_id)
        if stopped:
            return record
        if record["status"] in TERMINAL_STATUSES:
            raise not_cancellable(record, on_ray_cluster(project))
        raise ray_did_not_stop(job_id, record["status"])

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        """Ray's `GET /api/jobs/{id}/logs`: the driver's whole output as `{"logs": text}` (an answer
        over max_response_bytes is refused, as every answer is)."""
        path = f"{self.job_path(project, job_id)}/logs"
        try:
            answer = await self.http.request_json("GET", path, what=f"job {job_id!r}")
        except ProviderError as exc:
            if exc.status == 404:
                raise self.not_found(project, job_id) from None
            raise
        text = answer.get("logs") if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise malformed(PROVIDER, "the logs answer lacks a string 'logs'")
        size = len(text.encode("utf-8", "replace"))
        return select_text(text, query).answer(project, job_id, f"Ray GET {path}", size)

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        # Ray answers every job of the cluster at once: the page is cut here, after the cursor.
        parts = cursor_position(cursor, _CURSOR)
        after = (int(parts[0]), parts[1]) if parts else None
        payload = await self.http.request_json("GET", "/api/jobs/", what="job listing")
        page = page_of(payload, project, status, size, after)
        return page["jobs"], page["next_cursor"]

    async def _is_driver(self, project: str, job_id: str) -> bool:
        record = await self.get_job(project, job_id)
        return bool(record["config"]["_provider"]["type"] == "DRIVER")


def listed_jobs(payload: Any) -> list[Any]:
    """The job objects of a listing: a JSON array (Ray 2.x), or a dict by submission id (older Ray)."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        jobs = payload.get("jobs")
        if isinstance(jobs, list):
            return jobs
        if all(isinstance(value, dict) for value in payload.values()):
            return [
                value if value.get("submission_id") else {**value, "submission_id": key}
                for key, value in payload.items()
            ]
    raise malformed(PROVIDER, "the job listing is neither a list nor an object of jobs")


def page_of(
    payload: Any, project: str, status: JobStatus | None, limit: int, after: tuple[int, str] | None
) -> JobPage:
    """One page of a listing answer: newest first, only `status` (if given), after the cursor `after`."""
    records = [(item, to_record(item, project)) for item in listed_jobs(payload)]
    positioned = [(_sort_key(item, record), record) for item, record in records]
    jobs, next_cursor = cut_page(positioned, status, limit, after)
    return JobPage(jobs=jobs, next_cursor=next_cursor)


def _sort_key(item: dict[str, Any], record: JobRecord) -> tuple[int, str]:
    start = item.get("start_time")
    millis = int(start) if isinstance(start, int | float) and not isinstance(start, bool) else 0
    return millis, record["id"]


def create(settings: BackendSettings) -> Backend:
    """The backend for one `[backends.NAME]` table of kind `ray` (raises BackendConfigError if unusable)."""
    return RayBackend(settings)
