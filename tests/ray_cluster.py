"""A real Ray head node on loopback for the Ray backend tests, run from the separate `.cache/ray-venv`.

`.ci/install-ray.sh` creates that venv; without it the tests skip. The head node runs in a process
group of its own (`ray start --block` as the group leader), and `stop_head` ends exactly that group:
`ray stop` would also stop any other Ray on the machine, since it finds its processes by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parent.parent
RAY_VENV = REPO / ".cache" / "ray-venv"
RAY = RAY_VENV / "bin" / "ray"
START_TIMEOUT = 60.0
STOP_GRACE = 3.0
SUBMIT_TIMEOUT = 90.0
T = TypeVar("T")


@dataclass
class RayHead:
    url: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def submit(self, entrypoint: str, **fields: Any) -> str:
        """Submit a job through Ray's own REST API; returns its submission id.

        Until the head node's job agent has registered, and while it is too busy to answer within Ray's
        own 10 s, Ray refuses with "No available agent to submit job" (503 in older Ray, 500 in 2.60):
        that is retried until SUBMIT_TIMEOUT. Any other refusal fails at once, with Ray's own words.
        """
        body = {"entrypoint": entrypoint, **fields}

        def attempt() -> str | None:
            with self.client() as http:
                response = http.post("/api/jobs/", json=body)
            if response.status_code in (500, 503) and "No available agent" in response.text:
                return None
            if response.is_error:
                raise RuntimeError(
                    f"Ray refused to submit {entrypoint!r} ({response.status_code}): {response.text[-3000:]}"
                )
            submission_id: str = response.json()["submission_id"]
            return submission_id

        return poll(attempt, timeout=SUBMIT_TIMEOUT, what=f"submit {entrypoint!r}")

    def info(self, submission_id: str) -> dict[str, Any]:
        with self.client() as http:
            response = http.get(f"/api/jobs/{submission_id}")
        response.raise_for_status()
        payload: dict[str, Any] = response.json()
        return payload

    def wait_for_status(self, submission_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            payload = self.info(submission_id)
            return payload if payload["status"] in statuses else None

        return poll(reached, timeout=timeout, what=f"job {submission_id} to reach {statuses}")


def poll(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
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
    import socket

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


def start_head() -> RayHead:
    """Start a one-CPU head node, its dashboard on a free loopback port; returns once jobs can be listed."""
    # Short: Ray puts unix sockets under it, and their paths must stay under 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    gcs, dashboard, agent_http, agent_grpc, metrics, runtime_env, node_manager, object_manager, client = (
        free_ports(9)
    )
    log = temp_dir / "ray-start.log"
    command = [
        str(RAY),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--ray-client-server-port={client}",
        "--num-cpus=1",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    head = RayHead(f"http://127.0.0.1:{dashboard}", process, temp_dir, log)
    try:
        poll(lambda: _ready(head), timeout=START_TIMEOUT, what="the Ray dashboard to serve /api/jobs/")
    except BaseException:
        output = log.read_text(errors="replace")[-4000:]
        stop_head(head)
        raise RuntimeError(f"the Ray head node did not start; ray start said:\n{output}") from None
    return head


def _ready(head: RayHead) -> bool:
    if head.process.poll() is not None:
        raise RuntimeError(f"ray start exited with {head.process.returncode}")
    try:
        with head.client() as http:
            return http.get("/api/jobs/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop_head(head: RayHead) -> None:
    """End every process the head node started (SIGTERM, then SIGKILL), then remove its temporary directory.

    Ray puts each worker in a process group of its own and each job's entrypoint in a session of its
    own, so the groups to end are collected from the head's process tree before and while it stops.
    The GCS and the raylet take about 10 s to shut down gracefully; a throwaway test cluster gets
    STOP_GRACE seconds, then SIGKILL.
    """
    groups = {head.process.pid} | _descendant_groups(head.process.pid)
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        head.process.poll()  # reap the group leader once it exits
        groups |= _descendant_groups(head.process.pid)
        if not any(_group_alive(pgid) for pgid in groups):
            break
        time.sleep(0.1)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    if head.process.poll() is None:
        head.process.wait(timeout=10)
    shutil.rmtree(head.temp_dir, ignore_errors=True)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, state) of every process, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        found.append((int(entry.name), int(fields[1]), int(fields[2]), fields[0]))
    return found


def _descendant_groups(root: int) -> set[int]:
    """The process groups of every living descendant of `root`."""
    processes = _processes()
    children: dict[int, list[tuple[int, int]]] = {}
    for pid, ppid, pgid, _ in processes:
        children.setdefault(ppid, []).append((pid, pgid))
    groups: set[int] = set()
    pending = [root]
    while pending:
        for pid, pgid in children.get(pending.pop(), []):
            groups.add(pgid)
            pending.append(pid)
    return groups


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of group `pgid` exists."""
    return any(group == pgid and state not in ("Z", "X") for _, _, group, state in _processes())
