"""What the real-cluster helpers (ray_cluster.py, slurm_cluster.py) share: a poll with a deadline, free
loopback ports, and ending every process a cluster started, found through the local runtime's own /proc
reader (`cancel_job_mcp.backends.local.procs`) and signalled only while each is still that process."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from cancel_job_mcp.backends.local import procs

T = TypeVar("T")


def poll(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `condition` until it returns something truthy, which is returned; TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback right now (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def descendant_groups(root: int) -> set[int]:
    """The process groups of `root`'s living descendants."""
    return {info.pgrp for info in procs.descendants(root).values()}


def kill_groups(groups: Callable[[], set[int]], timeout: float) -> None:
    """SIGKILL every process of the process groups `groups()` names until none is left. `groups` is asked
    again each round, so that groups found late (a child whose parent was being killed) end too."""
    found: set[int] = set()

    def gone() -> bool:
        found.update(groups())
        members = _members(found)
        procs.send_signals(members, signal.SIGKILL)
        return not members

    poll(gone, timeout=timeout, what="the process groups to end")


def kill_with_environment(variable: str, value: str) -> None:
    """SIGKILL every process whose environment sets `variable` to `value` (those that left every group)."""
    entry = f"{variable}={value}".encode()
    table = procs.process_table()
    table.pop(os.getpid(), None)
    procs.send_signals([info for pid, info in table.items() if entry in _environment(pid)], signal.SIGKILL)


def _members(groups: Iterable[int]) -> list[procs.ProcessInfo]:
    wanted = set(groups)
    return [info for info in procs.process_table().values() if info.pgrp in wanted]


def _environment(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []
