"""The one small async interface every backend implements, and the settings a backend is made from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import anyio

from ..backoff import Backoff
from ..defaults import DEFAULT_GRACE_SECONDS, DEFAULT_LOG_LIMIT
from ..errors import ToolError, local_only
from ..record import JobRecord, is_terminal

if TYPE_CHECKING:
    from ..stops import Escalation, Signals
    from .logs import JobLogs, LogQuery


# progress(seconds waited so far, wait budget, message): a notification to the caller of a tool.
Progress = Callable[[float, float, str], Awaitable[None]]


# The pauses between two reads of a job being stopped, unless its backend knows better.
DEFAULT_STOP_POLLS = Backoff(first=0.1, cap=2.0)


@dataclass(frozen=True)
class StopPolling:
    """How cancel_job polls a canceled job until it has stopped (`StopHooks.stop_polling`): one
    that records stops itself says when a record shows one, and one whose reads are cheap may be
    polled more often."""

    has_stopped: Callable[[JobRecord], bool] = is_terminal
    pauses: Backoff = DEFAULT_STOP_POLLS


class JobPage(TypedDict):
    """One page of a job listing, newest first. `next_cursor` is the backend's own cursor, or None."""

    jobs: list[JobRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class JobSpec:
    """A job to start (`submit`): its command, and how the runtime runs and stops it."""

    command: tuple[str, ...]
    name: str | None = None
    cwd: Path | None = None
    timeout_seconds: float = 0
    retries: int = 0
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    log_limit: int = DEFAULT_LOG_LIMIT


class StopHooks:
    """How a cancel is carried out and watched until the job has stopped, and what is said of it
    afterwards; and the operations only a backend that runs jobs itself offers (local: submit, prune,
    a listing across projects). Every backend inherits these defaults and overrides what it can do."""

    name: str
    kind: str
    stop_polling: StopPolling = StopPolling()

    async def submit_job(self, project: str, spec: JobSpec) -> JobRecord:
        raise local_only(self.name, self.kind, "submit")

    async def prune_jobs(self, older_than: timedelta) -> list[str]:
        raise local_only(self.name, self.kind, "prune")

    async def list_every_project(self, status: str | None, limit: int, cursor: str | None) -> JobPage:
        raise local_only(self.name, self.kind, "a listing across projects")

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        raise NotImplementedError

    async def cancel_job_with_progress(
        self, project: str, job_id: str, progress: Progress | None
    ) -> JobRecord:
        """The cancel the service makes. A backend that waits for the stop itself (Temporal: a grace
        period, then a terminate) overrides it to send the caller's progress notifications."""
        return await self.cancel_job(project, job_id)

    async def wait_for_stop(self, project: str, job_id: str, seconds: float) -> None:
        """The pause between two polls of a stopping job; a backend that can tell when a stop may
        have been recorded ends it early."""
        await anyio.sleep(seconds)

    async def stop_signals(self, project: str, job_id: str) -> Signals | None:
        """The signals sent to stop the job, where the backend sends them itself (local)."""
        return None

    def stop_escalation(self, record: JobRecord) -> Escalation | None:
        """How a stop was forced once its grace was over, where the backend does that (Temporal)."""
        return None


class Backend(Protocol):
    """A place jobs run. `project` is the project reference with any `NAME:` prefix removed.

    Methods raise `ToolError` for every failure the caller can act on.
    """

    name: str
    kind: str

    stop_polling: StopPolling

    async def cancel_job(self, project: str, job_id: str) -> JobRecord: ...

    async def cancel_job_with_progress(
        self, project: str, job_id: str, progress: Progress | None
    ) -> JobRecord: ...

    async def wait_for_stop(self, project: str, job_id: str, seconds: float) -> None: ...

    async def stop_signals(self, project: str, job_id: str) -> Signals | None: ...

    def stop_escalation(self, record: JobRecord) -> Escalation | None: ...

    async def submit_job(self, project: str, spec: JobSpec) -> JobRecord:
        """Record a job and start it; only a backend that runs jobs itself offers it."""
        ...

    async def prune_jobs(self, older_than: timedelta) -> list[str]:
        """Remove the jobs stopped longer than `older_than` ago; the ids removed."""
        ...

    async def list_every_project(self, status: str | None, limit: int, cursor: str | None) -> JobPage: ...

    async def get_job(self, project: str, job_id: str) -> JobRecord: ...

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        """Newest first; `status` filters (by the backend itself where the provider cannot)."""
        ...

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        """The job's output as `query` asks (backends/logs.py reads it within bounds); a backend whose
        provider offers no logs raises `not_supported` saying what it offers instead."""
        ...

    async def aclose(self) -> None: ...

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        """The error for a job this backend does not have in `project` (`consequence` says what was
        not done); a caller whose grant excludes the project gets it too, so it learns nothing more."""
        ...


@dataclass(frozen=True)
class BackendSettings:
    """One `[backends.NAME]` table of the configuration file (or the defaults for a kind).

    `token_env` names the environment variable that holds the secret; the secret itself is read
    from the environment by the backend when it is created and never stored here.
    """

    name: str
    kind: str
    base_url: str | None = None
    token_env: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    projects: tuple[str, ...] = ()
    # How long cancel_job waits for a canceled job to reach a terminal status (0 = do not wait).
    settle_timeout: float = 10.0
    # Kind-specific keys of the table, e.g. `home` for local or `account` for talonic.
    options: dict[str, Any] = field(default_factory=dict)
