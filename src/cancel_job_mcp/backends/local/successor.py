"""The state directory's successor: the one process that takes over jobs whose supervisor is lost.

Reads never start a job and never stop one. A read or a cancel that finds a job whose owner is gone
(its supervisor died, never started, or has been stopped, SIGSTOP, for longer than
`STOPPED_BOUND_SECONDS`) wakes the successor, starting it if none runs: one process for the whole
state directory, named in the `successor` row, which a conditional update lets one caller take.

The successor never runs a command. For each job it takes over it stops the processes it can verify
as the job's (the job's environment tag, a start after the job's leader), SIGTERM first and SIGKILL
once the job's grace period is over, then records what happened: a canceled job's stop, a running
job `failed`, and a job still `submitted` `failed` too (its supervisor died before marking it
working: the command never runs twice). It exits once nothing is left to take over or watch.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ...backoff import Backoff
from ...record import JobStatus
from . import procs, store
from .cgroups import JobCgroup
from .procs import ProcessIdentity, ProcessInfo
from .store import JobRow
from .supervisor import LOOKS, WAKE_SIGNAL, spawn

# A supervisor seen stopped this long (boot clock) cannot act for its job: it is killed and replaced.
STOPPED_BOUND_SECONDS = 5.0
# Between two looks: while it stops a job, at a supervisor's pace (`LOOKS`); while it only watches
# stopped supervisors, up to WATCHING's cap; after a database error, from the slowest look on.
WATCHING = Backoff(first=LOOKS.first, cap=0.5)
AFTER_ERROR = Backoff(first=LOOKS.cap, cap=WATCHING.cap)
# A job is recorded stopped after this many looks in a row that found none of its processes.
EMPTY_LOOKS = 2
log = logging.getLogger("cancel_job_mcp.successor")


class Owner(enum.Enum):
    ALIVE = "alive"
    STARTING = "starting"
    STOPPED = "stopped"
    LOST = "lost"


def owner_state(owner: str | None) -> Owner:
    """What the `supervisor` column of an unsettled job says of its owner: one /proc read at most."""
    lease = store.lease_of(owner)
    if lease is not None:
        return Owner.LOST if lease.expired() else Owner.STARTING
    if owner is None:
        return Owner.LOST
    identity = ProcessIdentity.decode(owner)
    if not procs.is_running(identity):
        return Owner.LOST
    return Owner.STOPPED if procs.is_stopped(identity) else Owner.ALIVE


def wake(conn: sqlite3.Connection, home: Path) -> None:
    """Wake the state directory's successor (it looks at every job at once), starting it if none runs
    or is starting. Raises sqlite3.Error or OSError; the next read tries again."""
    owner = store.successor_owner(conn)
    lease = store.lease_of(owner)
    if lease is not None and not lease.expired():
        return
    if lease is None and owner is not None and procs.wake(ProcessIdentity.decode(owner), WAKE_SIGNAL):
        return
    new_lease = store.new_lease()
    if store.change_successor(conn, owner, new_lease):
        log.info("starting the successor of %s", home)
        spawn(home, new_lease)


@dataclass
class Takeover:
    """A job this successor owns, and how far its stop has gone."""

    row: JobRow
    lost: str | None
    # A SIGTERM the lost supervisor sent (its grace period goes on) or this successor's.
    term_sent_at: float | None = None
    empty_looks: int = 0
    signalled: set[ProcessInfo] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.term_inherited = self.term_sent_at is not None
        # The lost supervisor's cgroup for the attempt, if it made one beside this process's own.
        self.cgroup = JobCgroup.find(self.job_id, self.row.attempt)

    @property
    def job_id(self) -> str:
        return self.row.record["id"]

    @property
    def not_before(self) -> int:
        """Every process of the job started at or after its leader (when one was recorded)."""
        if self.row.process is None:
            return 0
        return ProcessIdentity.decode(self.row.process).start_ticks or 0


class Successor:
    def __init__(self, home: Path, conn: sqlite3.Connection, me: str) -> None:
        self.home = home
        self.conn = conn
        self.me = me
        self.takeovers: dict[str, Takeover] = {}
        self.stopped_since: dict[str, tuple[str, float]] = {}  # job id -> (its stopped owner, since)
        self._signals, writer = os.pipe()
        os.set_blocking(self._signals, False)
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
        signal.signal(WAKE_SIGNAL, lambda *_: None)

    def run(self) -> None:
        pauses = iter(WATCHING)
        while True:
            try:
                self.look()
            except sqlite3.Error as error:  # disk full, a lock held too long: the next look tries again
                log.warning("database %s: %s", store.database_path(self.home), error)
                pauses = iter(AFTER_ERROR)
            if not self.takeovers and not self.stopped_since and not self.stay():
                return
            pause = next(pauses)
            if self.takeovers:
                pause = min(pause, LOOKS.cap)
            ready, _, _ = select.select([self._signals], [], [], pause)
            if ready:
                os.read(self._signals, 4096)
                pauses = iter(WATCHING)

    def stay(self) -> bool:
        """Give up the successor's place; take it back (True) if a job came to need it meanwhile."""
        store.change_successor(self.conn, self.me, None)
        if not any(self.needs_successor(row) for row in store.unsettled(self.conn)):
            return False
        return store.change_successor(self.conn, None, self.me)

    def needs_successor(self, row: JobRow) -> bool:
        return row.supervisor != self.me and owner_state(row.supervisor) in (Owner.LOST, Owner.STOPPED)

    def look(self) -> None:
        """Take over the jobs that need it, and move each stop under way one step on."""
        now = procs.boot_clock()
        rows = store.unsettled(self.conn)
        # A stopped supervisor that resumed and settled its job: nothing left to watch there.
        for job_id in self.stopped_since.keys() - {row.record["id"] for row in rows}:
            del self.stopped_since[job_id]
        for row in rows:
            job_id = row.record["id"]
            if job_id in self.takeovers:
                self.takeovers[job_id].row = row
                continue
            state = owner_state(row.supervisor)
            if state is Owner.STOPPED:
                self.watch_stopped(row, now)
            elif state is Owner.LOST:
                self.take(row)
            else:
                self.stopped_since.pop(job_id, None)
        if not self.takeovers:
            return
        table = procs.process_table()
        tagged = procs.tagged_by_job(table)
        for takeover in list(self.takeovers.values()):
            found = [i for i in tagged.get(takeover.job_id, ()) if i.start_ticks >= takeover.not_before]
            if self.step(takeover, found, procs.boot_clock()):
                del self.takeovers[takeover.job_id]

    def watch_stopped(self, row: JobRow, now: float) -> None:
        job_id = row.record["id"]
        assert row.supervisor is not None
        if job_id not in self.stopped_since:
            log.info("job %s: its supervisor is stopped; it is replaced unless it resumes", job_id)
        seen, since = self.stopped_since.setdefault(job_id, (row.supervisor, now))
        if seen != row.supervisor:
            self.stopped_since[job_id] = (row.supervisor, now)
        elif now - since >= STOPPED_BOUND_SECONDS:
            log.info("job %s: its supervisor has been stopped for %.0f s; replacing it", job_id, now - since)
            procs.wake(ProcessIdentity.decode(seen), signal.SIGKILL)
            del self.stopped_since[job_id]
            self.take(row)

    def take(self, row: JobRow) -> None:
        if store.change_owner(self.conn, row.record["id"], row.supervisor, self.me):
            log.info("job %s: taken over from %s", row.record["id"], row.supervisor)
            self.takeovers[row.record["id"]] = Takeover(row, row.supervisor, row.term_sent_at)

    def step(self, takeover: Takeover, found: list[ProcessInfo], now: float) -> bool:
        """Signal what is left of the job (`found`); True once none of its processes was found
        `EMPTY_LOOKS` times in a row and the outcome is recorded."""
        if not found and not (takeover.cgroup is not None and takeover.cgroup.populated()):
            takeover.empty_looks += 1
            if takeover.empty_looks >= EMPTY_LOOKS:
                self.record_outcome(takeover)
                return True
            return False
        takeover.empty_looks = 0
        if takeover.term_inherited:  # what the lost supervisor found then got its SIGTERM
            takeover.signalled.update(found)
            takeover.term_inherited = False
        if takeover.term_sent_at is None:
            takeover.term_sent_at = now
            store.set_term_sent(self.conn, takeover.job_id, now)
            log.info("job %s: sent SIGTERM", takeover.job_id)
        overdue = now - takeover.term_sent_at >= takeover.row.grace_seconds
        if overdue and takeover.cgroup is not None:
            takeover.cgroup.kill()
        for info in found:
            if overdue or info not in takeover.signalled:
                signum = signal.SIGKILL if overdue else signal.SIGTERM
                procs.signal_member(info, takeover.job_id, takeover.not_before, signum)
                takeover.signalled.add(info)
        return False

    def record_outcome(self, takeover: Takeover) -> None:
        row = store.get(self.conn, takeover.job_id)
        assert row is not None
        if row.status == JobStatus.SUBMITTED:
            reason = (
                f"{_gone(takeover.lost)} before it marked the job working. A job's command is started"
                " only once, so any process of it was stopped and the job marked failed."
            )
            store.finish(self.conn, takeover.job_id, JobStatus.FAILED, None, reason)
        elif row.status == JobStatus.WORKING:
            reason = f"{_gone(takeover.lost)}, so the job was stopped and marked failed."
            store.finish(self.conn, takeover.job_id, JobStatus.FAILED, None, reason)
        else:
            store.record_stop(self.conn, takeover.job_id, row.leader_exit)
        if takeover.cgroup is not None:
            takeover.cgroup.remove()
        log.info("job %s: stopped; recorded", takeover.job_id)


def _gone(lost: str | None) -> str:
    if lost is None or store.lease_of(lost) is not None:
        return "The job's supervisor did not start"
    return f"The job's supervisor (pid {ProcessIdentity.decode(lost).pid}) is gone"


def succeed(home: Path, lease: str) -> None:
    """The successor's life: swap `lease` for this process's identity, then take over until done."""
    me = procs.identify(os.getpid()).encode()
    with store.connect(store.database_path(home)) as conn:
        if not store.change_successor(conn, lease, me):
            log.info("another successor took the place; exiting")
            return
        Successor(home, conn, me).run()
