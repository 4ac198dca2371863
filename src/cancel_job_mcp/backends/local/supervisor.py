"""The supervisor of one local job and the only owner of its processes.

Started as `python -m cancel_job_mcp.backends.local` (see `spawn`).

It runs the job's command in a process group of its own, records each transition, enforces the
job's timeout (over all attempts together, like Kubernetes' activeDeadlineSeconds), retries a
non-zero exit up to `backoff_limit` times, and copies the job's output into its log, keeping the
tail under the job's cap. It alone signals the job's processes and it alone records that they
stopped: a cancel only records the request and wakes it (SIGUSR1); it re-reads the record every
half second too, in case a canceller died in between. Only the supervisor `submit` starts runs the
command (see successor.py for what happens to a job whose supervisor is lost).

A stop is SIGTERM to every process of the job, then SIGKILL to what is left once the grace period,
timed from that SIGTERM, is over; it is recorded only when no process of the job is left. The
supervisor is a child subreaper, so a descendant that left the process group (setsid()) and lost
its parent is re-parented to it and still found.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ...backoff import Backoff
from ...defaults import DEFAULT_LOG_LIMIT
from ...record import JobStatus
from . import evidence, procs, store
from .cgroups import JobCgroup
from .joblog import CappedLog, log_path, open_private, supervisor_log_path
from .store import JobRow

T = TypeVar("T")

WAKE_SIGNAL = signal.SIGUSR1
# How often the record is re-read while the job runs (a wake-up makes it immediate).
RECORD_POLL_SECONDS = 0.5
# While waiting for the job's processes to end: the pauses between two looks.
LOOKS = Backoff(first=0.01, cap=0.25)
# Pauses between tries of a database write that failed (disk full, read-only): it is retried until it lands.
DATABASE_RETRIES = Backoff(first=0.1, cap=5.0)
_READ_CHUNK = 65536
log = logging.getLogger("cancel_job_mcp.supervisor")


def exit_code_of(wait_status: int) -> int:
    """Shell convention: a process killed by signal N exits with 128 + N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class Events:
    """The supervisor's one wait: for a signal (a child ended, a wake-up), the job's output, or a timeout."""

    def __init__(self) -> None:
        self._signals, writer = os.pipe()
        os.set_blocking(self._signals, False)
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
        for signum in (signal.SIGCHLD, WAKE_SIGNAL):
            signal.signal(signum, lambda *_: None)
        self.woken = False
        self.output: int | None = None
        self.log: CappedLog | None = None
        self.exited: dict[int, int] = {}  # pid -> exit code, for the children reaped (and the leader)
        # The running attempt's leader: its zombie is kept until the stop is complete (see `reap`).
        self.leader: int | None = None

    def wait(self, timeout: float) -> None:
        readable = [self._signals] if self.output is None else [self._signals, self.output]
        ready, _, _ = select.select(readable, [], [], max(0.0, timeout))
        if self._signals in ready:
            received = os.read(self._signals, 4096)
            self.woken = self.woken or WAKE_SIGNAL in received
        if self.output is not None and self.output in ready:
            self.copy_output()
        self.reap()

    def reap(self) -> None:
        """Collect every ended child (orphans re-parented to this subreaper too) but the attempt's
        leader: its exit code is read without reaping it, so its zombie keeps the job's process group
        id from being reused and a killpg of that group reaches the job's processes only."""
        for pid in procs.children(os.getpid()):
            if pid == self.leader:
                continue
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped:
                self.exited[pid] = exit_code_of(status)
        if self.leader is not None and self.leader not in self.exited:
            ended = os.waitid(os.P_PID, self.leader, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if ended is not None and ended.si_pid == self.leader:
                killed = ended.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
                self.exited[self.leader] = 128 + ended.si_status if killed else ended.si_status

    def none_left(self) -> bool:
        """Reap the leader's zombie and every other child; True if waitpid then answers ECHILD: no
        process of the job is left, since every one of them is in this subreaper's subtree."""
        self.leader = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False  # a child still runs: the stop goes on
            self.exited.setdefault(pid, exit_code_of(status))

    def close_output(self) -> None:
        """Copy what is left of the job's output and close the pipe."""
        if self.output is not None:
            self.copy_output()
        if self.output is not None:
            os.close(self.output)
            self.output = None

    def copy_output(self) -> None:
        assert self.output is not None
        assert self.log is not None
        for _ in range(16):  # a bounded share per wait, so a chatty job cannot starve the rest
            try:
                data = os.read(self.output, _READ_CHUNK)
            except BlockingIOError:
                return
            if not data:
                os.close(self.output)
                self.output = None
                return
            self.log.write(data)


class Supervisor:
    def __init__(self, home: Path, conn: sqlite3.Connection, row: JobRow, events: Events) -> None:
        self.home = home
        self.conn = conn
        self.job_id = row.record["id"]
        self.row = row
        self.events = events
        self.me = os.getpid()
        self.leader: subprocess.Popen[bytes] | None = None
        self.cgroup: JobCgroup | None = None  # the attempt's, where one can be made (cgroups.py)
        # What a successor would need, kept here and written only once a stop takes a while: a quick
        # stop costs one write (the recorded stop), so hundreds of them do not queue for the write lock.
        self.term_sent_at: float | None = row.term_sent_at
        self.leader_exit: int | None = row.leader_exit
        self._recorded = {
            "term_sent_at": row.term_sent_at is not None,
            "leader_exit": row.leader_exit is not None,
        }

    # -- the database, retried until it answers ------------------------------------------------

    def db(self, operation: Callable[..., T], *args: object) -> T:
        pauses = iter(DATABASE_RETRIES)
        while True:
            try:
                return operation(self.conn, self.job_id, *args)
            except sqlite3.Error as error:
                pause = next(pauses)
                log.warning(
                    "database %s: %s; retrying in %.1f s", store.database_path(self.home), error, pause
                )
                self.events.wait(pause)

    def current(self) -> JobRow:
        row = self.db(store.get)
        assert row is not None, "a job is never deleted while it has an owner"
        self.row = row
        return row

    # -- the job's processes --------------------------------------------------------------------

    def processes(self) -> dict[int, procs.ProcessInfo]:
        """The job's live processes: all among the supervisor's own descendants (it is a subreaper)."""
        return procs.descendants(self.me)

    def note_leader_exit(self) -> None:
        if self.leader is None or self.leader_exit is not None:
            return
        code = self.events.exited.get(self.leader.pid)
        if code is not None:
            self.leader.returncode = code  # reaped here, not by Popen
            self.leader_exit = code

    def record_progress(self) -> None:
        """Write when SIGTERM was sent and how the leader exited, for a successor, once each."""
        if self.term_sent_at is not None and not self._recorded["term_sent_at"]:
            self.db(store.set_term_sent, self.term_sent_at)
            self._recorded["term_sent_at"] = True
        if self.leader_exit is not None and not self._recorded["leader_exit"]:
            self.db(store.set_leader_exit, self.leader_exit)
            self._recorded["leader_exit"] = True

    def stop(self) -> None:
        """Stop the job's processes and return only once none is left (`Events.none_left`).

        SIGTERM to every process of the job (unless it was sent already), and to each one that appears
        later; once the grace period, timed on the boot clock from the first SIGTERM, is over, SIGKILL
        to whatever is found, again at every look, until waitpid answers ECHILD."""
        pauses = iter(LOOKS)
        signalled: set[procs.ProcessInfo] = set()
        killing = first_look = False
        while True:
            self.events.reap()
            self.note_leader_exit()
            found = self.processes()
            populated = self.cgroup is not None and self.cgroup.populated()
            if not found and not populated and self.events.none_left():
                self.note_leader_exit()
                if self.cgroup is not None:
                    self.cgroup.remove()
                return
            now = procs.boot_clock()
            if self.term_sent_at is None:
                self.term_sent_at = now
                log.info("sent SIGTERM")
                self.note_signal(evidence.SIGTERM)
                self.signal_job(signal.SIGTERM, found)
            elif now >= self.term_sent_at + self.row.grace_seconds:
                if not killing:
                    log.info("grace period over: SIGKILL")
                    self.note_signal(evidence.SIGKILL)
                killing = True
                self.signal_job(signal.SIGKILL, found)
            else:  # processes that appeared since get their SIGTERM too
                for info in set(found.values()) - signalled:
                    procs.signal_descendant(info, self.me, signal.SIGTERM)
            signalled.update(found.values())
            if first_look:
                self.record_progress()  # the stop takes a while: a successor may need to know
            first_look = True
            kill_in = self.term_sent_at + self.row.grace_seconds - now
            pause = next(pauses)
            self.events.wait(min(pause, kill_in) if kill_in > 0 else pause)

    def signal_job(self, signum: int, found: dict[int, procs.ProcessInfo]) -> None:
        """Signal the job's process group (while the leader's unreaped zombie holds its id, a killpg
        reaches no one else) and each process `found` in this subreaper's subtree outside that group
        (a daemon that called setsid()), verified through a pidfd just before; SIGKILL goes to the
        attempt's cgroup too, all of it at once."""
        if self.cgroup is not None and signum == signal.SIGKILL:
            self.cgroup.kill()
        group = self.events.leader
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signum)
        for info in found.values():
            if info.pgrp != group:
                procs.signal_descendant(info, self.me, signum)

    def note_signal(self, name: str) -> None:
        """For the cancel's answer: which signal was sent, and when (evidence.py)."""
        evidence.note(self.home, self.job_id, name, self.row.grace_seconds)

    # -- the job's life -------------------------------------------------------------------------

    def run(self) -> None:
        if self.row.status == JobStatus.CANCELED:  # before its command started: nothing to stop
            self.db(store.record_stop, None)
        elif self.row.status == JobStatus.SUBMITTED:
            self.run_attempts()

    def run_attempts(self) -> None:
        config = self.row.record["config"]
        command: list[str] = config["command"]
        timeout = self.row.record["timeout_seconds"]
        retries = int(self.row.record["backoff_limit"])
        deadline = time.monotonic() + timeout if timeout > 0 else None
        path = log_path(self.home, self.job_id)
        try:
            self.events.log = CappedLog(path, self.row.log_limit or DEFAULT_LOG_LIMIT)
        except OSError as error:
            self.db(store.finish, JobStatus.FAILED, None, f"Could not open its log {path}: {error.strerror}.")
            return
        for attempt in range(retries + 1):
            try:
                self.start(command, config["cwd"], attempt)
            except OSError as error:
                self.db(store.finish, JobStatus.FAILED, None, f"Could not start {command[0]!r}: {error}")
                return
            assert self.leader is not None
            leader = procs.identify(self.leader.pid)
            if not self.db(store.mark_working, leader.encode(), attempt):  # canceled meanwhile
                self.current()
                self.stop()
                self.db(store.record_stop, self.leader_exit)
                return
            self.current()
            outcome = self.watch(deadline)
            self.stop()  # the attempt is over: nothing of it may outlive it
            code = self.leader_exit
            if outcome == "canceled" or self.current().status == JobStatus.CANCELED:
                self.db(store.record_stop, code)
                return
            if outcome == "timed_out":
                reason = f"Timed out after {timeout:g} seconds; the job's processes were stopped."
                self.db(store.finish, JobStatus.FAILED, code, reason)
                return
            if code == 0:
                self.db(store.finish, JobStatus.COMPLETED, 0, None)
                return
            if attempt == retries:
                attempts = f"{retries + 1} attempts" if retries else "1 attempt"
                self.db(store.finish, JobStatus.FAILED, code, f"Exited with code {code} after {attempts}.")
                return

    def start(self, command: list[str], cwd: str, attempt: int) -> None:
        self.cgroup = JobCgroup.create(self.job_id, attempt)
        reader, writer = os.pipe()
        try:
            self.leader = subprocess.Popen(
                command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, procs.JOB_TAG_VARIABLE: self.job_id},
                preexec_fn=self.cgroup.join if self.cgroup is not None else None,
            )  # fmt: skip
        except OSError:
            os.close(reader)
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        finally:
            os.close(writer)
        os.set_blocking(reader, False)
        self.events.leader = self.leader.pid
        self.events.close_output()  # a previous attempt's, whose writers are all gone
        self.events.output = reader
        self.term_sent_at = self.leader_exit = None  # mark_working clears them in the record too
        self._recorded = dict.fromkeys(self._recorded, False)

    def watch(self, deadline: float | None) -> str:
        """Wait for the attempt to end: "exited", "canceled" or "timed_out"."""
        next_read = time.monotonic() + RECORD_POLL_SECONDS
        while True:
            now = time.monotonic()
            wake_at = next_read if deadline is None else min(next_read, deadline)
            self.events.wait(wake_at - now)
            self.note_leader_exit()
            if self.events.woken or time.monotonic() >= next_read or self.leader_exit is not None:
                self.events.woken = False
                next_read = time.monotonic() + RECORD_POLL_SECONDS
                if self.current().status == JobStatus.CANCELED:
                    return "canceled"
            if self.leader_exit is not None:
                return "exited"
            if deadline is not None and time.monotonic() >= deadline:
                return "timed_out"

    def close(self) -> None:
        self.events.close_output()
        if self.events.log is not None:
            self.events.log.close()


def take_ownership(conn: sqlite3.Connection, job_id: str, lease: str) -> JobRow | None:
    """Swap the start lease `submit` gave this supervisor for its own identity; None if the lease is
    not a start lease or was lost (the job then has another owner, which never runs its command)."""
    start = store.lease_of(lease)
    me = procs.identify(os.getpid()).encode()
    if start is None or not start.start or not store.change_owner(conn, job_id, lease, me):
        return None
    return store.get(conn, job_id)


def supervise(home: Path, job_id: str, lease: str) -> None:
    events = Events()  # before anyone can find this process: a wake-up must never find it unprepared
    procs.become_subreaper()
    with store.connect(store.database_path(home)) as conn:
        row = take_ownership(conn, job_id, lease)
        if row is None:
            log.info("job %s has another owner; exiting", job_id)
            return
        supervisor = Supervisor(home, conn, row, events)
        try:
            supervisor.run()
        finally:
            supervisor.close()


def spawn(home: Path, lease: str, job_id: str | None = None) -> None:
    """Start a process that outlives its caller (its own session, no inherited terminal): the
    supervisor of `job_id`, or without one the state directory's successor. It acts once it has
    swapped `lease` for its identity."""
    command = [sys.executable, "-m", __package__ or "", "--home", os.fspath(home), "--lease", lease]
    command += [job_id] if job_id is not None else []
    log_file = supervisor_log_path(home, job_id) if job_id is not None else home / "logs" / "successor.log"
    output = open_private(log_file, os.O_WRONLY | os.O_APPEND)
    try:
        subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        )
    finally:
        os.close(output)
