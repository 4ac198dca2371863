"""cancel_jobs: find a project's active jobs that match a filter (at most `max`), and cancel each with
the same truthful stop as cancel_job, a few at a time.

The search asks the backend for one status at a time (every backend filters by status, most in the
provider's own listing), newest first, and stops as soon as it has `max` matches; it never reads more
than `MAX_SCANNED` jobs per status, so a filter that matches nothing in a huge project still ends soon.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from .audit import Attempt
from .backends.base import JobPage
from .errors import ToolError, internal_error
from .record import JobRecord, JobStatus
from .service import JobService

log = logging.getLogger(__name__)

# In the order a job goes through them: a job that starts between the two listings is seen in the first,
# where the other order would miss it in both.
ACTIVE = (JobStatus.SUBMITTED, JobStatus.WORKING)
PAGE_SIZE = 100  # the most a listing gives at once
MAX_SCANNED = 5_000  # jobs read per status at most, matching or not
AT_ONCE = 8  # cancels under way at once

# progress(jobs done, jobs in all, message)
Progress = Callable[[float, float, str], Awaitable[None]]


@dataclass(frozen=True)
class JobFilter:
    """Which active jobs of a project a bulk cancel takes: each given field must equal the record's."""

    statuses: tuple[JobStatus, ...] = ACTIVE
    name: str | None = None
    batch_id: str | None = None
    cron_job_id: str | None = None

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> JobFilter:
        status = arguments.get("status")
        return cls(
            statuses=(JobStatus(status),) if status else ACTIVE,
            name=arguments.get("name"),
            batch_id=arguments.get("batch_id"),
            cron_job_id=arguments.get("cron_job_id"),
        )

    def matches(self, record: JobRecord) -> bool:
        return (
            record["status"] in self.statuses
            and self.name in (None, record["name"])
            and self.batch_id in (None, record["batch_id"])
            and self.cron_job_id in (None, record["cron_job_id"])
        )

    @property
    def narrows(self) -> bool:
        """True when some listed jobs of the right status may not match."""
        return any(value is not None for value in (self.name, self.batch_id, self.cron_job_id))


@dataclass(frozen=True)
class Selection:
    jobs: list[JobRecord]  # newest first
    truncated: bool  # the search stopped before the end of the listing: more may match


async def find_jobs(service: JobService, project_reference: str, wanted: JobFilter, limit: int) -> Selection:
    """Up to `limit` matching jobs, newest first."""
    found: dict[str, JobRecord] = {}
    truncated = False
    for status in wanted.statuses:
        jobs, stopped_early = await _search(service, project_reference, status, wanted, limit)
        truncated |= stopped_early
        for record in jobs:
            found[record["id"]] = record  # a job seen as submitted, then as working: once, as last seen
    ordered = sorted(found.values(), key=lambda record: record["created_at"], reverse=True)
    return Selection(ordered[:limit], truncated or len(ordered) > limit)


async def _search(
    service: JobService, project_reference: str, status: JobStatus, wanted: JobFilter, limit: int
) -> tuple[list[JobRecord], bool]:
    """The first `limit` matches in the listing of one status, and whether jobs were left unread."""
    matches: list[JobRecord] = []
    scanned = 0
    cursor: str | None = None
    size = PAGE_SIZE if wanted.narrows else min(limit, PAGE_SIZE)
    while True:
        page: JobPage = await service.list_jobs(project_reference, status.value, size, cursor)
        for index, record in enumerate(page["jobs"]):
            if wanted.matches(record):
                matches.append(record)
                if len(matches) == limit:
                    left = index + 1 < len(page["jobs"]) or page["next_cursor"] is not None
                    return matches, left
        scanned += len(page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return matches, False
        if scanned >= MAX_SCANNED:
            return matches, True


async def cancel_each(
    service: JobService,
    project_reference: str,
    job_ids: Sequence[str],
    attempt: Attempt,
    progress: Progress,
) -> list[dict[str, Any]]:
    """Cancel every job, `AT_ONCE` at a time; one entry per job, in the order given."""
    entries: dict[str, dict[str, Any]] = {}
    limiter = anyio.CapacityLimiter(AT_ONCE)
    total = len(job_ids)

    async def cancel(job_id: str) -> None:
        async with limiter:
            entry = await _cancel_one(service, project_reference, job_id, attempt)
        entries[job_id] = entry
        outcome = entry["record"]["status"] if entry["record"] else entry["error"]["code"]
        await progress(len(entries), total, f"{len(entries)} of {total} done; job {job_id}: {outcome}")

    async with anyio.create_task_group() as group:
        for job_id in job_ids:
            group.start_soon(cancel, job_id)
    return [entries[job_id] for job_id in job_ids]


async def _cancel_one(
    service: JobService, project_reference: str, job_id: str, attempt: Attempt
) -> dict[str, Any]:
    try:
        stop = await service.cancel_job(project_reference, job_id, attempt)
    except ToolError as error:
        return failed(job_id, error)
    except Exception:
        log.exception("cancel_jobs: the cancel of job %s failed unexpectedly", job_id)
        return failed(job_id, internal_error())
    return {"job_id": job_id, "record": stop.record, "error": None}


def failed(job_id: str, error: ToolError) -> dict[str, Any]:
    return {"job_id": job_id, "record": None, "error": {"code": error.code.value, "message": error.message}}


def answer(dry_run: bool, truncated: bool, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"dry_run": dry_run, "matched": len(entries), "truncated": truncated, "jobs": entries}


def listed(selection: Selection) -> list[dict[str, Any]]:
    """The dry run's entries: each job as listed, untouched."""
    return [{"job_id": record["id"], "record": record, "error": None} for record in selection.jobs]
