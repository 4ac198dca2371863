"""A cgroup (v2) per job attempt, where this process may make one: root, or a delegated subtree.

The attempt's leader joins the cgroup before it runs the command, so every process it starts is a
member until it moves itself out, which takes write access to a common ancestor's `cgroup.procs`
(root's jobs have it). `cgroup.kill` SIGKILLs every member at once, forks included, and
`cgroup.events` saying `populated 0` means no member is left. Without cgroup v2, `cgroup.kill`
(Linux 5.14) or write access, the runtime relies on its subreaper alone (supervisor.py).
"""

from __future__ import annotations

import contextlib
import os
from functools import cache
from pathlib import Path

_PREFIX = "cancel-job-mcp-"


@cache
def _own_cgroup() -> Path | None:
    """The directory of this process's cgroup v2, if the unified hierarchy is mounted and it can make
    child cgroups there with `cgroup.kill`."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = next(
            line.removeprefix("0::") for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )  # fmt: skip
    except (OSError, StopIteration):
        return None
    for line in mounts:
        fields, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            directory = Path(fields.split()[4]) / own.lstrip("/")
            return directory if os.access(directory, os.W_OK) else None
    return None


class JobCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, job_id: str, attempt: int) -> JobCgroup | None:
        """A new cgroup for the attempt, or None where none can be made (the subreaper then suffices)."""
        parent = _own_cgroup()
        if parent is None:
            return None
        path = parent / f"{_PREFIX}{job_id}-{attempt}"
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError:
            return None
        if not (path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    @classmethod
    def find(cls, job_id: str, attempt: int) -> JobCgroup | None:
        """The attempt's cgroup, if a supervisor in this process's cgroup made it and it is still there."""
        parent = _own_cgroup()
        path = parent / f"{_PREFIX}{job_id}-{attempt}" if parent is not None else None
        return cls(path) if path is not None and (path / "cgroup.kill").exists() else None

    def join(self) -> None:
        """In the leader, between fork and exec: move into the cgroup (best effort: the subreaper
        still finds the job's processes if this fails)."""
        with contextlib.suppress(OSError):
            fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def populated(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except OSError:
            return False
        return "populated 1" in events

    def kill(self) -> None:
        """SIGKILL every member at once (the kernel walks the cgroup; forks cannot escape it)."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()
