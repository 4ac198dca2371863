"""Reading a job's output within bounds: what get_job_logs asks for and answers, written once.

A backend finds the job's output (a file, a provider's answer) and hands its lines, newest first, to
a `Selection`, which redacts each line, keeps those that contain the wanted text, and stops at the
line count or the byte budget. Redaction comes before the filter, so `contains` cannot be used to
probe for a secret piece by piece. Invalid UTF-8 is replaced, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypedDict

from ..schemas import load_schema

# The bounds are published in the tool's input schema, and read from it.
_BOUNDS = load_schema("get_job_logs.input")["properties"]
DEFAULT_TAIL_LINES: int = _BOUNDS["tail_lines"]["default"]
MAX_TAIL_LINES: int = _BOUNDS["tail_lines"]["maximum"]
DEFAULT_MAX_BYTES: int = _BOUNDS["max_bytes"]["default"]
MAX_MAX_BYTES: int = _BOUNDS["max_bytes"]["maximum"]
# A file is read backwards in blocks of this size; at most SCAN_LIMIT bytes of it are looked at (a
# `contains` that matches little would otherwise read a huge log to its start).
BLOCK_BYTES = 64 * 1024
SCAN_LIMIT = 32 * 1024 * 1024


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True)
class LogQuery:
    """The last `tail_lines` lines, at most `max_bytes` bytes of them (UTF-8, one newline each), only
    those containing `contains` (case-insensitive); `redact` removes the server's credentials."""

    tail_lines: int = DEFAULT_TAIL_LINES
    max_bytes: int = DEFAULT_MAX_BYTES
    contains: str | None = None
    redact: Callable[[str], str] = field(default=_unchanged, compare=False)


class JobLogs(TypedDict):
    """get_job_logs' answer: `source` says where the lines came from; `log_bytes` is the size of the
    whole log when known; `truncated` is true when a byte bound left out lines (or parts of one) that
    the query asked for."""

    project_id: str
    job_id: str
    source: str
    lines: list[str]
    truncated: bool
    log_bytes: int | None


class Selection:
    """The lines a query keeps, offered newest first."""

    def __init__(self, query: LogQuery) -> None:
        self.query = query
        self._wanted = query.contains.casefold() if query.contains else None
        self._newest_first: list[str] = []
        self._used = 0
        self.truncated = False
        self.done = False

    def offer(self, raw: bytes | str, cut: bool = False) -> bool:
        """Consider the next older line (`cut`: only its end was read); False once no more are wanted."""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = self.query.redact(text.removesuffix("\r"))
        if self._wanted is not None and self._wanted not in text.casefold():
            return True
        size = len(text.encode("utf-8", "replace")) + 1
        room = self.query.max_bytes - self._used
        if size > room:
            self.truncated = True
            self.done = True
            if not self._newest_first:  # the newest line alone is too long: its end
                end = text.encode("utf-8", "replace")[-(room - 1) :] if room > 1 else b""
                self._newest_first.append(end.decode("utf-8", "ignore"))
            return False
        self.truncated = self.truncated or cut
        self._newest_first.append(text)
        self._used += size
        self.done = len(self._newest_first) >= self.query.tail_lines
        return not self.done

    @property
    def lines(self) -> list[str]:
        return self._newest_first[::-1]

    def answer(self, project_id: str, job_id: str, source: str, log_bytes: int | None) -> JobLogs:
        """get_job_logs' answer holding this selection."""
        return JobLogs(
            project_id=project_id,
            job_id=job_id,
            source=source,
            lines=self.lines,
            truncated=self.truncated,
            log_bytes=log_bytes,
        )


def select_text(text: str, query: LogQuery, cut: bool = False) -> Selection:
    """The selection from a whole log held as text; `cut`: the text lacks the log's beginning."""
    selection = Selection(query)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index in range(len(lines) - 1, -1, -1):
        if not selection.offer(lines[index], cut=cut and index == 0):
            break
    return selection


def select_file(fd: int, query: LogQuery, scan_limit: int = SCAN_LIMIT) -> tuple[Selection, int]:
    """The selection from an open file, read from its end; returns it and the file's size.

    Memory stays within a block, the longest line kept (`query.max_bytes`) and the answer, whatever
    the file's size; at most `scan_limit` bytes are read. A file that grows meanwhile is read as it
    was when this started.
    """
    size = os.fstat(fd).st_size
    selection = Selection(query)
    for line, cut in _lines_backwards(fd, size, query.max_bytes, scan_limit):
        if not selection.offer(line, cut):
            return selection, size
    if size > scan_limit and not selection.done:
        selection.truncated = True  # the start of the file was not looked at
    return selection, size


def _lines_backwards(fd: int, size: int, longest: int, scan_limit: int) -> Iterator[tuple[bytes, bool]]:
    """(line, cut) from the last line back. A line longer than `longest` is given at once as its last
    `longest` bytes (`cut`), and the rest of it is skipped as it is read, never held."""
    position = size
    stop = max(0, size - scan_limit)
    pending = b""  # the end of the line whose start is in the blocks not read yet
    skipping = False  # `pending` was given already, cut: its front is dropped as it is read
    at_end = True  # no newline seen yet: an empty `pending` is the nothing after the file's last newline
    while position > stop:
        count = min(BLOCK_BYTES, position - stop)
        position -= count
        block = os.pread(fd, count, position)
        if len(block) < count:  # the file shrank meanwhile (a capped log was cut): stop here
            return
        parts = block.split(b"\n")
        if not skipping:
            pending = parts[-1] + pending
        if len(parts) > 1:
            if not skipping and (pending or not at_end):
                yield pending, False
            for line in reversed(parts[1:-1]):
                yield line, False
            pending, skipping, at_end = parts[0], False, False
        if not skipping and len(pending) > longest:
            yield pending[-longest:], True
            pending, skipping, at_end = b"", True, False
    if position == 0 and not skipping and (pending or not at_end):
        yield pending, False
