"""End to end on a real Temporal dev server with a real worker (issue #25: "must show"): workflows started
through Temporal's own HTTP API, then canceled, read and listed through a real MCP client talking to the
server as a stdio subprocess, configured by a TOML file with two `kind = "temporal"` tables (a patient
grace period for workflows that handle the cancel, a short one for the workflow that ignores it).

The server and worker are the session's `temporal_server` fixture (tests/conftest.py,
tests/temporal_cluster.py); they skip, saying why, when the Temporal CLI is not installed
(`.ci/install-temporal.sh`). What the
workflows' code did is seen in the files they leave (tests/temporal_worker.py), what Temporal recorded
through its own API.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema
from cancel_job_mcp.stops import STOP_META_KEY

from ..conftest import client, stdio_server
from ..listing import all_pages
from ..temporal_cluster import TemporalServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("temporal_server")]

RECORD = Draft7Validator(load_schema("get_job.output"))
# list_jobs keeps Temporal's own order, open executions first (the README's Temporal section).
in_temporals_order = functools.partial(all_pages, newest_first=False)
CANCELED = Draft7Validator(load_schema("cancel_job.output"))
PATIENT_GRACE = 30
HASTY_GRACE = 2


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session serves every test here


@pytest.fixture(scope="module")
async def session(
    temporal_server: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    home = tmp_path_factory.mktemp("home")
    config = home / "temporal.toml"
    config.write_text(
        "[backends.patient]\n"
        'kind = "temporal"\n'
        f'base_url = "{temporal_server.url}"\n'
        'projects = ["default", "other"]\n'
        f"grace_period = {PATIENT_GRACE}\n"
        "read_timeout = 10\n"
        "[backends.hasty]\n"
        'kind = "temporal"\n'
        f'base_url = "{temporal_server.url}"\n'
        f"grace_period = {HASTY_GRACE}\n"
    )
    async with client(stdio_server(home, "--config", str(config))) as session:
        yield session


async def call(session: Any, tool: str, **arguments: Any) -> Any:
    return await session.call_tool(tool, arguments)


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    return text


async def test_a_workflow_that_handles_the_cancel_closes_canceled_within_the_grace_after_its_cleanup(
    temporal_server: TemporalServer, session: Any
) -> None:
    workflow_id, mark = temporal_server.start("Graceful")
    temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    result = await session.call_tool(
        "cancel_job", {"project_reference": "default", "job_id": workflow_id}, progress_callback=on_progress
    )
    assert not result.is_error, result.content[0].text
    record = result.structured_content
    CANCELED.validate(record)
    assert (record["id"], record["project_id"], record["status"]) == (workflow_id, "default", "canceled")
    assert record["target"] == "Graceful"
    assert record["completed_at"] is not None
    assert record["failed_reason"] == "The workflow was canceled: it handled a cancel request and closed."
    stop = record["config"]["_provider"]["stop"]
    assert stop["terminated"] is False
    assert stop["seconds_to_close"] < PATIENT_GRACE
    facts = result.meta[STOP_META_KEY]  # the evidence: it closed on its own, within the grace
    assert (facts["stopped"], facts["terminated"], facts["closed_as"]) == (True, False, "CANCELED")
    assert facts["grace_period_seconds"] == PATIENT_GRACE
    assert result.content[1].text.startswith(f"Workflow {workflow_id} closed as CANCELED ")
    assert result.content[1].text.endswith("within its grace period of 30 s: it handled the cancel itself.")
    assert temporal_server.status(workflow_id) == "CANCELED"
    assert mark.with_name(f"{mark.name}.cleanup").exists(), "the workflow's cleanup ran"
    events = temporal_server.event_types(workflow_id)
    assert events.count("WORKFLOW_EXECUTION_CANCEL_REQUESTED") == 1
    assert "WORKFLOW_EXECUTION_TERMINATED" not in events
    assert all(total == PATIENT_GRACE for _, total, _ in updates), updates
    if updates:  # the workflow may close before the first wait is over
        assert "Cancel requested; waiting up to 30 s" in str(updates[0][2])

    again = await call(session, "cancel_job", project_reference="default", job_id=workflow_id)
    assert not again.is_error, again.content[0].text
    assert again.structured_content["status"] == "canceled"
    assert temporal_server.event_types(workflow_id) == events, "a canceled workflow is sent nothing"


async def test_a_workflow_that_ignores_the_cancel_is_terminated_after_the_grace(
    temporal_server: TemporalServer, session: Any
) -> None:
    workflow_id, mark = temporal_server.start("Stubborn")
    temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    result = await session.call_tool(
        "cancel_job",
        {"project_reference": "hasty:default", "job_id": workflow_id},
        progress_callback=on_progress,
    )
    assert not result.is_error, result.content[0].text
    record = result.structured_content
    CANCELED.validate(record)
    assert record["status"] == "canceled"
    assert record["failed_reason"] == (
        "The workflow was terminated: cancel-job-mcp: the workflow did not close within its grace period of"
        f" {HASTY_GRACE} s after a cancel request, so it was terminated"
    )
    stop = record["config"]["_provider"]["stop"]
    assert stop["terminated"] is True
    assert stop["seconds_to_close"] >= HASTY_GRACE
    facts = result.meta[STOP_META_KEY]  # the evidence: terminated once the grace was over
    assert (facts["stopped"], facts["terminated"], facts["closed_as"]) == (True, True, "TERMINATED")
    assert facts["pending_activities_when_terminated"] == 0, "the workflow was waiting on a timer"
    assert result.content[1].text == (
        f"Workflow {workflow_id} did not close within its grace period of {HASTY_GRACE} s after the cancel"
        f" request, so it was terminated; it closed as TERMINATED {stop['seconds_to_close']:.1f} s after the"
        " request. No activity of it was pending then."
    )
    assert temporal_server.status(workflow_id) == "TERMINATED"
    assert mark.with_name(f"{mark.name}.ignored").exists(), "the workflow saw the cancel request and went on"
    events = temporal_server.event_types(workflow_id)
    assert events.index("WORKFLOW_EXECUTION_CANCEL_REQUESTED") < events.index("WORKFLOW_EXECUTION_TERMINATED")
    assert updates, "progress while the grace period ran"
    assert [done for done, _, _ in updates] == sorted(done for done, _, _ in updates), "progress only grows"
    assert "Cancel requested; waiting up to 2 s" in str(updates[0][2])
    got = await call(session, "get_job", project_reference="default", job_id=workflow_id)
    assert got.structured_content["status"] == "canceled"
    assert got.structured_content["failed_reason"] == record["failed_reason"]


async def test_a_heartbeating_activity_is_cancelled_and_the_workflow_closes_canceled(
    temporal_server: TemporalServer, session: Any
) -> None:
    workflow_id, mark = temporal_server.start("Heartbeating")
    temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
    result = await call(session, "cancel_job", project_reference="default", job_id=workflow_id)
    assert not result.is_error, result.content[0].text
    assert result.structured_content["status"] == "canceled"
    assert result.structured_content["config"]["_provider"]["stop"]["terminated"] is False
    assert result.meta[STOP_META_KEY]["closed_as"] == "CANCELED"
    assert temporal_server.status(workflow_id) == "CANCELED"
    assert mark.with_name(f"{mark.name}.activity-cancelled").exists(), "the activity's code saw the cancel"
    assert "ACTIVITY_TASK_CANCELED" in temporal_server.event_types(workflow_id)


async def test_a_completed_or_failed_workflow_is_not_cancellable_and_is_sent_nothing(
    temporal_server: TemporalServer, session: Any
) -> None:
    for workflow_type, status, temporal_status in (
        ("Quick", "completed", "COMPLETED"),
        ("Failing", "failed", "FAILED"),
    ):
        workflow_id, _ = temporal_server.start(workflow_type)
        temporal_server.wait_for_status(workflow_id, temporal_status)
        events = temporal_server.event_types(workflow_id)
        result = await call(session, "cancel_job", project_reference="default", job_id=workflow_id)
        text = error_text(result)
        assert text.startswith("not_cancellable: "), text
        assert f"already {status}" in text
        assert temporal_server.event_types(workflow_id) == events
        got = await call(session, "get_job", project_reference="default", job_id=workflow_id)
        RECORD.validate(got.structured_content)
        assert got.structured_content["status"] == status
    assert got.structured_content["failed_reason"] == "The workflow failed: the input was rejected: boom"


async def test_an_unknown_id_is_not_found_and_a_bystander_is_untouched(
    temporal_server: TemporalServer, session: Any
) -> None:
    bystander, mark = temporal_server.start("Graceful", prefix="bystander")
    try:
        temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
        for tool in ("cancel_job", "get_job"):
            text = error_text(
                await call(session, tool, project_reference="default", job_id=f"{bystander}-nope")
            )
            assert text.startswith("not_found: "), text
        assert temporal_server.status(bystander) == "RUNNING"
        assert not temporal_server.cancel_requested(bystander)
        assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" not in temporal_server.event_types(bystander)
    finally:
        temporal_server.terminate_if_running(bystander)


async def test_a_workflow_of_another_namespace_is_not_found_and_untouched(
    temporal_server: TemporalServer, session: Any
) -> None:
    elsewhere, mark = temporal_server.start("Graceful", namespace="other")
    try:
        temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
        for reference in ("default", "hasty:default"):
            text = error_text(
                await call(session, "cancel_job", project_reference=reference, job_id=elsewhere)
            )
            assert text.startswith("not_found: "), text
            assert "Temporal namespace 'default'" in text
        assert temporal_server.status(elsewhere, "other") == "RUNNING"
        assert not temporal_server.cancel_requested(elsewhere, "other")
        assert not (mark.with_name(f"{mark.name}.cleanup")).exists()
        got = await call(session, "get_job", project_reference="other", job_id=elsewhere)
        assert got.structured_content["project_id"] == "other"
        assert got.structured_content["status"] == "working"
    finally:
        temporal_server.terminate_if_running(elsewhere, "other")


async def test_wait_job_ends_when_the_workflow_closes(temporal_server: TemporalServer, session: Any) -> None:
    """Canceled through Temporal's own API while wait_job waits: the wait ends with the closed record
    (the backend's wait_for_stop long-polls the close event between reads)."""
    workflow_id, mark = temporal_server.start("Graceful")
    temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
    waiting = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        waiting.set()

    results: list[Any] = []
    async with anyio.create_task_group() as group:

        async def wait() -> None:
            arguments = {"project_reference": "default", "job_id": workflow_id, "timeout_seconds": 50}
            results.append(await session.call_tool("wait_job", arguments, progress_callback=on_progress))

        group.start_soon(wait)
        await waiting.wait()
        temporal_server.http.post(
            f"/api/v1/namespaces/default/workflows/{workflow_id}/cancel", json={"identity": "the test"}
        ).raise_for_status()
    [result] = results
    assert not result.is_error, result.content[0].text
    assert result.structured_content["status"] == "canceled"
    assert result.content[1].text.startswith(f"Job {workflow_id} is canceled: it is terminal"), (
        "not timed out"
    )


async def test_list_and_get_match_the_contract_and_temporals_own_state(
    temporal_server: TemporalServer, session: Any
) -> None:
    running, mark = temporal_server.start("Graceful", prefix="listed")
    done, _ = temporal_server.start("Quick", prefix="listed")
    try:
        temporal_server.wait_for_file(mark.with_name(f"{mark.name}.started"))
        temporal_server.wait_for_status(done, "COMPLETED")
        ids, _ = await in_temporals_order(session, "default", limit=2, project="default")
        assert {running, done} <= set(ids)
        assert len(ids) == len(set(ids)), "each workflow once"
        working, _ = await in_temporals_order(session, "default", limit=1, status="working")
        assert running in working
        assert done not in working
        completed, _ = await in_temporals_order(session, "default", limit=3, status="completed")
        assert done in completed
        assert (await in_temporals_order(session, "default", limit=5, status="submitted")).ids == []
        others, _ = await in_temporals_order(session, "other", limit=5)
        assert running not in others
        assert done not in others

        got = await call(session, "get_job", project_reference="default", job_id=running)
        record = got.structured_content
        RECORD.validate(record)
        described = temporal_server.describe(running)["workflowExecutionInfo"]
        assert (record["status"], record["target"]) == ("working", "Graceful")
        assert record["config"]["task_queue"] == described["taskQueue"]
        assert record["config"]["_provider"]["run_id"] == described["execution"]["runId"]
        assert record["created_at"].startswith(described["startTime"][:19])
        logs = error_text(await call(session, "get_job_logs", project_reference="default", job_id=running))
        assert logs.startswith("not_supported: Temporal does not offer"), logs
        assert "event history" in logs
    finally:
        temporal_server.terminate_if_running(running)
