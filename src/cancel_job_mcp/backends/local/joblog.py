"""Where a local job's output and its supervisor's log go (files only their owner reads), and the job's
output file, kept under its cap as it is written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("cancel_job_mcp.supervisor")


def log_path(home: Path, job_id: str) -> Path:
    return home / "logs" / f"{job_id}.log"


def supervisor_log_path(home: Path, job_id: str) -> Path:
    return home / "logs" / f"{job_id}.supervisor.log"


def open_private(path: Path, flags: int) -> int:
    """A file only its owner can read (job output may hold secrets)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o600)


class CappedLog:
    """The job's output file: appended to, and cut to its newest half when it would pass `limit` bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size
        self._failed = False

    def write(self, data: bytes) -> None:
        try:
            if self._size + len(data) > self.limit:
                self._keep_tail(data)
            else:
                os.write(self._fd, data)
                self._size += len(data)
        except OSError as error:  # a full disk must not stop the supervisor: the output is dropped
            if not self._failed:
                log.warning("cannot write the job's output to %s: %s", self.path, error)
            self._failed = True

    def _keep_tail(self, data: bytes) -> None:
        keep = self.limit // 2
        with self.path.open("rb") as current:
            current.seek(max(0, self._size - keep))
            tail = (current.read() + data)[-keep:]
        replacement = self.path.with_suffix(".log.tmp")
        fd = open_private(replacement, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, tail)
        finally:
            os.close(fd)
        os.replace(replacement, self.path)
        os.close(self._fd)
        self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = len(tail)

    def close(self) -> None:
        os.close(self._fd)
