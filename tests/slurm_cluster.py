"""A real single-node Slurm cluster, private to one test session, for the Slurm backend tests.

`.ci/install-slurm.sh` installs the Debian packages (Slurm 22.05 on bookworm). `start_cluster` then runs,
all with one configuration in a fresh directory under /tmp (nothing of /etc/slurm or /etc/munge is used):

- `munged` with a key of its own on a socket of its own (slurm.conf points there with AuthInfo),
- `slurmctld` and `slurmd -N localhost` as root, on two TCP ports found free at run time, with
  proctrack/linuxproc and no accounting, cgroups or systemd,
- `slurmrestd` as the unprivileged user `cjm-slurm` (it refuses to run as root), with the local auth
  plugin and OpenAPI v0.0.38, on a unix socket that user owns. Jobs submitted through it run as that user.

Several sessions can run at once (other worktrees run the same tests): each has its own directory,
key, sockets and ports. A session that died without tearing down leaves its directory; the next
session stops that cluster's remaining processes and removes the directory (a session holds an
flock on `session.lock` while it lives, which is how a dead one is told from a live one).

`UnavailableError` says why a cluster cannot run here (not root, Slurm not installed); the fixture
turns it into a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .cluster_support import free_ports, kill_with_environment, poll

API = "/slurm/v0.0.38"
USER = "cjm-slurm"
DIR_PREFIX = "cjm-slurm-"
START_TIMEOUT = 30.0
STOP_GRACE = 5.0
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmrestd", "sbatch")
# Base states of jobs that still hold processes or may start some.
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING"})


class UnavailableError(Exception):
    """A Slurm cluster cannot run on this machine; the message says why."""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    socket: Path
    work: Path  # owned by USER: jobs run there and write their files there
    user: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    lock: Any = None
    _http: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        return f"unix:{self.socket}"

    @property
    def http(self) -> httpx.Client:
        """One client for the cluster's life: a new one per request would build a TLS context each time."""
        if self._http is None:
            transport = httpx.HTTPTransport(uds=str(self.socket))
            self._http = httpx.Client(transport=transport, base_url="http://slurmrestd", timeout=30.0)
        return self._http

    def close_client(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def submit(self, script: str, **job: Any) -> int:
        """Submit a batch job through slurmrestd (so it runs as USER); returns its job id."""
        body = {
            "script": script,
            "job": {
                "current_working_directory": str(self.work),
                "environment": {"PATH": "/usr/bin:/bin"},
                **job,
            },
        }
        answer = self.http.post(f"{API}/job/submit", json=body).json()
        job_id = answer.get("job_id")
        if not isinstance(job_id, int):
            raise RuntimeError(f"slurmrestd did not submit the job: {answer.get('errors')}")
        return job_id

    def job(self, job_id: int) -> dict[str, Any]:
        response = self.http.get(f"{API}/job/{job_id}")
        response.raise_for_status()
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs[0]

    def jobs(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{API}/jobs")
        response.raise_for_status()
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs

    def wait_for_state(self, job_id: int, *states: str, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["job_state"] in states else None

        return poll(reached, timeout=timeout, what=f"job {job_id} to reach {states}")

    def sbatch(self, *args: str) -> int:
        """Submit a job with sbatch as root (not as USER: slurmrestd's user cannot touch it)."""
        done = subprocess.run(
            ["sbatch", "--parsable", *args],
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return int(done.stdout.strip().split(";")[0])

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_CONF": str(self.conf)}


def check_available() -> None:
    if os.geteuid() != 0:
        raise UnavailableError("the Slurm tests run the Slurm daemons as root; this session is not root")
    missing = [name for name in DAEMONS if shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") is None]
    if missing:
        raise UnavailableError(
            f"Slurm is not installed ({', '.join(missing)} missing); run .ci/install-slurm.sh"
        )


def ensure_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(USER)
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 9):  # 9: created meanwhile by a concurrent session
        raise UnavailableError(f"cannot create the user {USER} for slurmrestd: {done.stderr.strip()}")
    return pwd.getpwnam(USER)


def start_cluster(attempts: int = 3) -> SlurmCluster:
    """A running cluster with an idle node and slurmrestd answering; ports are retried if taken meanwhile."""
    check_available()
    account = ensure_user()
    remove_stale_clusters()
    for attempt in range(attempts):
        cluster = _prepare(account)
        try:
            _start_daemons(cluster)
            return cluster
        except _PortTakenError:
            stop_cluster(cluster)
            if attempt == attempts - 1:
                raise
        except BaseException:
            logs = _logs(cluster)
            stop_cluster(cluster)
            raise RuntimeError(f"the Slurm cluster did not start:\n{logs}") from None
    raise AssertionError("unreachable")


class _PortTakenError(Exception):
    pass


def _prepare(account: pwd.struct_passwd) -> SlurmCluster:
    root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir="/tmp"))
    lock = (root / "session.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    root.chmod(0o711)  # USER traverses it to reach its socket directory, the key stays root's
    for name in ("state", "spool"):
        (root / name).mkdir()
    owned = [root / "rest", root / "work"]
    for path in owned:
        path.mkdir()
        os.chown(path, account.pw_uid, account.pw_gid)
        path.chmod(0o755)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    return SlurmCluster(
        root=root,
        conf=root / "slurm.conf",
        socket=root / "rest" / "slurmrestd.sock",
        work=root / "work",
        user=account.pw_name,
        lock=lock,
    )


def _write_conf(cluster: SlurmCluster, ctld_port: int, slurmd_port: int) -> None:
    root = cluster.root
    cluster.conf.write_text(
        f"""\
ClusterName=cjm
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.sock
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=1
MinJobAge=3600
KillWait=5
ReturnToService=2
MailProg=/bin/true
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=other Nodes=localhost MaxTime=INFINITE State=UP
"""
    )
    cluster.conf.chmod(0o644)


def _start_daemons(cluster: SlurmCluster) -> None:
    root = cluster.root
    ctld_port, slurmd_port = free_ports(2)
    _write_conf(cluster, ctld_port, slurmd_port)
    _spawn(
        cluster,
        "munged",
        [
            "munged",
            "--foreground",
            f"--socket={root}/munge.sock",
            f"--key-file={root}/munge.key",
            f"--pid-file={root}/munged.pid",
            f"--seed-file={root}/munged.seed",
            f"--log-file={root}/munged.log",
        ],
    )
    poll(lambda: _alive(cluster, "munged") and (root / "munge.sock").exists(), timeout=10, what="munged")
    _spawn(cluster, "slurmctld", ["slurmctld", "-D"])
    _spawn(cluster, "slurmd", ["slurmd", "-D", "-N", "localhost"])
    account = pwd.getpwnam(cluster.user)
    _spawn(
        cluster,
        "slurmrestd",
        ["slurmrestd", "-a", "rest_auth/local", "-s", "openapi/v0.0.38", f"unix:{cluster.socket}"],
        user=account,
    )
    poll(lambda: _node_idle(cluster), timeout=START_TIMEOUT, what="the Slurm node to be idle")


def _spawn(
    cluster: SlurmCluster, name: str, command: list[str], user: pwd.struct_passwd | None = None
) -> None:
    log = (cluster.root / f"{name}.out").open("wb")
    with log:
        cluster.processes[name] = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cluster.env(),
            cwd=cluster.root,
            start_new_session=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )


def _alive(cluster: SlurmCluster, name: str) -> bool:
    process = cluster.processes[name]
    if process.poll() is None:
        return True
    output = (cluster.root / f"{name}.out").read_text(errors="replace")
    if "Address already in use" in output or "Unable to bind" in output:
        raise _PortTakenError(name)
    raise RuntimeError(f"{name} exited with {process.returncode}")


def _node_idle(cluster: SlurmCluster) -> bool:
    for name in cluster.processes:
        _alive(cluster, name)
    if not cluster.socket.exists():
        return False
    try:
        response = cluster.http.get(f"{API}/nodes", timeout=2)
    except httpx.HTTPError:
        return False
    nodes = response.json().get("nodes", []) if response.status_code == 200 else []
    return any(node.get("state") == "idle" for node in nodes)


def _logs(cluster: SlurmCluster) -> str:
    parts = []
    for path in sorted(cluster.root.glob("*.out")) + sorted(cluster.root.glob("*.log")):
        parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)


def stop_cluster(cluster: SlurmCluster) -> None:
    """Cancel what still runs, stop the daemons, end every process left of this cluster, remove its files."""
    if all(process.poll() is None for process in cluster.processes.values()) and cluster.processes:
        with contextlib.suppress(Exception):
            _cancel_everything(cluster)
    for process in cluster.processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in cluster.processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    kill_with_environment("SLURM_CONF", str(cluster.conf))
    cluster.close_client()
    if cluster.lock is not None:
        cluster.lock.close()
    shutil.rmtree(cluster.root, ignore_errors=True)


def _cancel_everything(cluster: SlurmCluster) -> None:
    for job in cluster.jobs():
        if job["job_state"] in ACTIVE_STATES:
            cluster.http.delete(f"{API}/job/{job['job_id']}")

    def settled() -> bool:
        return not any(job["job_state"] in ACTIVE_STATES - {"PENDING"} for job in cluster.jobs())

    with contextlib.suppress(TimeoutError):
        poll(settled, timeout=STOP_GRACE + 5, what="the cluster's jobs to end", interval=0.2)


def remove_stale_clusters() -> None:
    """Stop and remove the clusters of sessions that died without tearing down."""
    for root in Path("/tmp").glob(f"{DIR_PREFIX}*"):
        lock_path = root / "session.lock"
        try:
            with lock_path.open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Job steps outlive slurmd: they are found by their SLURM_CONF.
                kill_with_environment("SLURM_CONF", str(root / "slurm.conf"))
                shutil.rmtree(root, ignore_errors=True)
        except (BlockingIOError, FileNotFoundError, NotADirectoryError):
            continue  # alive (locked) or being created right now (no lock yet)
