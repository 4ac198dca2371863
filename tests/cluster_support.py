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


def stop_groups(groups: Callable[[], set[int]], grace: float) -> None:
    """SIGTERM every process of the process groups `groups()` names, then SIGKILL what is left after
    `grace` seconds. `groups` is asked again while they stop, so that groups found late are ended too."""
    found = groups()
    _signal_members(found, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        found |= groups()
        if not _members(found):
            return
        time.sleep(0.1)
    found |= groups()
    _signal_members(found, signal.SIGKILL)


def kill_with_environment(variable: str, value: str) -> None:
    """SIGKILL every process whose environment sets `variable` to `value` (those that left every group)."""
    entry = f"{variable}={value}".encode()
    table = procs.process_table()
    table.pop(os.getpid(), None)
    procs.send_signals([info for pid, info in table.items() if entry in _environment(pid)], signal.SIGKILL)


def _members(groups: Iterable[int]) -> list[procs.ProcessInfo]:
    wanted = set(groups)
    return [info for info in procs.process_table().values() if info.pgrp in wanted]


def _signal_members(groups: Iterable[int], signum: int) -> None:
    procs.send_signals(_members(groups), signum)


def _environment(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []
