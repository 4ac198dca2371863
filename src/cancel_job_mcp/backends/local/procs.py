"""Processes of a local job: who they are, how to find them all, and signals that never reach a stranger.

A PID alone is not an identity: after a process exits its PID can be handed to an unrelated
process. We pair the PID with its start time (in clock ticks since boot, from /proc) and the boot
id, and only signal a process through a pidfd opened while those still match.

A job's processes are its supervisor's descendants (the supervisor is a child subreaper, so even a
daemon that called setsid() and lost its parent is re-parented to it), the members of the job's
process group, and every process whose environment carries the job's tag (what a successor uses
once the supervisor, and with it the ancestry, is gone). Linux only: /proc, pidfd and prctl.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_PROC = Path("/proc")
_GONE_STATES = frozenset({"Z", "X"})
_STOPPED_STATES = frozenset({"T", "t"})
_PR_SET_CHILD_SUBREAPER = 36
# Every process of a job inherits this variable, set to the job's id.
JOB_TAG_VARIABLE = "CANCEL_JOB_MCP_JOB"
_TAG_PREFIX = f"{JOB_TAG_VARIABLE}=".encode()


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start_ticks: int | None
    boot_id: str | None

    def encode(self) -> str:
        return f"{self.pid}:{self.start_ticks or ''}:{self.boot_id or ''}"

    @classmethod
    def decode(cls, text: str) -> ProcessIdentity:
        pid, start, boot = text.split(":", 2)
        return cls(int(pid), int(start) if start else None, boot or None)


@dataclass(frozen=True)
class ProcessInfo:
    """One live (not zombie) process, as /proc showed it."""

    pid: int
    pgrp: int
    start_ticks: int


def _read_stat(pid: int) -> tuple[str, ProcessInfo] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], ProcessInfo(pid, pgrp=int(fields[2]), start_ticks=int(fields[19]))


def boot_clock() -> float:
    """Seconds since boot, counting suspend: one clock for every process of this boot, which no step
    of the wall clock moves. Every duration of the runtime (grace, leases, bounds) is timed on it."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _live(pid: int) -> ProcessInfo | None:
    stat = _read_stat(pid)
    return stat[1] if stat is not None and stat[0] not in _GONE_STATES else None


@cache
def boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def identify(pid: int) -> ProcessIdentity:
    info = _live(pid)
    return ProcessIdentity(pid, info.start_ticks if info else None, boot_id())


def is_running(identity: ProcessIdentity) -> bool:
    """True while the very process named by `identity` runs (a zombie counts as gone). One /proc read."""
    if identity.boot_id is not None and identity.boot_id != boot_id():
        return False
    info = _live(identity.pid)
    return info is not None and info.start_ticks == identity.start_ticks


def is_stopped(identity: ProcessIdentity) -> bool:
    """True if the very process named by `identity` runs but is stopped (SIGSTOP) or traced."""
    if identity.boot_id is not None and identity.boot_id != boot_id():
        return False
    stat = _read_stat(identity.pid)
    return stat is not None and stat[0] in _STOPPED_STATES and stat[1].start_ticks == identity.start_ticks


def process_table() -> dict[int, ProcessInfo]:
    """Every live process, read from /proc in one pass."""
    table = {}
    for entry in os.listdir(_PROC):
        if entry.isdigit() and (info := _live(int(entry))) is not None:
            table[info.pid] = info
    return table


def children(parent: int) -> list[int]:
    """The children of `parent`, zombies included, from each of its threads' children list."""
    try:
        threads = os.listdir(_PROC / str(parent) / "task")
    except OSError:
        return []
    found: list[int] = []
    for thread in threads:
        try:
            found += map(int, (_PROC / str(parent) / "task" / thread / "children").read_text().split())
        except OSError:
            continue
    return found


def descendants(root: int) -> dict[int, ProcessInfo]:
    """The live descendants of `root`, found through each thread's children list: only the subtree is read."""
    found: dict[int, ProcessInfo] = {}
    pending = [root]
    while pending:
        for child in children(pending.pop()):
            if child not in found and (info := _live(child)) is not None:
                found[child] = info
                pending.append(child)
    return found


def _parent(pid: int) -> int | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def _descends_from(pid: int, root: int) -> bool:
    """True if `root` is an ancestor of `pid` now (read up the chain of parents)."""
    seen = 0
    while pid > 1 and seen < 4096:
        parent = _parent(pid)
        if parent == root:
            return True
        if parent is None:
            return False
        pid, seen = parent, seen + 1
    return False


def signal_descendant(info: ProcessInfo, root: int, signum: int) -> bool:
    """Signal the process `info` describes only if, checked through a pidfd just before, it is still
    that process and still a descendant of `root` (a subreaper's subtree holds only its job)."""
    return _signal_pinned(info, signum, lambda pid: _descends_from(pid, root))


def _signal_pinned(info: ProcessInfo, signum: int, is_member: Callable[[int], bool]) -> bool:
    """Send `signum` through a pidfd pinned to the process `info` describes, only if `is_member(pid)`
    holds once it is pinned (a PID reused meanwhile cannot be pinned); False if it was not sent."""
    pidfd = _pin(info.pid, info.start_ticks)
    if pidfd is None:
        return False
    try:
        if not is_member(info.pid):
            return False
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)
    return True


def group_members(table: dict[int, ProcessInfo], pgid: int) -> set[int]:
    return {info.pid for info in table.values() if info.pgrp == pgid}


def _tag_of(pid: int) -> str | None:
    """The job id in the process's environment tag, or None (no tag, gone, or another user's)."""
    try:
        environment = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for variable in environment.split(b"\0"):
        if variable.startswith(_TAG_PREFIX):
            return variable[len(_TAG_PREFIX) :].decode(errors="replace")
    return None


def tagged_by_job(table: dict[int, ProcessInfo]) -> dict[str, list[ProcessInfo]]:
    """Every live process carrying a job's tag, by job id: one read of each environment."""
    found: dict[str, list[ProcessInfo]] = {}
    for pid, info in table.items():
        if (job_id := _tag_of(pid)) is not None:
            found.setdefault(job_id, []).append(info)
    return found


def _pin(pid: int, start_ticks: int | None) -> int | None:
    """A pidfd for process `pid` if it is still the one that started at `start_ticks`, else None.

    Checked after the pidfd is open: from then on the PID cannot be handed to another process."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    current = _live(pid)
    if current is None or current.start_ticks != start_ticks:
        os.close(pidfd)
        return None
    return pidfd


def send_signal(info: ProcessInfo, signum: int) -> bool:
    """Signal the process `info` describes, only if it is still that process; False if it is gone."""
    return _signal_pinned(info, signum, is_member=lambda pid: True)


def open_pidfd(identity: ProcessIdentity) -> int | None:
    """A pidfd for the very process `identity` names (it becomes readable when that process exits),
    or None if it is gone. The caller closes it."""
    if identity.boot_id is not None and identity.boot_id != boot_id():
        return None
    return _pin(identity.pid, identity.start_ticks)


def send_signals(processes: Iterable[ProcessInfo], signum: int) -> None:
    for info in processes:
        send_signal(info, signum)


def signal_member(info: ProcessInfo, job_id: str, not_before: int, signum: int) -> bool:
    """Signal the process `info` describes only if, checked through a pidfd just before, it is still
    that process, started at or after tick `not_before`, and carries the job's tag; False otherwise."""
    if info.start_ticks < not_before:
        return False
    return _signal_pinned(info, signum, lambda pid: _tag_of(pid) == job_id)


def wake(identity: ProcessIdentity, signum: int) -> bool:
    """Send `signum` to the process named by `identity` if it still runs; never to another."""
    if not is_running(identity):
        return False
    assert identity.start_ticks is not None
    return send_signal(ProcessInfo(identity.pid, 0, identity.start_ticks), signum)


def become_subreaper() -> None:
    """Orphaned descendants re-parent to this process rather than to init, so they stay findable."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")
