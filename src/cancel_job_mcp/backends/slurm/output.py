"""A Slurm job's output file: where its StdOut pattern points, and reading it safely."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..logs import LogQuery, Selection, select_file
from .mapping import number, text_field

_FILENAME_PATTERN = re.compile(r"%(%|[0-9]*[jAaxuN])")


def output_path(payload: dict[str, Any]) -> str | None:
    """The job's StdOut path, its filename pattern expanded (sbatch's %j, %A, %a, %x, %u, %N, %%;
    unset means slurm-%j.out, or slurm-%A_%a.out for an array task, in the working directory); None
    if that does not give an absolute path."""
    pattern = text_field(payload, "standard_output")
    array_job, task = number(payload.get("array_job_id")), number(payload.get("array_task_id"))
    if not pattern:
        pattern = "slurm-%A_%a.out" if array_job and task is not None else "slurm-%j.out"
    if not pattern.startswith("/"):
        directory = text_field(payload, "current_working_directory")
        if directory is None or not directory.startswith("/"):
            return None
        pattern = f"{directory}/{pattern}"
    values = {
        "j": str(number(payload.get("job_id"))),
        "A": str(array_job or number(payload.get("job_id"))),
        "a": str(task),
        "x": text_field(payload, "name") or "",
        "u": text_field(payload, "user_name") or "",
        "N": text_field(payload, "batch_host") or "",
    }

    def expand(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        width, letter = spec[:-1], spec[-1]
        value = values[letter]
        return value.zfill(int(width)) if width and value.isdigit() else value

    path = _FILENAME_PATTERN.sub(expand, pattern)
    return path if path.startswith("/") else None


def read_output_file(path: Path, owner: int, query: LogQuery) -> tuple[Selection, int]:
    """A job's output file as `query` asks: a regular file owned by `owner`, not through a symlink, opened
    without waiting (a FIFO cannot hang us); an OSError says why it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_uid != owner:
            raise OSError(errno.EPERM, "not a regular file owned by the job's user")
        return select_file(fd, query)
    finally:
        os.close(fd)
