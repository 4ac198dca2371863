"""A real Ray head node on loopback for the Ray backend tests, run from the separate `.cache/ray-venv`.

`.ci/install-ray.sh` creates that venv; without it the tests skip. The head node runs in a process
group of its own (`ray start --block` as the group leader), and `stop_head` ends exactly that group
and its descendants' groups: `ray stop` would also stop any other Ray on the machine, since it finds
its processes by name.

A job costs a JobSupervisor actor, a Python process importing Ray (about 1.5 s of CPU), so the tests
share one set of jobs for the session (`submit_shared_jobs`), and only those that cancel a job get one
of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from .cluster_support import descendant_groups, free_ports, kill_groups, poll

REPO = Path(__file__).resolve().parent.parent
RAY_VENV = REPO / ".cache" / "ray-venv"
RAY = RAY_VENV / "bin" / "ray"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
SUBMIT_TIMEOUT = 90.0
# Generous: under load a job's supervisor takes seconds of CPU to start.
STATUS_TIMEOUT = 90.0
# Workers the raylet would start ahead of need, for drivers these tests never run (each a Python process).
NO_PRESTART = {"RAY_prestart_worker_first_driver": "0"}
ACTIVE = ("PENDING", "RUNNING")


@dataclass
class RayHead:
    url: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path
    # One client for the session: a new one per request would build a TLS context each time.
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30.0)

    def submit(self, entrypoint: str, **fields: Any) -> str:
        """Submit a job through Ray's own REST API; returns its submission id.

        Until the head node's job agent has registered, and while it is too busy to answer within Ray's
        own 10 s, Ray refuses with "No available agent to submit job" (503 in older Ray, 500 in 2.60):
        that is retried until SUBMIT_TIMEOUT. Any other refusal fails at once, with Ray's own words.
        """
        body = {"entrypoint": entrypoint, **fields}

        def attempt() -> str | None:
            response = self.http.post("/api/jobs/", json=body)
            if response.status_code in (500, 503) and "No available agent" in response.text:
                return None
            if response.is_error:
                raise RuntimeError(
                    f"Ray refused to submit {entrypoint!r} ({response.status_code}): {response.text[-3000:]}"
                )
            submission_id: str = response.json()["submission_id"]
            return submission_id

        return poll(attempt, timeout=SUBMIT_TIMEOUT, what=f"submit {entrypoint!r}", interval=0.2)

    def info(self, submission_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/jobs/{submission_id}")
        response.raise_for_status()
        payload: dict[str, Any] = response.json()
        return payload

    def wait_for_status(
        self, submission_id: str, *statuses: str, timeout: float = STATUS_TIMEOUT
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            payload = self.info(submission_id)
            return payload if payload["status"] in statuses else None

        return poll(reached, timeout=timeout, what=f"job {submission_id} to reach {statuses}", interval=0.1)

    def order(self, status: str | None = None) -> list[str]:
        """Ray's own listing as the backend must page it: newest first by (start_time, id)."""
        response = self.http.get("/api/jobs/")
        response.raise_for_status()
        keys = [
            (job.get("start_time") or 0, job.get("submission_id") or job["job_id"])
            for job in response.json()
            if status is None or job["status"] == status
        ]
        return [job_id for _, job_id in sorted(keys, reverse=True)]

    def stop_if_active(self, *submission_ids: str) -> None:
        for submission_id in submission_ids:
            if self.info(submission_id)["status"] in ACTIVE:
                self.http.post(f"/api/jobs/{submission_id}/stop")


class Victim(NamedTuple):
    """A running "sleep 600" job for one test to cancel."""

    id: str
    name: str


@dataclass
class SharedJobs:
    """The session's jobs on the head node. No test changes `succeeded`, `failed` or `running`; a test
    that cancels takes a victim of its own (`take_victim`)."""

    tag: str
    succeeded: list[str]  # "true", submitted one after the other
    failed: str  # "exit 3"
    running: str  # "sleep 600", named "sleeper"
    victims: list[Victim]

    @property
    def mine(self) -> list[str]:
        """The jobs no test changes, oldest first."""
        return [*self.succeeded, self.failed, self.running]

    def take_victim(self, head: RayHead) -> Victim:
        """A running job no other test touches: one submitted with the others, or else a new one."""
        victim = self.victims.pop() if self.victims else _submit_victim(head, self.tag, uuid.uuid4().hex[:6])
        head.wait_for_status(victim.id, "RUNNING")
        return victim


def submit_shared_jobs(head: RayHead, victims: int) -> SharedJobs:
    """Submit the session's jobs all at once (their supervisors start side by side); returns once the
    finished ones have settled and the long one runs. The victims are waited for when taken."""
    tag = uuid.uuid4().hex[:8]
    jobs = SharedJobs(
        tag=tag,
        succeeded=[head.submit("true", submission_id=f"shared-{tag}-ok-{i}") for i in range(2)],
        failed=head.submit("exit 3", submission_id=f"shared-{tag}-exit3"),
        running=head.submit("sleep 600", submission_id=f"shared-{tag}-sleep", metadata={"name": "sleeper"}),
        victims=[_submit_victim(head, tag, str(i)) for i in range(victims)],
    )
    for job_id in jobs.succeeded:
        head.wait_for_status(job_id, "SUCCEEDED")
    head.wait_for_status(jobs.failed, "FAILED")
    head.wait_for_status(jobs.running, "RUNNING")
    return jobs


def _submit_victim(head: RayHead, tag: str, suffix: str) -> Victim:
    name = f"victim {suffix}"
    return Victim(
        head.submit("sleep 600", submission_id=f"shared-{tag}-victim-{suffix}", metadata={"name": name}), name
    )


def start_head() -> RayHead:
    """Start a one-CPU head node, its dashboard on a free loopback port; returns once jobs can be listed.

    Only what the Jobs REST API needs: no autoscaler monitor (nothing to scale) and no log monitor
    (it streams workers' logs to drivers; these tests run none). Ray's client server cannot be left
    out by `ray start`.
    """
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
        "--no-monitor",
        "--include-log-monitor=False",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", **NO_PRESTART)
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
        poll(
            lambda: _ready(head),
            timeout=START_TIMEOUT,
            what="the Ray dashboard to serve /api/jobs/",
            interval=0.2,
        )
    except BaseException:
        output = log.read_text(errors="replace")[-4000:]
        stop_head(head)
        raise RuntimeError(f"the Ray head node did not start; ray start said:\n{output}") from None
    return head


def _ready(head: RayHead) -> bool:
    if head.process.poll() is not None:
        raise RuntimeError(f"ray start exited with {head.process.returncode}")
    try:
        return head.http.get("/api/jobs/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop_head(head: RayHead) -> None:
    """Kill every process the head node started, then remove its temporary directory.

    Ray puts each worker in a process group of its own and each job's entrypoint in a session of its
    own, so the groups to end are collected from the head's process tree before and while they die.
    SIGKILL at once: a throwaway cluster needs no graceful shutdown, which takes the GCS and the raylet
    seconds (after 3 s, 1.6 s of CPU, and still not done).
    """
    head.http.close()
    leader = head.process.pid

    def groups() -> set[int]:
        head.process.poll()  # reap the group leader once it exits
        return {leader} | descendant_groups(leader)

    kill_groups(groups, STOP_TIMEOUT)
    head.process.wait(timeout=STOP_TIMEOUT)
    shutil.rmtree(head.temp_dir, ignore_errors=True)
