"""What the tools and the CLI do, once: check identifiers, route, call the backend, and for a
cancel, wait until the job has really stopped."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import anyio

from .audit import OK, Attempt, AuditLog
from .backends import registry
from .backends.base import BackendSettings, JobPage, JobSpec, Progress
from .backends.logs import DEFAULT_MAX_BYTES, DEFAULT_TAIL_LINES, JobLogs, LogQuery
from .config import HTTP_TOKENS_ENV
from .cursors import CursorCodec
from .errors import NOTHING_CANCELED, ErrorCode, ToolError, refused_cursor
from .grants import current_grant
from .http_values import named_token
from .identifiers import check_identifier, is_identifier
from .record import JobRecord
from .routing import Route, Router
from .stops import Stop

log = logging.getLogger(__name__)

# Kept from the call's own deadline (the server's call timeout) to answer with the latest record.
ANSWER_RESERVE_SECONDS = 0.5
# Jobs read at a time by a listing across projects.
EVERY_PROJECT_PAGE = 100


@dataclass(frozen=True)
class Watch:
    """How a wait for a job to stop ended: the latest record, whether the backend says the job has
    stopped, the seconds waited, and the read that failed, if one did."""

    record: JobRecord
    stopped: bool
    seconds: float
    statuses: tuple[tuple[float, str], ...]  # (seconds into the wait, status) each time it changed
    error: ToolError | None = None


class JobService:
    def __init__(self, router: Router, cursors: CursorCodec, audit: AuditLog) -> None:
        self.router = router
        self.cursors = cursors
        self.audit = audit
        self._redact: Callable[[str], str] | None = None

    async def cancel_job(
        self, project_reference: str, job_id: str, attempt: Attempt, progress: Progress | None = None
    ) -> Stop:
        """Cancel, then poll until the job is terminal or the backend's wait budget runs out; the
        attempt and its outcome go to the audit trail (the row first: no row, no cancel).

        A provider that accepts a stop request may still report the job running (Ray answers
        "stopped: true" for a RUNNING job), so the record returned is the latest one read, with what
        was seen and done meanwhile (stops.py).
        """
        row = await self._begin(attempt, project_reference, job_id)
        outcome: str = ErrorCode.INTERNAL_ERROR
        status = None
        try:
            route = self._route(project_reference, job_id, NOTHING_CANCELED)
            record = await route.backend.cancel_job_with_progress(route.project, job_id, progress)
            stop = await self._settle(route, record, progress)
            outcome, status = OK, stop.record["status"]
            return stop
        except ToolError as error:
            outcome = error.code
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "interrupted"  # the caller gave up, or the call's deadline passed
            raise
        finally:
            with anyio.CancelScope(shield=True):  # the row is completed even as the call is cancelled
                await self.audit.finish(row, outcome, status)

    async def refuse_cancel(
        self, project_reference: str, job_id: str, attempt: Attempt, error: ToolError
    ) -> None:
        """Record a cancel that was not made (a person declined it); `error` says why."""
        row = await self._begin(attempt, project_reference, job_id)
        await self.audit.finish(row, error.code, None)

    async def _begin(self, attempt: Attempt, project_reference: str, job_id: str) -> int:
        """The attempt's audit row. Values that break the identifier rules are left out: they could be
        anything (a model may paste a secret where a job id belongs)."""
        project = project_reference if is_identifier("project_reference", project_reference) else None
        backend = None
        if project is not None:
            with suppress(ToolError):  # an unknown project: the attempt is recorded with no backend
                backend = self.router.settings_for(project)[0].name
        job = job_id if is_identifier("job_id", job_id) else None
        return await self.audit.begin(attempt, project, job, backend)

    async def wait_job(
        self, project_reference: str, job_id: str, seconds: float, progress: Progress | None = None
    ) -> Watch:
        """Wait up to `seconds` (and within the call's deadline) for the job to be terminal; never
        changes it. A cancel still stopping counts as terminal only once the backend says it stopped."""
        route = self._route(project_reference, job_id)
        record = await route.backend.get_job(route.project, job_id)
        message = f"Waiting for job {job_id} to finish."
        watch = await self._watch(route, record, seconds, progress, message)
        if watch.error is not None:
            raise watch.error
        return watch

    async def get_job(self, project_reference: str, job_id: str) -> JobRecord:
        route = self._route(project_reference, job_id)
        return await route.backend.get_job(route.project, job_id)

    async def get_job_logs(
        self,
        project_reference: str,
        job_id: str,
        tail_lines: int = DEFAULT_TAIL_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        contains: str | None = None,
    ) -> JobLogs:
        """The job's last lines, within the bounds given, without any credential this server holds."""
        route = self._route(project_reference, job_id)
        query = LogQuery(tail_lines, max_bytes, contains or None, self._redactor())
        return await route.backend.get_job_logs(route.project, job_id, query)

    def _redactor(self) -> Callable[[str], str]:
        """Hides every configured credential (protected once, on the first read of a log), and any the
        process protected since (an HTTP token file's, a backend's)."""
        if self._redact is None:
            from .backends.http.credentials import protected, without_protected

            for secret in _configured_secrets(self.router.backends, os.environ):
                protected(secret)
            self._redact = without_protected
        return self._redact

    async def list_jobs(
        self, project_reference: str, status: str | None, limit: int, cursor: str | None = None
    ) -> JobPage:
        """A page of the project's jobs, newest first; `next_cursor` is opaque and tamper-evident."""
        check_identifier("project_reference", project_reference)
        issued = self.cursors.decode(cursor) if cursor is not None else None  # a forged one: refused first
        route = self.router.route(project_reference)
        if not current_grant().allows(route.settings.name, route.project):
            return JobPage(jobs=[], next_cursor=None)  # what a project with no jobs lists
        query = {"backend": route.settings.name, "project": route.project, "status": status}
        if issued is not None and issued[0] != query:
            raise refused_cursor()  # a real cursor, but of another listing
        native = issued[1] if issued is not None else None
        page = await route.backend.list_jobs(route.project, status, limit, native)
        next_cursor = page["next_cursor"]
        return JobPage(
            jobs=page["jobs"],
            next_cursor=self.cursors.encode(query, next_cursor) if next_cursor is not None else None,
        )

    async def submit_job(self, project_reference: str, spec: JobSpec) -> JobRecord:
        """Record a job and start it, on the backend the reference routes to (as the tools route it)."""
        check_identifier("project_reference", project_reference)
        route = self.router.route(project_reference)
        return await route.backend.submit_job(route.project, spec)

    async def list_every_project(self, status: str | None) -> list[JobRecord]:
        """Every job of every project the backends that run jobs themselves keep, newest first by backend."""
        records: list[JobRecord] = []
        for backend in self.router.local_backends():
            records += await every_page(partial(backend.list_every_project, status, EVERY_PROJECT_PAGE))
        return records

    async def prune_jobs(self, older_than: timedelta) -> list[str]:
        """Remove, from the backends that run jobs themselves, the jobs stopped more than `older_than` ago."""
        return [
            job for backend in self.router.local_backends() for job in await backend.prune_jobs(older_than)
        ]

    def _route(self, project_reference: str, job_id: str, consequence: str = "") -> Route:
        """The route to the job's backend. A project outside the caller's grant answers not_found, as
        a job the backend does not have would, before the backend is asked anything."""
        check_identifier("project_reference", project_reference)
        check_identifier("job_id", job_id)
        route = self.router.route(project_reference)
        if not current_grant().allows(route.settings.name, route.project):
            raise route.backend.not_found(route.project, job_id, consequence)
        return route

    async def _settle(self, route: Route, record: JobRecord, progress: Progress | None) -> Stop:
        """Poll the job with backoff until it has stopped, within settle_timeout and the call's deadline."""
        if route.backend.stop_polling.has_stopped(record):
            # The common repeat cancel: no deadline arithmetic (it walks the cancel scopes).
            watch = Watch(record, True, 0.0, ((0.0, record["status"]),))
        else:
            message = f"Cancel accepted; waiting for job {record['id']} to stop."
            watch = await self._watch(route, record, route.settings.settle_timeout, progress, message)
            if watch.error is not None:
                log.warning(
                    "could not read job %s while waiting for it to stop: %s", record["id"], watch.error
                )
        signals = await route.backend.stop_signals(route.project, record["id"])
        escalated = route.backend.stop_escalation(record)
        return Stop(watch.record, watch.stopped, watch.seconds, watch.statuses, signals, escalated)

    async def _watch(
        self, route: Route, record: JobRecord, seconds: float, progress: Progress | None, message: str
    ) -> Watch:
        """Re-read the job with backoff until the backend says it has stopped, for at most `seconds`
        and within the call's deadline. A failed read ends the watch with the latest record."""
        polling = route.backend.stop_polling
        pause = route.backend.wait_for_stop
        started = anyio.current_time()
        call_left = anyio.current_effective_deadline() - started - ANSWER_RESERVE_SECONDS
        budget = max(0.0, min(seconds, call_left))
        pauses = iter(polling.pauses)
        error: ToolError | None = None
        statuses = [(0.0, record["status"])]
        while not polling.has_stopped(record):
            waited = anyio.current_time() - started
            if waited >= budget:
                break
            if progress is not None:
                await progress(waited, budget, message)
            await pause(route.project, record["id"], min(next(pauses), budget - waited))
            try:
                record = await route.backend.get_job(route.project, record["id"])
            except ToolError as failed:
                error = failed
                break
            if record["status"] != statuses[-1][1]:
                statuses.append((anyio.current_time() - started, record["status"]))
        seconds = anyio.current_time() - started
        return Watch(record, polling.has_stopped(record), seconds, tuple(statuses), error)

    async def aclose(self) -> None:
        self.audit.close()
        await self.router.aclose()


async def every_page(page: Callable[[str | None], Awaitable[JobPage]]) -> list[JobRecord]:
    """The jobs of every page of a listing, `page(cursor)` reading one."""
    records: list[JobRecord] = []
    cursor = None
    while True:
        listing = await page(cursor)
        records += listing["jobs"]
        if (cursor := listing["next_cursor"]) is None:
            return records


def _configured_secrets(backends: Iterable[BackendSettings], environ: Mapping[str, str]) -> list[str]:
    """The credentials this server is configured with: each backend's token (from its `token_env`, or
    its kind's standard variable) and the HTTP bearer tokens of `$CANCEL_JOB_MCP_HTTP_TOKENS`."""
    variables = {settings.token_env or registry.ENTRIES[settings.kind].token_env for settings in backends}
    found = [environ.get(variable, "") for variable in variables if variable]
    entries = environ.get(HTTP_TOKENS_ENV, "").split(",")
    found += [named_token(entry.strip(), index).secret for index, entry in enumerate(entries, start=1)]
    return [secret.strip() for secret in found if secret.strip()]
