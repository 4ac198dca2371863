"""Process identities and process-group termination that never signal a process that is not ours.

A PID alone is not an identity: after a process exits its PID can be handed to an unrelated
process. We pair the PID with its start time (in clock ticks since boot, from /proc) and the boot
id, and only signal when all three still match. A process group whose leader has exited keeps its
id reserved by the kernel for as long as any member lives, so members found by group id are ours.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_GONE_STATES = frozenset({"Z", "X"})


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
class _Stat:
    state: str
    pgrp: int
    start_ticks: int


def _read_stat(pid: int) -> _Stat | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return _Stat(state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def identify(pid: int) -> ProcessIdentity:
    stat = _read_stat(pid)
    return ProcessIdentity(pid, stat.start_ticks if stat else None, _boot_id())


def _has_proc() -> bool:
    return _PROC.joinpath("self", "stat").exists()


def is_running(identity: ProcessIdentity) -> bool:
    """True while the very process named by `identity` runs (a zombie counts as gone)."""
    if identity.boot_id is not None and identity.boot_id != _boot_id():
        return False
    if not _has_proc():
        try:
            os.kill(identity.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _read_stat(identity.pid)
    return stat is not None and stat.state not in _GONE_STATES and stat.start_ticks == identity.start_ticks


def group_members(leader: ProcessIdentity) -> list[int]:
    """Live PIDs of the process group that `leader` started (its PGID is the leader's PID)."""
    if identity_mismatch(leader):
        return []
    if not _has_proc():
        try:
            os.killpg(leader.pid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [leader.pid]
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and stat.pgrp == leader.pid and stat.state not in _GONE_STATES:
            members.append(int(entry.name))
    return members


def identity_mismatch(leader: ProcessIdentity) -> bool:
    """True when the leader's PID now belongs to another process, or the machine has restarted."""
    if leader.boot_id is not None and leader.boot_id != _boot_id():
        return True
    stat = _read_stat(leader.pid) if _has_proc() else None
    return stat is not None and stat.state not in _GONE_STATES and stat.start_ticks != leader.start_ticks


def group_running(leader: ProcessIdentity) -> bool:
    return bool(group_members(leader))


def signal_group(leader: ProcessIdentity, signum: int) -> bool:
    """Send `signum` to the leader's process group if it is still ours and alive."""
    if not group_running(leader):
        return False
    try:
        os.killpg(leader.pid, signum)
    except ProcessLookupError:
        return False
    return True


def wait_group_gone(leader: ProcessIdentity, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while group_running(leader):
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def terminate_group(leader: ProcessIdentity, grace_seconds: float) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left after the grace period."""
    if not signal_group(leader, signal.SIGTERM):
        return
    if wait_group_gone(leader, grace_seconds):
        return
    signal_group(leader, signal.SIGKILL)
    wait_group_gone(leader, timeout=10)
