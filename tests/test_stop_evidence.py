"""The evidence of a stop on cancel_job's answer: the record stays the structured content and the first
text block; a second text block says in plain words what was done, and `_meta` holds the same facts.
Real local jobs, really signalled, through a real MCP client."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends.local import procs
from cancel_job_mcp.schemas import load_schema
from cancel_job_mcp.stops import STOP_META_KEY, Signals, SignalSent, Stop

from .conftest import TERM_LOGGER, client, stdio_server, submit, wait_until

# Ignores SIGTERM (only SIGKILL stops it); argv[1] appears once SIGTERM is ignored.
IGNORES_TERM_READY = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open(sys.argv[1], 'w').close()\n"
    "time.sleep(600)\n"
)


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def cancel(session: Any, project: str, job_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(record, facts, words) of a cancel_job answer, its record checked against the contract."""
    result = await session.call_tool("cancel_job", {"project_reference": project, "job_id": job_id})
    assert not result.is_error, result.content[0].text
    record: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == record, "the first text block is the record, unchanged"
    Draft7Validator(load_schema("cancel_job.output")).validate(record)
    assert len(result.content) == 2
    return record, result.meta[STOP_META_KEY], result.content[1].text


@pytest.mark.anyio
async def test_a_job_that_exits_on_sigterm(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "term.log"
    job = submit(home, "evidence", "python3", "-c", TERM_LOGGER, str(marker))
    wait_until(lambda: Path(f"{marker}.ready").exists())
    before = time.time()
    async with client(stdio_server(home)) as session:
        record, facts, words = await cancel(session, "evidence", job["id"])
    assert record["status"] == "canceled"
    assert record["completed_at"] is not None
    assert marker.read_text() == "TERM\n"
    assert [signal["signal"] for signal in facts["signals"]] == ["SIGTERM"]
    assert before <= seconds(facts["signals"][0]["sent_at"]) <= time.time()
    assert facts["grace_seconds"] == 5
    assert facts["sigkill_needed"] is False
    assert facts["sigkill_due_at"] is None
    assert facts["processes_left"] is False
    assert facts["stopped"] is True
    assert facts["statuses_seen"][0]["status"] == "canceled"
    assert words == (
        f"Job {job['id']} stopped: SIGTERM was sent to its processes at {facts['signals'][0]['sent_at']};"
        " they exited within the grace period of 5 s, so no SIGKILL was needed. No process of it is left."
    )


@pytest.mark.anyio
async def test_a_job_that_needs_sigkill(home: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    job = submit(
        home, "evidence", "python3", "-c", IGNORES_TERM_READY, str(ready), options=("--grace-period", "0.5")
    )
    wait_until(ready.exists)
    async with client(stdio_server(home)) as session:
        record, facts, words = await cancel(session, "evidence", job["id"])
    assert record["completed_at"] is not None
    assert [signal["signal"] for signal in facts["signals"]] == ["SIGTERM", "SIGKILL"]
    term, kill = (seconds(signal["sent_at"]) for signal in facts["signals"])
    assert kill - term >= 0.5, "SIGKILL only once the grace period was over"
    assert facts["grace_seconds"] == 0.5
    assert facts["sigkill_needed"] is True
    assert facts["processes_left"] is False
    assert "the grace period of 0.5 s ran out, so SIGKILL was sent at" in words
    assert words.endswith("No process of it is left.")


@pytest.mark.slow  # a cancel answered before its stop is over, retried until SIGTERM is noted
@pytest.mark.anyio
async def test_a_stop_still_under_way_says_when_sigkill_is_due(home: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    job = submit(
        home, "evidence", "python3", "-c", IGNORES_TERM_READY, str(ready), options=("--grace-period", "20")
    )
    wait_until(ready.exists)
    # The call's deadline (3 s) ends the cancel's wait long before the 20 s grace period.
    async with client(stdio_server(home, "serve", "--call-timeout", "3")) as session:
        for _ in range(20):
            record, facts, words = await cancel(session, "evidence", job["id"])
            if facts["signals"]:
                break
        else:
            pytest.fail("no SIGTERM noted")
    assert record["status"] == "canceled"
    assert record["completed_at"] is None
    assert facts["stopped"] is False
    assert facts["processes_left"] is True
    assert facts["sigkill_needed"] is False
    term = seconds(facts["signals"][0]["sent_at"])
    assert seconds(facts["sigkill_due_at"]) == pytest.approx(term + 20, abs=0.002)
    assert f"SIGKILL is due at {facts['sigkill_due_at']}" in words
    assert "Call wait_job to see it end." in words
    # Not 20 s more of a job that ignores SIGTERM beside the rest of the suite.
    procs.send_signals(procs.tagged_by_job(procs.process_table()).get(job["id"], []), signal.SIGKILL)


def stop(signals: Signals | None, stopped: bool = True) -> Stop:
    record: Any = {"id": "job_1", "status": "canceled"}
    return Stop(record, stopped, 1.25, ((0.0, "working"), (1.2, "canceled")), signals)


def test_the_words_and_facts_of_each_kind_of_stop() -> None:
    provider = stop(None)
    assert (
        provider.words() == "Job job_1 stopped: statuses seen working -> canceled; the stop settled in 1.2 s."
    )
    assert provider.facts() == {
        "job_id": "job_1",
        "stopped": True,
        "settle_seconds": 1.25,
        "statuses_seen": [
            {"status": "working", "after_seconds": 0.0},
            {"status": "canceled", "after_seconds": 1.2},
        ],
    }
    assert "still under way" in stop(None, stopped=False).words()
    nothing = stop(Signals((), None))
    assert nothing.words() == "Job job_1 stopped: no process of it was running, so none had to be signalled."
    assert nothing.facts()["signals"] == []
    assert nothing.facts()["sigkill_needed"] is False
    waiting = stop(Signals((SignalSent("SIGTERM", 0.0),), 5), stopped=False)
    assert waiting.facts()["sigkill_due_at"] == "1970-01-01T00:00:05.000Z"
    assert "SIGKILL is due at 1970-01-01T00:00:05.000Z" in waiting.words()
