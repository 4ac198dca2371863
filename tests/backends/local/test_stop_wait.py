"""A cancel's wait for the recorded stop ends when the job's supervisor exits, not at the next poll.

The supervisor records the stop and then exits, so `LocalBackend.wait_for_stop` watches its pidfd; a job
without a live supervisor (unknown, lost, or a successor still starting) falls back to a plain pause.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from cancel_job_mcp.backends.local import procs, store
from cancel_job_mcp.backends.local.runtime import LocalBackend, submit_job

from ...battery_support import db_row, wait_ignoring_sigterm
from ...conftest import wait_for_process_group, wait_until

PROJECT = "stop-wait"


def owner(home: Path, job_id: str) -> str | None:
    """The job's supervisor, once it has swapped its start-up lease for its identity."""
    supervisor: str | None = db_row(home, job_id)["supervisor"]
    return supervisor if store.lease_of(supervisor) is None else None


@pytest.mark.anyio
async def test_the_pause_ends_when_the_supervisor_has_recorded_the_stop(home: Path, tmp_path: Path) -> None:
    # The job ignores SIGTERM and ends when the test writes to a FIFO, so its supervisor is surely alive
    # when the pause starts (a job that exits on SIGTERM may be gone, supervisor and all, by then).
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    job = submit_job(home, PROJECT, ["sh", "-c", f"trap '' TERM; read line < {fifo}"], grace_seconds=600)
    wait_ignoring_sigterm(wait_for_process_group(home, job["id"]))
    supervisor = procs.ProcessIdentity.decode(db_row(home, job["id"])["supervisor"])
    backend = LocalBackend(home)
    try:
        await backend.cancel_job(PROJECT, job["id"])
        assert procs.is_running(supervisor), "SIGTERM sent, the grace period running"
        with anyio.fail_after(60):  # far below the pause asked for: only the supervisor's exit ends it
            async with anyio.create_task_group() as group:
                group.start_soon(backend.wait_for_stop, PROJECT, job["id"], 3600)
                await wait_all_tasks_blocked()  # the pause is watching the supervisor
                await anyio.to_thread.run_sync(fifo.write_text, "go\n")
        record = await backend.get_job(PROJECT, job["id"])
    finally:
        await backend.aclose()
    assert not procs.is_running(supervisor)
    assert record["status"] == "canceled"
    assert record["completed_at"] is not None, "the supervisor exits only once the stop is recorded"


@pytest.mark.anyio
async def test_without_a_live_supervisor_it_is_a_plain_pause(home: Path) -> None:
    job = submit_job(home, PROJECT, ["true"])
    supervisor = procs.ProcessIdentity.decode(wait_until(lambda: owner(home, job["id"]), timeout=60))
    wait_until(lambda: not procs.is_running(supervisor), timeout=60)
    backend = LocalBackend(home)
    try:
        await backend.get_job(PROJECT, job["id"])  # opens the event loop's reader
        for job_id in (job["id"], "job_unknown"):  # its supervisor has exited; no such job
            started = anyio.current_time()
            await backend.wait_for_stop(PROJECT, job_id, 0.2)
            assert anyio.current_time() - started >= 0.2
    finally:
        await backend.aclose()
