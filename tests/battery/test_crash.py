"""Crash safety of the stop: kill -9 the canceller, the server or the supervisor at each phase of a cancel.

The job is a family that a plain killpg cannot stop: a leader that takes its time on SIGTERM (until the
test releases it), a child in its process group that ignores SIGTERM, and a daemon that left the group
(double fork + setsid()) and ignores SIGTERM too. Whatever is killed and whenever, the end is the same:
every process of the family got one SIGTERM and is gone, the record says `canceled` with completed_at,
and, watched all along, the record never said stopped while one of them lived.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cancel_job_mcp.backends.local import procs

from ..battery_support import (
    RawStdioServer,
    StdioServers,
    db_row,
    get_job,
    integrity_check,
    shared_stdio_server,
    submit_here,
)
from ..conftest import CLI, env_for, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

GRACE_SECONDS = 3
# argv[1] is a path prefix: <prefix>.log gets one line per SIGTERM, <prefix>.pids the three PIDs,
# <prefix>.ready appears once every handler is installed, and <prefix>.release lets the leader exit.
FAMILY = """
import os, signal, sys, time
prefix = sys.argv[1]
def note(line):
    with open(prefix + ".log", "a") as log:
        log.write(line + "\\n")
def forever():
    while True:
        time.sleep(1)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, lambda *_: note("TERM child"))
    open(prefix + ".child", "w").close()
    forever()
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, lambda *_: note("TERM daemon"))
        with open(prefix + ".daemon.tmp", "w") as out:
            out.write(str(os.getpid()))
        os.rename(prefix + ".daemon.tmp", prefix + ".daemon")
        forever()
    os._exit(0)
os.waitpid(middle, 0)
def on_term(*_):
    note("TERM leader")
    while not os.path.exists(prefix + ".release"):
        time.sleep(0.01)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while not (os.path.exists(prefix + ".daemon") and os.path.exists(prefix + ".child")):
    time.sleep(0.01)
daemon = int(open(prefix + ".daemon").read())
with open(prefix + ".pids", "w") as out:
    out.write(f"{os.getpid()} {child} {daemon}")
open(prefix + ".ready", "w").close()
forever()
"""
PHASES = ("before_sigterm", "inside_grace", "after_leader_exit")
VICTIMS = ("canceller", "server", "supervisor")


class Family:
    """The job's three processes, known by identity, and what they logged."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        wait_until(lambda: Path(f"{prefix}.ready").exists(), timeout=30)
        pids = [int(pid) for pid in Path(f"{prefix}.pids").read_text().split()]
        self.identities = [procs.identify(pid) for pid in pids]
        assert all(procs.is_running(identity) for identity in self.identities)

    @property
    def leader(self) -> procs.ProcessIdentity:
        return self.identities[0]

    def alive(self) -> list[int]:
        return [identity.pid for identity in self.identities if procs.is_running(identity)]

    def signals(self) -> list[str]:
        log = Path(f"{self.prefix}.log")
        return sorted(log.read_text().splitlines()) if log.exists() else []

    def release(self) -> None:
        Path(f"{self.prefix}.release").touch()

    def kill(self) -> None:
        for identity in self.identities:
            procs.wake(identity, signal.SIGKILL)


class RecordWatch:
    """Reads the record in a loop and notes every moment it said stopped while a process lived."""

    def __init__(self, home: Path, job_id: str, family: Family) -> None:
        self.lies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(home, job_id, family), daemon=True)
        self._thread.start()

    def _watch(self, home: Path, job_id: str, family: Family) -> None:
        # One connection for the whole watch: opening one per look would cost more than the look.
        with contextlib.closing(sqlite3.connect(home / "jobs.sqlite3")) as conn:
            while not self._stop.wait(0.005):
                (completed_at,) = conn.execute(
                    "SELECT completed_at FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
                if completed_at is not None and (alive := family.alive()):
                    self.lies.append(f"completed_at set while {alive} ran")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state directory for the matrix (each case its own job): the reader below serves them all."""
    return tmp_path_factory.mktemp("crash-home")


@pytest.fixture(scope="module")
def reader(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawStdioServer]:
    """Reads as a user would, through a server that none of the cases kills; a read hands a job whose
    supervisor is gone to a successor."""
    with shared_stdio_server(home, tmp_path_factory.mktemp("reader") / "stderr.txt") as server:
        yield server


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("victim", VICTIMS)
def test_kill_9_at_each_phase_of_a_cancel_leaves_no_process_and_a_true_record(
    home: Path,
    tmp_path: Path,
    victim: str,
    phase: str,
    stdio_servers: StdioServers,
    reader: RawStdioServer,
) -> None:
    prefix = tmp_path / "family"
    job = submit_here(home, "crash", sys.executable, "-c", FAMILY, str(prefix), grace_seconds=GRACE_SECONDS)
    job_id = job["id"]
    family = Family(prefix)
    supervisor = procs.ProcessIdentity.decode(db_row(home, job_id)["supervisor"])
    watch = RecordWatch(home, job_id, family)
    cli: subprocess.Popen[bytes] | None = None
    try:
        if phase == "before_sigterm":
            procs.wake(supervisor, signal.SIGSTOP)  # it cannot act on the cancel until we let it
        canceller: subprocess.Popen[bytes] | RawStdioServer
        if victim == "server":
            canceller = stdio_servers.start()
            canceller.send(
                "tools/call",
                {"name": "cancel_job", "arguments": {"project_reference": "crash", "job_id": job_id}},
            )
        else:
            canceller = cli = subprocess.Popen(
                [*CLI, "cancel", "crash", job_id], env=env_for(home), stdout=subprocess.DEVNULL
            )
        wait_until(lambda: db_row(home, job_id)["status"] == "canceled", timeout=30)
        if phase != "before_sigterm":
            wait_until(lambda: db_row(home, job_id)["term_sent_at"] is not None, timeout=30)
            # term_sent_at is recorded as SIGTERM goes out; each process logs it when its handler runs.
            wait_until(lambda: "TERM leader" in family.signals(), timeout=30)
        if phase == "after_leader_exit":
            family.release()
            wait_until(lambda: db_row(home, job_id)["leader_exit"] is not None, timeout=30)
        assert db_row(home, job_id)["completed_at"] is None, "the stop cannot be recorded yet"

        victim_pid = supervisor.pid if victim == "supervisor" else canceller.pid
        procs.wake(procs.identify(victim_pid), signal.SIGKILL)
        if phase == "before_sigterm" and victim != "supervisor":
            procs.wake(supervisor, signal.SIGCONT)
        family.release()

        # Reads hand a job whose supervisor is gone to a successor: read it as a user would.
        record = wait_until(  # as a client would poll (the watch above looks every 5 ms)
            lambda: (record := get_job(reader, "crash", job_id))["completed_at"] and record,
            timeout=60,
            interval=0.1,
        )
    finally:
        procs.wake(supervisor, signal.SIGCONT)
        if cli is not None:
            cli.kill()
            cli.wait()
        watch.close()
        survivors = family.alive()
        family.kill()
    assert watch.lies == []
    assert survivors == [], "processes of the job outlived its recorded stop"
    assert record["status"] == "canceled"
    assert family.signals() == ["TERM child", "TERM daemon", "TERM leader"], "one SIGTERM each, first"
    lost_leader_exit = victim == "supervisor" and phase != "after_leader_exit"
    assert record["exit_code"] == (None if lost_leader_exit else 0)
    assert integrity_check(home) == "ok"
