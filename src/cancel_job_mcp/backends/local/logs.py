"""A local job's output: its log file (joblog.log_path), read from its end within bounds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ...errors import log_unreadable
from ...record import JobRecord
from ..logs import JobLogs, LogQuery, Selection, select_file
from .joblog import log_path


def read_log(home: Path, record: JobRecord, query: LogQuery) -> JobLogs:
    """The job's log as `query` asks; a job that has not started yet has no log (no lines)."""
    path = log_path(home, record["id"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        source = f"{path} (not written yet: the job has printed nothing)"
        return Selection(query).answer(record["project_id"], record["id"], source, None)
    except OSError as error:
        raise log_unreadable(record["id"], path, error) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # O_NONBLOCK: a FIFO put in its place cannot hang us
            raise log_unreadable(record["id"], path, None)
        selection, size = select_file(fd, query)
    except OSError as error:
        raise log_unreadable(record["id"], path, error) from None
    finally:
        os.close(fd)
    return selection.answer(record["project_id"], record["id"], str(path), size)
