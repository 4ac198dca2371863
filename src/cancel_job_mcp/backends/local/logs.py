"""A local job's output: its log file (joblog.log_path), read from its end within bounds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ...errors import ErrorCode, ToolError
from ...record import JobRecord
from ..logs import JobLogs, LogQuery, select_file
from .joblog import log_path


def read_log(home: Path, record: JobRecord, query: LogQuery) -> JobLogs:
    """The job's log as `query` asks; a job that has not started yet has no log (no lines)."""
    path = log_path(home, record["id"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return _answer(record, f"{path} (not written yet: the job has printed nothing)", [], False, None)
    except OSError as error:
        raise _unreadable(record, path, error.strerror or str(error)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # O_NONBLOCK: a FIFO put in its place cannot hang us
            raise _unreadable(record, path, "it is not a regular file")
        selection, size = select_file(fd, query)
    except OSError as error:
        raise _unreadable(record, path, error.strerror or str(error)) from None
    finally:
        os.close(fd)
    return _answer(record, str(path), selection.lines, selection.truncated, size)


def _unreadable(record: JobRecord, path: Path, problem: str) -> ToolError:
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The log of job {record['id']!r} ({path}) cannot be read: {problem}. Nothing was changed.",
    )


def _answer(record: JobRecord, source: str, lines: list[str], truncated: bool, size: int | None) -> JobLogs:
    return JobLogs(
        project_id=record["project_id"],
        job_id=record["id"],
        source=source,
        lines=lines,
        truncated=truncated,
        log_bytes=size,
    )
