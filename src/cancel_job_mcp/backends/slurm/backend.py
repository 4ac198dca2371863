"""The Slurm backend: requests to slurmrestd, with the rules of the package docstring."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ...errors import NOTHING_CANCELED, ErrorCode, ProviderError, ToolError, invalid_argument, not_found
from ...errors.providers import (
    SLURM_LOGS_INSTEAD,
    malformed,
    output_unreadable,
    slurm_address_missing,
    slurm_credentials_refused,
    slurm_option_not_text,
    slurm_socket_relative,
)
from ...record import JobRecord, JobStatus, utc_now
from ..base import Backend, BackendSettings
from ..http.answer import decode_json
from ..http.checks import checked_segment
from ..http.credentials import REDACTED
from ..http.flows import ProviderPage, cursor_position, cut_page
from ..http.hosted import HostedBackend
from ..logs import JobLogs, LogQuery

if TYPE_CHECKING:
    from ..http.client import Answer

from .mapping import (
    _CURSOR,
    ALREADY_DONE,
    JOB_ID,
    JOB_ID_RULE,
    LISTING_LIMIT,
    PROVIDER,
    SPEC,
    UNIX_PREFIX,
    USER_NAME_HEADER,
    array_tasks,
    in_scope,
    listed_jobs,
    newest_version,
    number,
    scope_matches,
    slurm_error,
    slurm_errors,
    tasks_record,
    text_field,
    to_record,
)
from .output import output_path, read_output_file

# --- the backend -----------------------------------------------------------------------------------


def _checked_address(settings: BackendSettings) -> None:
    """`base_url` is slurmrestd's http(s) URL or `unix:` and its socket's absolute path."""
    configured = settings.base_url
    if not configured:
        raise slurm_address_missing(settings.name)
    if configured.startswith(UNIX_PREFIX) and not configured.startswith(f"{UNIX_PREFIX}/"):
        raise slurm_socket_relative(settings.name, configured)


def _option(settings: BackendSettings, key: str) -> str | None:
    value = settings.options.get(key)
    if value is not None and not isinstance(value, str):
        raise slurm_option_not_text(settings.name, key)
    return value


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class SlurmBackend(HostedBackend):
    """Cancels, reads and lists the jobs of one Slurm cluster's account, partition or user."""

    spec = SPEC
    read_before_cancel = True  # a job outside the project is not_found, and nothing is sent to cancel it
    # slurmrestd serves no job output, only the path of the file it goes to, on the job's node. That file
    # is read here only where the configuration says so (`read_output = true`): a path the controller
    # names could otherwise be any file this server's user can read.
    logs_instead = SLURM_LOGS_INSTEAD

    def __init__(self, settings: BackendSettings) -> None:
        # scope and api_version were checked with the rest of the file (config_models.SlurmTable).
        self.scope = _option(settings, "scope") or "account"
        self.read_output = settings.options.get("read_output") is True
        self.api_version = _option(settings, "api_version")
        self.user_name = _option(settings, "user_name")
        _checked_address(settings)
        # The listing is the whole queue at once (3-10 KB a job): more than the 4 MiB other providers get.
        options = {"max_response_bytes": LISTING_LIMIT, **settings.options}
        super().__init__(dataclasses.replace(settings, options=options))
        self._version_lock = anyio.Lock()

    # --- HostedBackend's hooks ----------------------------------------------------------------------

    def job_path(self, project: str, job_id: str) -> str:
        return f"/slurm/{self.api_version}/job/{checked_segment('job_id', job_id, JOB_ID, JOB_ID_RULE)}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        jobs = listed_jobs(body)
        if not jobs:
            errors = slurm_errors(body)
            raise slurm_error(200, errors) if errors else malformed(PROVIDER, "the answer lists no job")
        return to_record(jobs[0], project)

    def client_headers(self, settings: BackendSettings) -> Mapping[str, str]:
        return {USER_NAME_HEADER: self.user_name} if self.user_name else {}

    def answer_error(self, answer: Answer) -> ProviderError | None:
        """slurmrestd's 401/403 (naming its JWT), and the `errors` its answers carry, in Slurm's words."""
        if answer.status in (401, 403):
            return slurm_credentials_refused(
                self.http.base_url, answer.status, self.http.token_env, self.user_name
            )
        try:
            errors = slurm_errors(decode_json(answer.body, PROVIDER)) if answer.body else []
        except ProviderError:
            errors = []
        return (
            slurm_error(answer.status, [self._without_secrets(error) for error in errors]) if errors else None
        )

    def _without_secrets(self, error: dict[str, Any]) -> dict[str, Any]:
        """The error's texts without our token (in any form) or anything shaped like a JWT."""

        def clean(text: str) -> str:
            return _JWT.sub(REDACTED, self.http.redacted(text))

        return {key: clean(value) if isinstance(value, str) else value for key, value in error.items()}

    def owns(self, record: JobRecord, project: str) -> bool:
        return scope_matches(record["config"].get(self.scope), self.scope, project)

    def refused(self, error: ProviderError) -> bool:
        return ALREADY_DONE in error.numbers

    def cancel_where(self, project: str) -> str:
        return self.where(project)

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return not_found(
            job_id,
            self.where(project),
            consequence,
            f"A job is found only within the {self.scope} it belongs to, and only while slurmctld still"
            " holds it (MinJobAge after it ended): check both values.",
        )

    def where(self, project: str) -> str:
        """Where a job is looked for, as messages say it: "in account 'physics' on Slurm at ..."."""
        return f"in {self.scope} {project!r} on Slurm at {self.http.base_url}"

    # --- the tools ----------------------------------------------------------------------------------

    async def read_job(self, project: str, job_id: str, consequence: str = "") -> JobRecord:
        await self._resolve_version()
        if "[" in job_id:
            return await self._tasks(project, job_id, consequence)
        try:
            return await super().read_job(project, job_id, consequence)
        except ToolError as error:
            array_job, _, task = job_id.partition("_")
            if error.code != ErrorCode.NOT_FOUND or not task:
                raise
            # A task of an array still pending as a whole (held, say) has no record of its own yet:
            # slurmrestd finds it only in its array's record, though it cancels it by its own id.
            record = await self._pending_task(project, array_job, int(task))
            if record is None:
                raise
            return record

    async def _tasks(self, project: str, job_id: str, consequence: str) -> JobRecord:
        """Several tasks of an array (`J_[1-3,7]`) as one record: slurmrestd cancels them by that id but
        reads no such id, so they are read from their array (its task records and pending tasks)."""
        array_job, _, spec = job_id.partition("_")
        checked_segment("job_id", job_id, JOB_ID, JOB_ID_RULE)
        wanted = array_tasks(spec[1:-1])
        if not wanted:
            raise invalid_argument("job_id", f"{JOB_ID_RULE}; the task list {spec!r} is not one")
        body = await self._request("GET", self.job_path(project, array_job), project, job_id, consequence)
        records = []
        for job in listed_jobs(body):
            if not isinstance(job, dict):
                continue
            task = number(job.get("array_task_id"))
            pending = job.get("array_task_string")
            if (task is not None and task in wanted) or (
                isinstance(pending, str) and pending and wanted & array_tasks(pending)
            ):
                records.append(to_record(job, project))
        if not records or not all(self.owns(record, project) for record in records):
            raise self.not_found(project, job_id, consequence)
        return tasks_record(records, job_id, array_job)

    async def _pending_task(self, project: str, array_job: str, task: int) -> JobRecord | None:
        """The record of task `task` of array `array_job` while it is among the array's pending tasks."""
        try:
            body = await self.http.request_json("GET", self.job_path(project, array_job), what="job array")
        except ProviderError:
            return None
        for job in listed_jobs(body):
            pending = job.get("array_task_string") if isinstance(job, dict) else None
            if isinstance(pending, str) and task in array_tasks(pending):
                record = to_record(job, project)
                if not self.owns(record, project):
                    return None
                return {**record, "id": f"{array_job}_{task}", "batch_id": array_job}
        return None

    async def send_cancel(self, project: str, job_id: str, current: JobRecord | None) -> JobRecord:
        """DELETE the job (read first: `current`), then read it again."""
        await self._request("DELETE", self.job_path(project, job_id), project, job_id, NOTHING_CANCELED)
        try:
            return await self.read_job(project, job_id)
        except ToolError as error:
            if (
                error.code != ErrorCode.NOT_FOUND
                or current is None
                or current["status"] != JobStatus.SUBMITTED
            ):
                raise
            # A pending array task that Slurm canceled leaves its array's pending tasks and keeps
            # no record of its own: it never ran, and is canceled now.
            now = utc_now()
            return {**current, "status": JobStatus.CANCELED, "completed_at": now, "updated_at": now}

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        """The job's StdOut file, read here when `read_output` is set and this machine can read it; only a
        regular file owned by the job's own user is read (not a path that leads anywhere else)."""
        if not self.read_output:
            return await super().get_job_logs(project, job_id, query)
        await self._resolve_version()
        body = await self._request("GET", self.job_path(project, job_id), project, job_id, "")
        payload = next((job for job in listed_jobs(body) if isinstance(job, dict)), None)
        if payload is None or not self.owns(to_record(payload, project), project):
            raise self.not_found(project, job_id)
        path, owner = output_path(payload), number(payload.get("user_id"))
        node = text_field(payload, "batch_host") or text_field(payload, "nodes") or "its node"
        if path is None or owner is None:
            raise malformed(PROVIDER, f"job {job_id!r} has no absolute output path or no user_id")
        read = functools.partial(read_output_file, Path(path), owner, query)
        try:
            selection, size = await anyio.to_thread.run_sync(read)
        except OSError as error:
            raise output_unreadable(job_id, path, node, error.strerror or error) from None
        return JobLogs(
            project_id=project,
            job_id=job_id,
            source=f"{path} (the job's StdOut, written on {node})",
            lines=selection.lines,
            truncated=selection.truncated,
            log_bytes=size,
        )

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        # Slurm answers every job it holds at once: the page is cut here, after the cursor.
        parts = cursor_position(cursor, _CURSOR)
        after = (int(parts[0]), int(parts[1])) if parts else None
        await self._resolve_version()
        body = await self.http.request_json("GET", f"/slurm/{self.api_version}/jobs", what="job listing")
        records = [
            (job, to_record(job, project))
            for job in listed_jobs(body)
            if isinstance(job, dict) and in_scope(job, self.scope, project)
        ]
        positioned = [
            ((number(job.get("submit_time")) or 0, int(record["id"])), record) for job, record in records
        ]
        return cut_page(positioned, status, size, after)

    async def _resolve_version(self) -> None:
        """The API version: configured, else the newest v0.0.38+ that `/openapi/v3` lists (asked once)."""
        if self.api_version is not None:
            return
        async with self._version_lock:
            if self.api_version is None:
                document = await self.http.request_json("GET", "/openapi/v3", what="OpenAPI description")
                self.api_version = newest_version(document, self.http.base_url)


def create(settings: BackendSettings) -> Backend:
    """The backend for one `[backends.NAME]` table of kind `slurm` (raises BackendConfigError if unusable)."""
    return SlurmBackend(settings)
