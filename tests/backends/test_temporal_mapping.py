"""The Temporal mapping (backends/temporal_mapping.py), on answers recorded from a real dev server
(Temporal CLI 1.9.1, Server 1.32) in tests/fixtures/temporal: describe in each state, close events,
a listing. Pure: no server, no network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends.temporal_mapping import (
    close_event,
    duration_seconds,
    execution_info,
    listed_executions,
    to_record,
)
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.schemas import load_schema

from ..conftest import FIXTURES

TEMPORAL_FIXTURES = FIXTURES / "temporal"
RECORD = Draft7Validator(load_schema("get_job.output"))


def recorded(name: str) -> Any:
    return json.loads((TEMPORAL_FIXTURES / f"{name}.json").read_text())


def described(name: str, close: str | None = None) -> dict[str, Any]:
    body = recorded(f"describe_{name}")
    event = close_event(recorded(f"close_{close}")) if close else None
    record = dict(to_record(execution_info(body), "default", close_event=event, described=body))
    RECORD.validate(record)
    return record


def test_a_running_workflow_with_a_pending_activity() -> None:
    body = recorded("describe_running")
    record = described("running")
    info = body["workflowExecutionInfo"]
    assert (record["id"], record["name"], record["project_id"]) == (info["execution"]["workflowId"],) * 2 + (
        "default",
    )
    assert (record["status"], record["target"]) == ("working", "Heartbeating")
    assert record["created_at"] == record["started_at"] == "2026-12-07T02:12:55.730Z"
    assert record["completed_at"] is None
    assert record["updated_at"] == record["created_at"]
    assert record["failed_reason"] is None
    assert record["config"]["task_queue"] == "cjm-tests"
    provider = record["config"]["_provider"]
    assert provider["status"] == "RUNNING"
    assert provider["run_id"] == info["execution"]["runId"] == provider["first_run_id"]
    assert provider["pending_activities"] == 1
    assert provider["cancel_requested"] is False
    assert isinstance(provider["history_length"], int)


def test_completed_is_completed_without_a_reason() -> None:
    record = described("completed")
    assert record["config"]["_provider"]["pending_activities"] == 0
    assert (record["status"], record["target"], record["failed_reason"]) == ("completed", "Quick", None)
    assert record["completed_at"] is not None
    assert record["updated_at"] == record["completed_at"]


def test_failed_takes_the_failure_message_from_the_close_event() -> None:
    record = described("failed", "failed")
    assert record["status"] == "failed"
    assert record["failed_reason"] == "The workflow failed: the input was rejected: boom"


def test_terminated_is_canceled_with_the_terminate_reason() -> None:
    record = described("terminated", "terminated")
    assert record["status"] == "canceled"
    assert record["failed_reason"] == (
        "The workflow was terminated: cancel-job-mcp: the workflow did not close within its grace period of"
        " 2 s after a cancel request, so it was terminated"
    )


def test_canceled_is_canceled_and_says_the_workflow_handled_it() -> None:
    record = described("canceled", "canceled")
    assert record["status"] == "canceled"
    assert record["failed_reason"] == "The workflow was canceled: it handled a cancel request and closed."
    assert record["config"]["_provider"]["cancel_requested"] is True


def test_without_its_close_event_a_closed_run_names_its_status() -> None:
    assert described("failed")["failed_reason"] == "Temporal reports the workflow FAILED."


def test_an_open_run_has_no_close_event() -> None:
    assert close_event(recorded("close_open")) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("TIMED_OUT", "failed"),
        ("CONTINUED_AS_NEW", "completed"),
        ("CANCELED", "canceled"),
        ("TERMINATED", "canceled"),
    ],
)
def test_every_status(status: str, expected: str) -> None:
    info = {
        **recorded("describe_completed")["workflowExecutionInfo"],
        "status": f"WORKFLOW_EXECUTION_STATUS_{status}",
    }
    assert to_record(info, "default")["status"] == expected


def test_a_listing_page_and_its_token() -> None:
    executions, token = listed_executions(recorded("list_page"))
    assert len(executions) == 3
    assert token is not None
    records = [to_record(item, "default") for item in executions]
    for record in records:
        RECORD.validate(record)
        assert record["config"]["_provider"]["pending_activities"] is None  # a listing does not say
    last, end = listed_executions(recorded("list_last_page"))
    assert end is None
    assert {record["id"] for record in records} <= {item["execution"]["workflowId"] for item in last}


def test_durations() -> None:
    assert duration_seconds("0s") == 0
    assert duration_seconds("3600s") == 3600
    assert duration_seconds("8.178931155s") == pytest.approx(8.178931155)
    for bad in (None, 5, "5m", "-1s", "1e9s"):
        assert duration_seconds(bad) == 0


def test_the_year_one_times_temporal_writes_for_none_are_not_read() -> None:
    """Temporal writes `runExpirationTime: 0001-01-01T00:00:00Z` for "no expiration": the mapping does
    not read that field (a time before 1970 is an upstream_error wherever it is read)."""
    assert recorded("describe_running")["workflowExtendedInfo"]["runExpirationTime"].startswith("0001")
    described("running")


@pytest.mark.parametrize(
    "spoil",
    [
        lambda info: info.pop("status"),
        lambda info: info.update(status="WORKFLOW_EXECUTION_STATUS_PAUSED_FOREVER"),
        lambda info: info.update(status=7),
        lambda info: info.pop("execution"),
        lambda info: info.update(execution={"workflowId": "", "runId": "x"}),
        lambda info: info.pop("startTime"),
        lambda info: info.update(startTime="9999-12-31T23:59:59Z"),
        lambda info: info.update(closeTime="yesterday"),
    ],
)
def test_malformed_executions_are_upstream_errors(spoil: Any) -> None:
    info = recorded("describe_completed")["workflowExecutionInfo"]
    spoil(info)
    with pytest.raises(ToolError) as raised:
        to_record(info, "default")
    assert raised.value.code == ErrorCode.UPSTREAM_ERROR


@pytest.mark.parametrize(
    "body",
    [None, [], {"workflowExecutionInfo": []}, {"executions": "x"}, {"executions": [], "nextPageToken": 5}],
)
def test_malformed_answers_are_upstream_errors(body: Any) -> None:
    read = listed_executions if isinstance(body, dict) and "executions" in body else execution_info
    with pytest.raises(ToolError) as raised:
        read(body)
    assert raised.value.code == ErrorCode.UPSTREAM_ERROR
