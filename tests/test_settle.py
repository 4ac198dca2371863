"""Truthful cancel: after a backend accepts a cancel, cancel_job waits until the job has stopped."""

from __future__ import annotations

from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import anyio
import pytest

from cancel_job_mcp.audit import Attempt, AuditLog
from cancel_job_mcp.backends.base import BackendSettings, JobPage, StopHooks, StopPolling
from cancel_job_mcp.backoff import Backoff
from cancel_job_mcp.caller import cli_caller
from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.record import JobRecord
from cancel_job_mcp.routing import Router
from cancel_job_mcp.server import build_server
from cancel_job_mcp.service import JobService
from cancel_job_mcp.stops import STOP_META_KEY

from .conftest import client

ATTEMPT = Attempt("cancel_job", cli_caller())


def record(status: str) -> JobRecord:
    return JobRecord(
        id="job-1", project_id="demo", environment_id=None, branch_id=None, cron_job_id=None, batch_id=None,
        name="job", status=status, target="t", config={}, timeout_seconds=0, backoff_limit=0, exit_code=None,
        failed_reason=None, started_at=None, completed_at=None, created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


class SlowStopBackend(StopHooks):
    """Accepts the stop at once but reports the job working for `reads_until_stopped` more reads."""

    name = kind = "slow"

    def __init__(self, reads_until_stopped: int) -> None:
        self.reads_until_stopped = reads_until_stopped
        self.reads = 0

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        return record("working")

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        self.reads += 1
        return record("canceled" if self.reads >= self.reads_until_stopped else "working")

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def server_with(backend: SlowStopBackend, settle_timeout: float) -> Any:
    settings = BackendSettings(name="slow", kind="slow", projects=("*",), settle_timeout=settle_timeout)
    return build_server(
        JobService(
            Router([settings], factory=lambda _: backend),
            CursorCodec(Path(mkdtemp()) / "key"),
            AuditLog(Path(mkdtemp())),
        )
    )


ARGUMENTS = {"project_reference": "demo", "job_id": "job-1"}


@pytest.mark.anyio
async def test_cancel_waits_until_the_job_is_terminal_and_reports_progress() -> None:
    backend = SlowStopBackend(reads_until_stopped=3)
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with client(server_with(backend, settle_timeout=10), "legacy") as session:
        result = await session.call_tool("cancel_job", ARGUMENTS, progress_callback=on_progress)

    assert result.structured_content["status"] == "canceled"
    assert backend.reads == 3
    assert len(updates) == 3
    assert [total for _, total, _ in updates] == [10, 10, 10]
    assert [done for done, _, _ in updates] == sorted(done for done, _, _ in updates)
    assert "waiting for job job-1 to stop" in str(updates[0][2])
    facts = result.meta[STOP_META_KEY]
    assert [seen["status"] for seen in facts["statuses_seen"]] == ["working", "canceled"]
    assert facts["stopped"] is True
    assert facts["settle_seconds"] >= facts["statuses_seen"][1]["after_seconds"] > 0
    assert "signals" not in facts  # a provider's processes are not ours to signal
    assert result.content[1].text.startswith("Job job-1 stopped: statuses seen working -> canceled; the stop")


@pytest.mark.anyio
async def test_the_wait_budget_bounds_the_wait_and_returns_the_latest_record() -> None:
    backend = SlowStopBackend(reads_until_stopped=1_000)
    async with client(server_with(backend, settle_timeout=0.5), "legacy") as session:
        started = anyio.current_time()
        result = await session.call_tool("cancel_job", ARGUMENTS)
    assert result.structured_content["status"] == "working"
    assert anyio.current_time() - started < 3
    assert backend.reads >= 1
    assert result.meta[STOP_META_KEY]["stopped"] is False
    assert "is still under way" in result.content[1].text
    assert "wait_job" in result.content[1].text


@pytest.mark.anyio
async def test_a_zero_budget_does_not_wait() -> None:
    backend = SlowStopBackend(reads_until_stopped=1)
    async with client(server_with(backend, settle_timeout=0), "legacy") as session:
        result = await session.call_tool("cancel_job", ARGUMENTS)
    assert result.structured_content["status"] == "working"
    assert backend.reads == 0


@pytest.mark.anyio
async def test_a_client_cancel_ends_the_wait_promptly() -> None:
    backend = SlowStopBackend(reads_until_stopped=1_000)
    async with client(server_with(backend, settle_timeout=60), "legacy") as session:
        started = anyio.current_time()
        with anyio.move_on_after(0.5):
            await session.call_tool("cancel_job", ARGUMENTS)
        assert anyio.current_time() - started < 1.5
        reads_at_cancel = backend.reads
        await anyio.sleep(2.5)  # longer than the longest poll interval: a live wait would read again
        assert backend.reads == reads_at_cancel, "the server kept polling after the client canceled"
        ping = await session.call_tool("cancel_job", {"project_reference": "demo"})
        assert ping.is_error, "the session still serves requests"


class RecordedStopBackend(SlowStopBackend):
    """Like the local runtime: `canceled` at once, and the stop recorded (completed_at) later."""

    stop_polling = StopPolling(
        has_stopped=lambda job: job["completed_at"] is not None, pauses=Backoff(first=0.01, cap=0.02)
    )

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        return record("canceled")

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        self.reads += 1
        stopped = self.reads >= self.reads_until_stopped
        return {**record("canceled"), "completed_at": "2026-01-01T00:00:01Z" if stopped else None}


def service_with(backend: SlowStopBackend, settle_timeout: float) -> JobService:
    settings = BackendSettings(name="slow", kind="slow", projects=("*",), settle_timeout=settle_timeout)
    return JobService(
        Router([settings], factory=lambda _: backend),
        CursorCodec(Path(mkdtemp()) / "key"),
        AuditLog(Path(mkdtemp())),
    )


@pytest.mark.anyio
async def test_a_backend_that_records_its_stops_is_waited_for_until_the_record_says_so() -> None:
    backend = RecordedStopBackend(reads_until_stopped=5)
    stop = await service_with(backend, settle_timeout=10).cancel_job("demo", "job-1", ATTEMPT)
    assert stop.record["completed_at"] is not None
    assert stop.stopped
    assert [status for _, status in stop.statuses] == ["canceled"]
    assert backend.reads == 5


@pytest.mark.anyio
async def test_the_wait_ends_before_the_call_deadline_with_the_latest_record() -> None:
    backend = RecordedStopBackend(reads_until_stopped=1_000_000)
    with anyio.fail_after(1.0):  # the server's call timeout: the wait keeps a reserve to answer
        stop = await service_with(backend, settle_timeout=60).cancel_job("demo", "job-1", ATTEMPT)
    assert stop.record["status"] == "canceled"
    assert stop.record["completed_at"] is None
    assert not stop.stopped
    assert backend.reads >= 1
