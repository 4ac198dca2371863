"""Shared pieces of the benchmarks: the servers, statistics, the machine, and markdown tables."""

from __future__ import annotations

import atexit
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable
OURS = "cancel-job-mcp"
BASELINE = "bare SDK"
FASTMCP = "FastMCP peer"


# ----------------------------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class ServerKind:
    """How to start one of the servers over stdio and over HTTP."""

    name: str
    stdio: tuple[str, ...]
    http: Callable[[int], tuple[str, ...]]

    def stdio_params(self, home: Path) -> Any:
        from mcp import StdioServerParameters

        return StdioServerParameters(command=self.stdio[0], args=list(self.stdio[1:]), env=server_env(home))


def _ours_command() -> tuple[str, ...]:
    script = Path(PYTHON).with_name("cancel-job-mcp")  # the console script, as an MCP client config runs it
    return (str(script),) if script.exists() else (PYTHON, "-m", "cancel_job_mcp")


OURS_KIND = ServerKind(
    OURS,
    stdio=_ours_command(),
    http=lambda port: (*_ours_command(), "serve", "--transport", "http", "--port", str(port)),
)
BASELINE_KIND = ServerKind(
    BASELINE,
    stdio=(PYTHON, str(BENCH / "baseline_server.py")),
    http=lambda port: (PYTHON, str(BENCH / "baseline_server.py"), "http", str(port)),
)
FASTMCP_KIND = ServerKind(
    FASTMCP,
    stdio=(PYTHON, str(BENCH / "fastmcp_peer.py")),
    http=lambda port: (PYTHON, str(BENCH / "fastmcp_peer.py"), "http", str(port)),
)
KINDS = (OURS_KIND, BASELINE_KIND, FASTMCP_KIND)


def byte_compile_ours() -> None:
    """Compile our package's modules as pip does when it installs a wheel. An editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile them again at every start, which no installed
    server does (the SDK's modules, installed by pip, are compiled)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("cancel_job_mcp")
    assert spec is not None
    for location in spec.submodule_search_locations or ():
        compileall.compile_dir(location, quiet=1)


def server_env(home: Path) -> dict[str, str]:
    return {**os.environ, "CANCEL_JOB_MCP_HOME": str(home)}


@contextmanager
def state_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cancel-job-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        yield home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HttpServer:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def http_server(kind: ServerKind, home: Path) -> Iterator[HttpServer]:
    port = free_port()
    process = subprocess.Popen(
        kind.http(port), env=server_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{kind.name} HTTP server exited with {process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind.name} HTTP server did not listen within 30 s")
            time.sleep(0.02)
        yield HttpServer(process, f"http://127.0.0.1:{port}/mcp")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client(target: Any, mode: str = "auto") -> Any:
    """An SDK client with response caching off, so every call reaches the server."""
    from mcp import Client

    return Client(target, mode=mode, cache=None)  # type: ignore[arg-type]


def stdio_child_pid(command: Sequence[str]) -> int:
    """The pid of this process's child running `command` (the stdio server a Client spawned)."""
    wanted = list(command)  # a console script runs as [python, script, ...]: compare the tail
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and cmdline[-len(wanted) :] == wanted:
            return int(entry.name)
    raise LookupError(f"no child process runs {list(command)}")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident set) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


# ------------------------------------------------------------------------------------------- local jobs


def submit(home: Path, project: str, *command: str, options: Sequence[str] = ()) -> dict[str, Any]:
    """Submit a local job through the real CLI; returns its record."""
    done = subprocess.run(
        [*_ours_command(), "submit", "--project", project, *options, "--", *command],
        env=server_env(home),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def cancel_cli(home: Path, project: str, job_id: str) -> None:
    subprocess.run(
        [*_ours_command(), "cancel", project, job_id],
        env=server_env(home),
        capture_output=True,
        check=True,
        timeout=60,
    )


def job_process_group(home: Path, job_id: str) -> int | None:
    """The process group of the job's running command, as the runtime recorded it (None before it starts)."""
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        row = conn.execute("SELECT process FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return int(row[0].split(":")[0]) if row and row[0] else None


def group_alive(pgid: int) -> bool:
    """True while the process group has a member (a zombie not yet reaped counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def kill_group_quietly(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """min-max across repetitions."""
    return f"{min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f}"


def ratio(ours: float, baseline: float) -> str:
    return f"{ours / baseline:.2f}x" if baseline else "-"


# ------------------------------------------------------------------------------------------- reporting


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += [""] + [f"_{note}_" for note in self.notes] if self.notes else []
        return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    import mcp

    version = getattr(mcp, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("mcp")
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}, mcp {version}"
    )


def print_tables(tables: Sequence[Table]) -> None:
    print(f"Machine: {machine()}\n")
    for table in tables:
        print(table.markdown())
        print()


# Memory samples the load benchmarks leave: (transport, server, idle RSS KiB, peak RSS KiB, calls served).
MEMORY: list[tuple[str, str, int, int, int]] = []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_members(pgid: int) -> list[int]:
    """The pids of the process group's members now (one scan of /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            members.append(int(entry.name))
    return members


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def verdict(value: float, limit: float, at_most: bool = True) -> str:
    """'met' or 'missed' against a target ratio."""
    met = value <= limit if at_most else value >= limit
    return f"{'met' if met else 'MISSED'} ({'<=' if at_most else '>='} {limit:g}x)"


# Canceled local jobs, made once per process through the real CLI and shared by the benchmarks.
_CANCELED: list[tuple[Path, str, list[str]]] = []
CANCELED_PROJECT = "bench"


def canceled_jobs(count: int = 8) -> tuple[Path, str, list[str]]:
    """(home, project, job ids): `count` local jobs submitted and canceled before any clock starts."""
    if _CANCELED:
        return _CANCELED[0]
    tmp = tempfile.TemporaryDirectory(prefix="cancel-job-bench-")
    atexit.register(tmp.cleanup)
    home = Path(tmp.name) / "home"
    home.mkdir()
    ids = [submit(home, CANCELED_PROJECT, "sleep", "600")["id"]]  # creates the store, then in parallel:
    submits = [
        subprocess.Popen(
            [*_ours_command(), "submit", "--project", CANCELED_PROJECT, "--", "sleep", "600"],
            env=server_env(home),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count - 1)
    ]
    ids += [json.loads(process.communicate(timeout=60)[0])["id"] for process in submits]
    cancels = [
        subprocess.Popen(
            [*_ours_command(), "cancel", CANCELED_PROJECT, job],
            env=server_env(home),
            stdout=subprocess.DEVNULL,
        )
        for job in ids
    ]
    if any(process.wait(timeout=60) for process in cancels):
        raise RuntimeError("a cancel of a benchmark job failed")
    _CANCELED.append((home, CANCELED_PROJECT, ids))
    return _CANCELED[0]


def cancel_calls(kind: ServerKind) -> list[tuple[str, dict[str, Any]]]:
    """The call each server is loaded with: cancel_job on canceled local jobs, or the bare server's noop."""
    if kind is BASELINE_KIND:
        return [("noop", {})]
    _, project, ids = canceled_jobs()
    return [("cancel_job", {"project_reference": project, "job_id": job}) for job in ids]


# The headline figures the benchmarks leave for bench/run.py's first table:
# (figure, ours, bare SDK, FastMCP peer, unit, target ratio against bare, True if the target is a maximum).
SUMMARY: list[tuple[str, float, float, float, str, float, bool]] = []


def summary_table() -> Table:
    table = Table(
        "Against the targets (medians from the tables below)",
        ["figure", OURS, BASELINE, FASTMCP, "ours / bare", "target", "ours / FastMCP", "beats FastMCP"],
    )
    for figure, ours, base, peer, unit, target, at_most in SUMMARY:
        beats = ours < peer if at_most else ours > peer
        table.rows.append(
            [figure, f"{ours:.2f} {unit}", f"{base:.2f} {unit}", f"{peer:.2f} {unit}", ratio(ours, base),
             verdict(ours / base, target, at_most), ratio(ours, peer), "yes" if beats else "NO"]
        )  # fmt: skip
    return table
