"""`HostedBackend`: get_job, cancel_job and list_jobs written once for every provider reached over HTTP.

A provider module subclasses it with its `SPEC` and what is its own: the job's path (checking the
provider's id formats), `to_record` (its answer as our record), `fetch_page` (one page of its
listing), and, where its API differs, the hooks below: how the client is made (`client_spec`,
`client_headers`), how an error answer reads (`answer_error`), whose a job is (`owns`), how a cancel
is sent and answered (`read_before_cancel`, `send_cancel`, `cancel_body`, `canceled_record`,
`refused`), and how messages name where a job is (`not_found`, `cancel_where`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import (
    NOTHING_CANCELED,
    ErrorCode,
    ProviderError,
    ToolError,
    not_cancellable,
    not_found,
    not_supported,
)
from ...errors.providers import READ_THE_RECORD
from ...record import TERMINAL_STATUSES, JobRecord, JobStatus
from ..base import BackendSettings, JobPage, StopHooks
from ..logs import JobLogs, LogQuery
from ..registry import ProviderSpec
from .checks import checked_cursor, checked_limit, checked_status
from .flows import ProviderPage, cancel_with_followup, filtered_page, refused_by_state

if TYPE_CHECKING:
    from .client import Answer, HttpClient


class HostedBackend(StopHooks, ABC):
    spec: ClassVar[ProviderSpec]
    # The JSON body of a cancel request (None: no body).
    cancel_body: ClassVar[Any] = None
    # For a provider that cancels by id alone: cancel_job reads the job first, so that nothing is sent
    # for a job of another project (not_found) or one that has finished.
    read_before_cancel: ClassVar[bool] = False
    # For a provider that documents no log endpoint: what it offers instead, in a sentence.
    logs_instead: ClassVar[str] = READ_THE_RECORD

    def __init__(self, settings: BackendSettings) -> None:
        # Imported here: httpx is the costliest import of the server, and only a backend in use needs it.
        from .client import HttpClient

        self.name = settings.name
        self.kind = self.spec.kind
        self.http: HttpClient = HttpClient(
            settings,
            self.client_spec(settings),
            headers=self.client_headers(settings),
            read_error=self.answer_error,
        )

    @property
    def provider(self) -> str:
        return self.spec.display_name

    # --- what each provider defines -----------------------------------------------------------------

    @abstractmethod
    def job_path(self, project: str, job_id: str) -> str:
        """The job's path, its segments checked against the provider's formats and percent-encoded."""

    @abstractmethod
    def to_record(self, body: Any, project: str) -> JobRecord:
        """The provider's answer about one job as a record (an upstream_error if it cannot be read)."""

    @abstractmethod
    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        """One page of the provider's listing (records, next cursor or None); `status` may be ignored."""

    # --- hooks with a default -------------------------------------------------------------------------

    def client_spec(self, settings: BackendSettings) -> ProviderSpec:
        """The spec the HTTP client is made from (adapted where settings choose the address or auth)."""
        return self.spec

    def client_headers(self, settings: BackendSettings) -> Mapping[str, str]:
        """Headers for every request besides the auth header."""
        return {}

    def answer_error(self, answer: Answer) -> ProviderError | None:
        """The error for a non-2xx answer where the provider says more than its status (None: the
        common table, HttpClient.error_for, reads it)."""
        return None

    def owns(self, record: JobRecord, project: str) -> bool:
        """True when the job belongs to `project`; only needed where the provider's paths do not say."""
        return True

    def refused(self, error: ProviderError) -> bool:
        """True when a failed cancel means "not in a state to cancel" (then the job is read to say which)."""
        return refused_by_state(error)

    def canceled_record(self, body: Any, project: str) -> JobRecord:
        """The record in the answer to a cancel request."""
        return self.to_record(body, project)

    async def send_cancel(self, project: str, job_id: str, current: JobRecord | None) -> JobRecord:
        """Ask the provider to cancel the job (`POST {job}/cancel`); the record its answer gives.
        `current` is the job as cancel_job read it first (with `read_before_cancel`), else None."""
        path = f"{self.job_path(project, job_id)}/cancel"
        body = await self._request("POST", path, project, job_id, NOTHING_CANCELED, json=self.cancel_body)
        return self.canceled_record(body, project)

    def cancel_where(self, project: str) -> str:
        """Where a job is, as a refusal to cancel a finished one says it ("on Veryfront")."""
        return f"on {self.provider}"

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return not_found(job_id, f"in project {project!r} on {self.provider}", consequence)

    # --- the tools --------------------------------------------------------------------------------------

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        return await self.read_job(project, job_id)

    async def read_job(self, project: str, job_id: str, consequence: str = "") -> JobRecord:
        """The job's record; a job the provider does not know, or of another project, is not_found."""
        body = await self._request("GET", self.job_path(project, job_id), project, job_id, consequence)
        record = self.to_record(body, project)
        if not self.owns(record, project):
            raise self.not_found(project, job_id, consequence)
        return record

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        current = None
        if self.read_before_cancel:
            current = await self.read_job(project, job_id, NOTHING_CANCELED)
            if current["status"] == JobStatus.CANCELED:
                return current  # canceling a canceled job answers its record, as the tool promises
            if current["status"] in TERMINAL_STATUSES:
                raise not_cancellable(current, self.cancel_where(project))
        return await cancel_with_followup(
            self.provider,
            self.cancel_where(project),
            job_id,
            lambda: self.send_cancel(project, job_id, current),
            lambda: self.get_job(project, job_id),
            refused=self.refused,
        )

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        wanted = checked_status(status)
        size = checked_limit(limit, self.spec.page_size)

        def keep(record: JobRecord) -> bool:
            return self.owns(record, project) and (wanted is None or record["status"] == wanted)

        async def fetch(page_cursor: str | None) -> ProviderPage:
            return await self.fetch_page(project, wanted, size, page_cursor)

        return await filtered_page(fetch, keep, checked_cursor(cursor))

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        raise not_supported(self.provider, "job logs through its API", self.logs_instead)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        project: str,
        job_id: str,
        consequence: str = "",
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A request about one job; the provider's not_found is the backend's own (`not_found`)."""
        try:
            return await self.http.request_json(
                method, path, params=params, json=json, what=f"job {job_id!r}"
            )
        except ProviderError as error:
            if error.code == ErrorCode.NOT_FOUND:
                raise self.not_found(project, job_id, consequence) from None
            raise
