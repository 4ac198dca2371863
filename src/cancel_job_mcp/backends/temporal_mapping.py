"""Temporal's answers as our records (pure): a workflow execution is a job, its namespace the project.

Read from the JSON of Temporal's HTTP API (grpc-gateway, checked against the Temporal CLI 1.9.1 dev
server, Temporal Server 1.32): `DescribeWorkflowExecution` (`workflowExecutionInfo` and
`executionConfig`), one execution of `ListWorkflowExecutions`, and the close event of a run's history.

Job id and runs: the job id is the workflow id; it names the workflow's latest run (Temporal's own
meaning of a workflow id without a run id). The run shown is in `config._provider.run_id`, the chain
of runs it belongs to in `first_run_id` (a workflow that continued as new keeps its workflow id and
first run id; a workflow id reused after the chain closed starts another chain).

Statuses: RUNNING -> working; COMPLETED -> completed; FAILED, TIMED_OUT -> failed; CANCELED,
TERMINATED -> canceled. CONTINUED_AS_NEW is a run that handed over to a new run of the same workflow
id: it is not the job's state (the latest run is) and listings leave such runs out; read by itself
such a run maps to completed, as it finished its part. A status this module does not know is an
upstream_error naming it (a status guessed wrong could hide a running workflow).

Fields: name = the workflow id; target = the workflow type; created_at = startTime; started_at = the
same (Temporal reports a workflow RUNNING from its start; `executionTime`, when a delayed or cron
start begins, is in `config`); completed_at = closeTime once closed; updated_at = the later of the
two. timeout_seconds = the workflow execution timeout (0 = none; describe only). backoff_limit = 0 (a
workflow's retry policy lives in its start request, which describe does not return). failed_reason
comes from the run's close event (the failure's message, the timeout, the terminate reason); without
one (a listing) it names Temporal's status. `config` keeps the task queue, the execution time, the
memo and the search attributes, the parent workflow if any, and `_provider` (Temporal's status, run
and first run ids, history length, whether a cancel was requested, the pending activities' count).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors.providers import malformed
from ..record import TERMINAL_STATUSES, JobRecord, JobStatus, make_record
from .http.payload import latest, normalize_timestamp, required_timestamp

PROVIDER = "Temporal"
STATUS_PREFIX = "WORKFLOW_EXECUTION_STATUS_"
FAILED_REASON_LIMIT = 500

STATUS_MAP: Mapping[str, JobStatus] = {
    "RUNNING": JobStatus.WORKING,
    **dict.fromkeys(("COMPLETED", "CONTINUED_AS_NEW"), JobStatus.COMPLETED),
    **dict.fromkeys(("FAILED", "TIMED_OUT"), JobStatus.FAILED),
    **dict.fromkeys(("CANCELED", "TERMINATED"), JobStatus.CANCELED),
}
# Temporal's list query for each of our statuses (its visibility names); submitted has none.
STATUS_QUERIES: Mapping[JobStatus, str] = {
    JobStatus.WORKING: "ExecutionStatus = 'Running'",
    JobStatus.COMPLETED: "ExecutionStatus = 'Completed'",
    JobStatus.FAILED: "(ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut')",
    JobStatus.CANCELED: "(ExecutionStatus = 'Canceled' OR ExecutionStatus = 'Terminated')",
}
EVERY_CHAIN_QUERY = "ExecutionStatus != 'ContinuedAsNew'"
_DURATION = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)s")


def raw_status(info: Mapping[str, Any]) -> str:
    """Temporal's status without its prefix, e.g. RUNNING; an upstream_error when it is not one we know."""
    value = info.get("status")
    if not isinstance(value, str):
        raise malformed(PROVIDER, "a workflow execution has no status")
    status = value.removeprefix(STATUS_PREFIX)
    if status not in STATUS_MAP:
        raise malformed(PROVIDER, f"a workflow execution has the unknown status {value[:60]!r}")
    return status


def workflow_ids(info: Mapping[str, Any]) -> tuple[str, str]:
    """The workflow id and run id of an execution."""
    execution = info.get("execution")
    workflow_id = execution.get("workflowId") if isinstance(execution, dict) else None
    run_id = execution.get("runId") if isinstance(execution, dict) else None
    if not isinstance(workflow_id, str) or not workflow_id or not isinstance(run_id, str) or not run_id:
        raise malformed(PROVIDER, "a workflow execution lacks its workflowId or runId")
    return workflow_id, run_id


def execution_info(payload: Any) -> dict[str, Any]:
    """The `workflowExecutionInfo` of a describe answer."""
    info = payload.get("workflowExecutionInfo") if isinstance(payload, dict) else None
    if not isinstance(info, dict):
        raise malformed(PROVIDER, "the describe answer lacks workflowExecutionInfo")
    return info


def to_record(
    info: Any, namespace: str, *, close_event: Mapping[str, Any] | None = None, described: Any = None
) -> JobRecord:
    """The record of one execution (`workflowExecutionInfo`, or an item of a listing). `described` is
    the whole describe answer when there is one (for the timeout and the pending activities)."""
    if not isinstance(info, dict):
        raise malformed(PROVIDER, "expected a workflow execution object")
    workflow_id, run_id = workflow_ids(info)
    temporal_status = raw_status(info)
    status = STATUS_MAP[temporal_status]
    created_at = required_timestamp(info.get("startTime"), "startTime", PROVIDER)
    closed_at = normalize_timestamp(info.get("closeTime"), "closeTime", PROVIDER)
    completed_at = closed_at if status in TERMINAL_STATUSES else None
    workflow_type = info.get("type")
    type_name = workflow_type.get("name") if isinstance(workflow_type, dict) else None
    whole = described if isinstance(described, dict) else {}
    return make_record(
        id=workflow_id,
        project_id=namespace,
        name=workflow_id,
        status=status,
        target=type_name if isinstance(type_name, str) else "",
        config=_config(info, whole, temporal_status, run_id),
        timeout_seconds=duration_seconds(_execution_config(whole).get("workflowExecutionTimeout")),
        failed_reason=failed_reason(temporal_status, close_event),
        started_at=created_at,
        completed_at=completed_at,
        created_at=created_at,
        updated_at=latest(created_at, completed_at) or created_at,
    )


def _execution_config(described: Mapping[str, Any]) -> Mapping[str, Any]:
    config = described.get("executionConfig")
    return config if isinstance(config, dict) else {}


def _config(
    info: dict[str, Any], described: Mapping[str, Any], temporal_status: str, run_id: str
) -> dict[str, Any]:
    extended = described.get("workflowExtendedInfo")
    # The JSON leaves empty lists out: a describe answer without pending activities has none.
    pending = described.get("pendingActivities", [] if described else None)
    config: dict[str, Any] = {
        "task_queue": info.get("taskQueue"),
        "execution_time": normalize_timestamp(info.get("executionTime"), "executionTime", PROVIDER),
        "memo": _fields(info.get("memo")),
        "search_attributes": _fields(info.get("searchAttributes"), "indexedFields"),
    }
    parent = info.get("parentExecution")
    if isinstance(parent, dict):
        config["parent_workflow_id"] = parent.get("workflowId")
    config["_provider"] = {
        "name": "temporal",
        "status": temporal_status,
        "run_id": run_id,
        "first_run_id": info.get("firstRunId"),
        "history_length": _count(info.get("historyLength")),
        "cancel_requested": bool(extended.get("cancelRequested")) if isinstance(extended, dict) else None,
        "pending_activities": len(pending) if isinstance(pending, list) else None,
    }
    return config


def _fields(value: Any, key: str = "fields") -> dict[str, Any]:
    """A memo's or search attributes' values (the HTTP API writes JSON payloads as plain JSON)."""
    fields = value.get(key) if isinstance(value, dict) else None
    return dict(fields) if isinstance(fields, dict) else {}


def _count(value: Any) -> int | None:
    # grpc-gateway writes 64-bit integers as strings.
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 18 else None


def duration_seconds(value: Any) -> float:
    """A protobuf Duration as JSON ("30s", "1.5s") in seconds; 0 when absent (Temporal's "no limit")."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else 0.0


def failed_reason(temporal_status: str, close_event: Mapping[str, Any] | None) -> str | None:
    """Why a closed run did not complete: from its close event when there is one, else its status."""
    if STATUS_MAP[temporal_status] not in (JobStatus.FAILED, JobStatus.CANCELED):
        return None
    reason = _close_event_reason(temporal_status, close_event) if close_event is not None else None
    reason = " ".join(reason.split()) if reason else f"Temporal reports the workflow {temporal_status}."
    return reason if len(reason) <= FAILED_REASON_LIMIT else reason[: FAILED_REASON_LIMIT - 3] + "..."


def _close_event_reason(temporal_status: str, event: Mapping[str, Any]) -> str | None:
    if temporal_status == "FAILED":
        failure = _attributes(event, "workflowExecutionFailedEventAttributes").get("failure")
        message = failure.get("message") if isinstance(failure, dict) else None
        return f"The workflow failed: {message}" if isinstance(message, str) and message else None
    if temporal_status == "TIMED_OUT":
        return "The workflow timed out (its execution or run timeout passed)."
    if temporal_status == "TERMINATED":
        reason = _attributes(event, "workflowExecutionTerminatedEventAttributes").get("reason")
        said = f": {reason}" if isinstance(reason, str) and reason else ""
        return f"The workflow was terminated{said}"
    return "The workflow was canceled: it handled a cancel request and closed."


def _attributes(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    attributes = event.get(key)
    return attributes if isinstance(attributes, dict) else {}


def close_event(history: Any) -> dict[str, Any] | None:
    """The close event in a `GetWorkflowExecutionHistory` answer filtered to it (None: still open)."""
    events = history.get("history", {}).get("events") if isinstance(history, dict) else None
    if events is None or events == []:
        return None
    if not isinstance(events, list) or not isinstance(events[-1], dict):
        raise malformed(PROVIDER, "the history answer's events are not a list of events")
    return events[-1]


def listed_executions(payload: Any) -> tuple[list[Any], str | None]:
    """The executions of a `ListWorkflowExecutions` answer and its next page token (None at the end)."""
    if not isinstance(payload, dict):
        raise malformed(PROVIDER, "expected a listing object")
    executions = payload.get("executions", [])
    token = payload.get("nextPageToken") or None
    if not isinstance(executions, list) or not (token is None or isinstance(token, str)):
        raise malformed(PROVIDER, "the listing's executions or nextPageToken have the wrong type")
    return executions, token
