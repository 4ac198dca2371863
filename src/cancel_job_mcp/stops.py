"""The evidence of a stop: what a cancel did to get the record it answers with, as facts (the cancel's
`_meta` under STOP_META_KEY) and in plain words (its second text block).

For every backend: the statuses seen while the cancel waited and how long it waited. For a backend
that signals the job's processes itself (local): the signals sent and when, the grace period, whether
SIGKILL was needed, and whether any process is left (or when SIGKILL is due, if the stop is still
under way). For a backend that escalates the stop itself (Temporal: a cancel request, then a terminate
once the grace period is over): its own facts and sentence (`Escalation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from .record import JobRecord

STOP_META_KEY = "io.github.cancel-job-mcp/stop"
SIGTERM, SIGKILL = "SIGTERM", "SIGKILL"


@dataclass(frozen=True)
class SignalSent:
    name: str
    sent_at: float  # Unix time


@dataclass(frozen=True)
class Signals:
    """What a backend that signals the job's processes itself knows of its latest stop."""

    sent: tuple[SignalSent, ...]
    grace_seconds: float | None  # None when no signal was sent


@dataclass(frozen=True)
class Escalation:
    """What a backend that escalates a stop itself did (Temporal), in its facts and in a sentence."""

    facts: dict[str, Any]
    words: str


@dataclass(frozen=True)
class Stop:
    """A cancel's answer: the record, and what was seen and done to get it."""

    record: JobRecord
    stopped: bool  # the backend says the job has stopped (local: no process of it is left)
    seconds: float  # how long the cancel waited for the stop
    statuses: tuple[tuple[float, str], ...]  # (seconds into the wait, status) each time it changed
    signals: Signals | None = None
    escalation: Escalation | None = None

    @cached_property
    def _sent_at(self) -> tuple[str, ...]:
        """Each signal's time as text, formatted once for the facts and the words (a formatting costs
        as much as the rest of either)."""
        return tuple(_time(signal.sent_at) for signal in self.signals.sent) if self.signals else ()

    def facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "job_id": self.record["id"],
            "stopped": self.stopped,
            "settle_seconds": round(self.seconds, 3),
            "statuses_seen": [
                {"status": status, "after_seconds": round(after, 3)} for after, status in self.statuses
            ],
        }
        if self.escalation is not None:
            facts |= self.escalation.facts
        if self.signals is not None:
            sent = {signal.name: signal.sent_at for signal in self.signals.sent}
            term, grace = sent.get(SIGTERM), self.signals.grace_seconds
            due = term + grace if term is not None and grace is not None and SIGKILL not in sent else None
            facts |= {
                "signals": [
                    {"signal": signal.name, "sent_at": at}
                    for signal, at in zip(self.signals.sent, self._sent_at, strict=True)
                ],
                "grace_seconds": self.signals.grace_seconds,
                "sigkill_needed": SIGKILL in sent,
                "sigkill_due_at": _time(due) if due is not None and not self.stopped else None,
                "processes_left": not self.stopped,
            }
        return facts

    def words(self) -> str:
        job = self.record["id"]
        if self.escalation is not None:
            return self.escalation.words
        if self.signals is not None:
            return self._signal_words(job, self.signals)
        seen = " -> ".join(status for _, status in self.statuses)
        if self.stopped:
            return f"Job {job} stopped: statuses seen {seen}; the stop settled in {self.seconds:.1f} s."
        return (
            f"The stop of job {job} is still under way: statuses seen {seen} in {self.seconds:.1f} s. Call"
            " wait_job to see it end."
        )

    def _signal_words(self, job: str, signals: Signals) -> str:
        sent = {signal.name: signal.sent_at for signal in signals.sent}
        if SIGTERM not in sent:
            if self.stopped:
                return f"Job {job} stopped: no process of it was running, so none had to be signalled."
            return f"The stop of job {job} is under way: its processes have not been signalled yet."
        sent_at = dict(zip((signal.name for signal in signals.sent), self._sent_at, strict=True))
        term = f"SIGTERM was sent to its processes at {sent_at[SIGTERM]}"
        grace = f"the grace period of {signals.grace_seconds or 0:g} s"
        if SIGKILL in sent:
            done = f"{grace} ran out, so SIGKILL was sent at {sent_at[SIGKILL]}"
        else:
            done = f"they exited within {grace}, so no SIGKILL was needed"
        if self.stopped:
            return f"Job {job} stopped: {term}; {done}. No process of it is left."
        if SIGKILL in sent:
            return f"The stop of job {job} is still under way: {term}; {done}. Call wait_job to see it end."
        due = _time(sent[SIGTERM] + (signals.grace_seconds or 0))
        return (
            f"The stop of job {job} is still under way: {term}; SIGKILL is due at {due} if any of them is"
            " still running. Call wait_job to see it end."
        )


def _time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
