"""What a local stop did, for the cancel's answer: which signals the supervisor sent, and when.

The supervisor notes each signal of a stop in `logs/<job>.stop`, one JSON line each (SIGTERM starts
the file afresh, so it holds the latest stop only); a cancel's answer reads it back. It is written
beside the job's log rather than in the database so that a quick stop still costs one database write;
it is best effort on both sides, and a stop never waits for it or fails because of it.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

from ...stops import SIGKILL, SIGTERM, Signals, SignalSent

__all__ = ["SIGKILL", "SIGTERM", "note", "signals_sent", "stop_path"]
from .joblog import open_private

log = logging.getLogger(__name__)

_MOST_BYTES = 4096  # a few lines; a file grown beyond this was not written by a supervisor
_LATEST = 1e11  # seconds: a time or a grace period beyond this (year 5138) is not a supervisor's


def stop_path(home: Path, job_id: str) -> Path:
    return Path(_stop_file(home, job_id))


def _stop_file(home: Path, job_id: str) -> str:
    # A string: pathlib's joins cost as much as reading the note back, on every cancel's answer.
    return f"{os.fspath(home)}/logs/{job_id}.stop"


def note(home: Path, job_id: str, name: str, grace_seconds: float) -> None:
    """Record that the supervisor sent signal `name` now (SIGTERM starts a new stop); never raises."""
    flags = os.O_WRONLY | (os.O_TRUNC if name == SIGTERM else os.O_APPEND)
    line = json.dumps({"signal": name, "at": time.time(), "grace": grace_seconds})
    try:
        fd = open_private(stop_path(home, job_id), flags)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError as error:
        log.warning("could not note %s for the cancel's answer: %s", name, error)


def signals_sent(home: Path, job_id: str) -> Signals:
    """The signals of the job's latest stop, oldest first: none if nothing was noted (no process had
    to be signalled) or the note cannot be read."""
    sent = []
    grace_seconds: float | None = None
    for line in _read(_stop_file(home, job_id)).splitlines():
        try:
            item = json.loads(line)
            name, at, grace = str(item["signal"]), float(item["at"]), float(item["grace"])
        except (ValueError, KeyError, TypeError):
            continue
        if name in (SIGTERM, SIGKILL) and 0 <= at < _LATEST and 0 <= grace < _LATEST:
            sent.append(SignalSent(name, at))
            grace_seconds = grace
    return Signals(tuple(sent), grace_seconds)


def _read(path: str) -> str:
    """The note's text, read without waiting (O_NONBLOCK: a FIFO put in its place cannot hang a cancel)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, _MOST_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)
