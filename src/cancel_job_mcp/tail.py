"""`cancel-job-mcp logs`: a job's last lines, and with --follow the new ones as they come, until the job
is terminal (or Ctrl-C), through the same get_job_logs every client uses."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from .backends.logs import MAX_MAX_BYTES, MAX_TAIL_LINES, JobLogs
from .record import is_terminal
from .service import JobService

FOLLOW_SECONDS = 0.5  # between two reads while following
ANCHOR_LINES = 20  # the last lines printed, looked for in the next read to know where new ones start


async def print_logs(
    service: JobService,
    project_reference: str,
    job_id: str,
    tail: int,
    contains: str | None,
    follow: bool,
    emit: Callable[[str], None],
) -> JobLogs:
    """Print the last `tail` lines; with `follow`, then every new line until the job is terminal.
    Returns the last answer read."""
    answer = await service.get_job_logs(project_reference, job_id, tail, MAX_MAX_BYTES, contains)
    for line in answer["lines"]:
        emit(line)
    printed = answer["lines"][-ANCHOR_LINES:]
    while follow:
        finished = is_terminal(await service.get_job(project_reference, job_id))
        answer = await service.get_job_logs(
            project_reference, job_id, MAX_TAIL_LINES, MAX_MAX_BYTES, contains
        )
        fresh = new_lines(printed, answer["lines"])
        for line in fresh:
            emit(line)
        printed = (printed + fresh)[-ANCHOR_LINES:]
        if finished:  # read once more after the job ended, so its last lines are printed
            break
        await anyio.sleep(FOLLOW_SECONDS)
    return answer


def new_lines(printed: list[str], latest: list[str]) -> list[str]:
    """The lines of `latest` after the last place that ends with the lines already `printed` (all of
    `latest` when it holds none of them: the log moved on by more than one read holds)."""
    for anchor in range(min(len(printed), len(latest)), 0, -1):
        tail = printed[-anchor:]
        for end in range(len(latest), anchor - 1, -1):
            if latest[end - anchor : end] == tail:
                return latest[end:]
    return latest
