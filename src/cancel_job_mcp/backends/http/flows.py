"""The flows hosted backends share: a cancel with its 409 follow-up, a filtered listing, and a page cut
from a listing the provider answers whole."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from ...errors import ErrorCode, ProviderError, not_cancellable, refused_cursor
from ...errors.providers import cancel_refused_while_active
from ...record import TERMINAL_STATUSES, JobRecord, JobStatus
from ..base import JobPage

ProviderPage = tuple[list[JobRecord], str | None]
Position = TypeVar("Position", tuple[int, int], tuple[int, str])


def refused_by_state(error: ProviderError) -> bool:
    """The usual way a provider refuses to cancel a job that has finished: HTTP 409."""
    return error.status == 409


async def cancel_with_followup(
    provider: str,
    where: str,
    job_id: str,
    post: Callable[[], Awaitable[JobRecord]],
    get: Callable[[], Awaitable[JobRecord]],
    *,
    refused: Callable[[ProviderError], bool] = refused_by_state,
) -> JobRecord:
    """The cancel flow every hosted backend shares (waiting for the job to stop is the service's job);
    `where` says where the job is, as `not_cancellable` says it ("on Veryfront").

    1. `post()` sends the cancel. If the provider refuses it in a way `refused` recognises (a 409 by
       default), `get()` reads the job: already canceled gives that record (canceling twice is not an
       error), any other terminal status gives `not_cancellable` naming it, and an active job re-raises
       the provider's refusal.
    2. A 2xx whose record is completed or failed means the job had already finished: `not_cancellable`.
    3. Otherwise the record as the provider returned it (it may still be active: the service polls).
    """
    try:
        record = await post()
    except ProviderError as error:
        if not refused(error):
            raise
        current = await get()
        if current["status"] == JobStatus.CANCELED:
            return current
        if current["status"] in TERMINAL_STATUSES:
            raise not_cancellable(current, where) from None
        if error.code == ErrorCode.NOT_CANCELLABLE:
            raise cancel_refused_while_active(provider, job_id, error.status, current["status"]) from None
        raise
    if record["status"] in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise not_cancellable(record, where)
    return record


async def filtered_page(
    fetch: Callable[[str | None], Awaitable[ProviderPage]],
    keep: Callable[[JobRecord], bool],
    cursor: str | None,
    max_pages: int = 5,
) -> JobPage:
    """One page of a listing the backend filters itself, consuming whole provider pages.

    `fetch(cursor)` returns one provider page and the cursor of the next (None at the end). Pages whose
    jobs are all filtered out are skipped, up to `max_pages` provider requests; the page returned may
    hold fewer jobs than asked for (or none) while `next_cursor` is not None: only None means the end.
    """
    pages = 0
    while True:
        jobs, next_cursor = await fetch(cursor)
        pages += 1
        kept = [job for job in jobs if keep(job)]
        if kept or next_cursor is None or pages >= max_pages:
            return JobPage(jobs=kept, next_cursor=next_cursor)
        cursor = next_cursor


def cut_page(
    positioned: Iterable[tuple[Position, JobRecord]],
    status: JobStatus | None,
    size: int,
    after: Position | None,
) -> ProviderPage:
    """One page of a listing the provider answers whole (Ray, Slurm), cut here: the greatest position
    first, only `status` when given, only after the position `after`. The next cursor is "A:B", the
    page's last position, which `cursor_position` reads back."""
    kept = sorted(
        (
            (position, record)
            for position, record in positioned
            if (status is None or record["status"] == status) and (after is None or position < after)
        ),
        key=lambda pair: pair[0],
        reverse=True,
    )
    page = kept[:size]
    next_cursor = f"{page[-1][0][0]}:{page[-1][0][1]}" if len(kept) > size else None
    return [record for _, record in page], next_cursor


def cursor_position(cursor: str | None, pattern: re.Pattern[str]) -> tuple[str, str] | None:
    """The two parts of a cursor `cut_page` made, as the backend's `pattern` (two groups) checks them."""
    if cursor is None:
        return None
    match = pattern.fullmatch(cursor)
    if match is None:
        raise refused_cursor()
    return match.group(1), match.group(2)
