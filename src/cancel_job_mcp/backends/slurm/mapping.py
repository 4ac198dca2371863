"""Slurm's facts and the pure mapping from slurmrestd's answers to job records and errors (see the
package docstring)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import ErrorCode, ProviderError
from ...errors.providers import (
    malformed,
    slurm_refusal,
)
from ...record import TERMINAL_STATUSES, JobRecord, JobStatus, make_record
from ..http.payload import latest, normalize_timestamp
from ..registry import ProviderSpec

SPEC = ProviderSpec(
    kind="slurm",
    display_name="Slurm",
    auth_header="X-SLURM-USER-TOKEN",
    auth_scheme=None,
    page_size=1000,
)
PROVIDER = SPEC.display_name
USER_NAME_HEADER = "X-SLURM-USER-NAME"
UNIX_PREFIX = "unix:"
OLDEST_VERSION = 38  # v0.0.38, Slurm 22.05
LISTING_LIMIT = 64 * 1024 * 1024  # the default max_response_bytes: some 6,000-20,000 jobs
SCOPES = ("account", "partition", "user")
SCOPE_FIELDS: Mapping[str, str] = {"account": "account", "partition": "partition", "user": "user_name"}
INVALID_JOB_ID = 2017  # ESLURM_INVALID_JOB_ID: "Invalid job id specified"
ALREADY_DONE = 2021  # ESLURM_ALREADY_DONE: "Job/step already completing or completed"
ACCESS_DENIED = 2002  # ESLURM_ACCESS_DENIED: the job belongs to a user slurmrestd may not act for
EMPTY_RESULT = 9002  # slurmrestd's "entry not found": with "Unable to find JobId=...", an unknown job
COMMUNICATION_ERRORS = range(1000, 1100)  # slurmrestd could not reach slurmctld: try again later
ERROR_TEXT_LIMIT = 500
JOB_ID = re.compile(r"[0-9]{1,10}(_[0-9]{1,10}|_\[[0-9,:-]{1,200}\])?")
JOB_ID_RULE = (
    "must be a Slurm job id: digits, as squeue shows it (an array task as 1234_5, several as 1234_[1-3,7])"
)
# Which status a set of array tasks read as one record has: the first that any of them has.
_TASKS_STATUS_ORDER = (JobStatus.WORKING, JobStatus.SUBMITTED, JobStatus.CANCELED, JobStatus.FAILED)
API_VERSION = re.compile(r"v0\.0\.([0-9]{2})")
_SERVED_VERSION = re.compile(r"/slurm/(v0\.0\.[0-9]{2})/jobs/?")
_CURSOR = re.compile(r"([0-9]{1,20}):([0-9]{1,10})")
FAILED_REASON_LIMIT = 500

BASE_STATES: Mapping[str, JobStatus] = {
    "PENDING": JobStatus.SUBMITTED,
    "RUNNING": JobStatus.WORKING,
    "SUSPENDED": JobStatus.WORKING,
    "COMPLETED": JobStatus.COMPLETED,
    "CANCELLED": JobStatus.CANCELED,
    **dict.fromkeys(
        ("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"),
        JobStatus.FAILED,
    ),
}
# Flags under which the job's processes may still run, whatever its base state says.
STILL_RUNNING_FLAGS = frozenset(
    {"COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED", "POWER_UP_NODE"}
)


# --- the mapping (pure) ----------------------------------------------------------------------------


def number(value: Any) -> int | None:
    """A Slurm number: a plain integer (v0.0.38) or `{set, infinite, number}` (v0.0.40+); None if unset
    or infinite."""
    if isinstance(value, dict):
        if value.get("set") is not True or value.get("infinite") is True:
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def job_states(payload: dict[str, Any]) -> list[str]:
    """`job_state` as a list: [base state, flags...] (v0.0.40+), or the one state of v0.0.38."""
    raw = payload.get("job_state")
    states = [raw] if isinstance(raw, str) else raw
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        raise malformed(PROVIDER, f"job {payload.get('job_id')!r} has no job_state")
    return [state.upper() for state in states]


def status_of(states: list[str], job_id: str) -> JobStatus:
    if STILL_RUNNING_FLAGS.intersection(states):
        return JobStatus.WORKING
    for state in states:
        if state in BASE_STATES:
            return BASE_STATES[state]
    raise malformed(PROVIDER, f"job {job_id!r} is in a state this server does not know: {'+'.join(states)}")


def exit_code_of(value: Any) -> int | None:
    """The exit status as a shell reports it: the script's own, or 128+N when signal N ended it."""
    if isinstance(value, dict):  # v0.0.40+: {status: [...], return_code: {...}, signal: {id: {...}, name}}
        status = value.get("status")
        statuses = status if isinstance(status, list) else [status]
        signal = value.get("signal")
        signal_id = number(signal.get("id")) if isinstance(signal, dict) else None
        if ("SIGNALED" in statuses or "CORE_DUMPED" in statuses) and signal_id:
            return 128 + signal_id
        if "INVALID" in statuses or "PENDING" in statuses:
            return None
        return number(value.get("return_code"))
    status_word = number(value)  # v0.0.38: the raw wait status
    if status_word is None or status_word < 0:
        return None
    signal_number = status_word & 0x7F
    return 128 + signal_number if signal_number else (status_word >> 8) & 0xFF


def _timestamp(payload: dict[str, Any], field: str) -> str | None:
    seconds = number(payload.get(field))
    if not seconds:  # 0 is Slurm's "not set"
        return None
    return normalize_timestamp(seconds, field, PROVIDER)


def text_field(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    return value if isinstance(value, str) and value.strip() else None


def _reason(payload: dict[str, Any]) -> str | None:
    reason = text_field(payload, "state_reason")
    return None if reason is None or reason == "None" else reason


def job_id_of(payload: dict[str, Any]) -> str:
    job_id = number(payload.get("job_id"))
    if job_id is None:
        raise malformed(PROVIDER, "a job lacks its job_id")
    return str(job_id)


def to_record(payload: Any, project: str) -> JobRecord:
    """The record for one Slurm job object (an item of the `jobs` list of any v0.0.38+ answer)."""
    if not isinstance(payload, dict):
        raise malformed(PROVIDER, "expected a job object")
    job_id = job_id_of(payload)
    states = job_states(payload)
    status = status_of(states, job_id)
    created_at = _timestamp(payload, "submit_time")
    if created_at is None:
        raise malformed(PROVIDER, f"job {job_id!r} has no submit_time")
    # A job that never got nodes (canceled while pending) has a start_time but never started.
    ran = status is not JobStatus.SUBMITTED and text_field(payload, "nodes") is not None
    started_at = _timestamp(payload, "start_time") if ran else None
    completed_at = _timestamp(payload, "end_time") if status in TERMINAL_STATUSES else None
    name = text_field(payload, "name") or job_id
    minutes = number(payload.get("time_limit"))
    array_job_id = number(payload.get("array_job_id"))
    return make_record(
        id=job_id,
        project_id=project,
        batch_id=str(array_job_id) if array_job_id else None,
        name=name,
        status=status,
        target=text_field(payload, "command") or name,
        config=_config(payload, states),
        timeout_seconds=minutes * 60 if minutes and minutes > 0 else 0,
        exit_code=exit_code_of(payload.get("exit_code")) if ran and status in TERMINAL_STATUSES else None,
        failed_reason=_failed_reason(payload, states, status),
        started_at=started_at,
        completed_at=completed_at,
        created_at=created_at,
        updated_at=latest(created_at, started_at, completed_at) or created_at,
    )


def _config(payload: dict[str, Any], states: list[str]) -> dict[str, Any]:
    return {
        "account": text_field(payload, "account"),
        "partition": text_field(payload, "partition"),
        "user": text_field(payload, "user_name"),
        "nodes": text_field(payload, "nodes"),
        "reason": _reason(payload),
        "job_state": states,
        "cluster": text_field(payload, "cluster"),
    }


def _failed_reason(payload: dict[str, Any], states: list[str], status: JobStatus) -> str | None:
    if status not in (JobStatus.FAILED, JobStatus.CANCELED):
        return None
    text = f"Slurm reports the job {'+'.join(states)}"
    if reason := _reason(payload):
        text += f" ({reason})"
    if description := text_field(payload, "state_description"):
        text += f": {description}"
    if len(text) > FAILED_REASON_LIMIT:
        text = text[: FAILED_REASON_LIMIT - 3] + "..."
    return text + "."


def in_scope(payload: dict[str, Any], scope: str, project: str) -> bool:
    """Whether the job object belongs to the project: its account, partition or user is `project`."""
    return scope_matches(payload.get(SCOPE_FIELDS[scope]), scope, project)


def scope_matches(value: Any, scope: str, project: str) -> bool:
    """A pending job queued in several partitions lists them comma-separated; any of them matches."""
    if not isinstance(value, str):
        return False
    if scope == "partition":
        return project in value.split(",")
    return value == project


def listed_jobs(body: Any) -> list[Any]:
    """The `jobs` of an answer (`{meta, errors, warnings, jobs}` in every version)."""
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise malformed(PROVIDER, "the answer has no list of jobs")
    return jobs


def slurm_errors(body: Any) -> list[dict[str, Any]]:
    """The error objects of an answer (v0.0.38 names the number error_number or error_code)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def error_number(error: dict[str, Any]) -> int | None:
    return number(error.get("error_number", error.get("error_code")))


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """Slurm's own words, e.g. `Access/permission denied (unable to kill JobId=9 ...) [2002]`."""
    parts = []
    for error in errors:
        text = text_field(error, "error") or "error"
        if (description := text_field(error, "description")) and description != text:
            text += f" ({description})"
        if (code := error_number(error)) is not None:
            text += f" [{code}]"
        parts.append(" ".join(text.split()))
    text = "; ".join(parts) or "no error text"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 3] + "..."


def slurm_error(status: int, errors: list[dict[str, Any]]) -> ProviderError:
    """The error for an answer carrying Slurm errors: an unknown job, an unreachable controller, or
    anything else Slurm refused, in Slurm's words (the error numbers kept in `numbers`)."""
    numbers = tuple(n for n in map(error_number, errors) if n is not None)
    said = describe_errors(errors)
    if INVALID_JOB_ID in numbers or (EMPTY_RESULT in numbers and "Unable to find JobId" in said):
        code = ErrorCode.NOT_FOUND
    elif ACCESS_DENIED in numbers:
        code = ErrorCode.UNAUTHORIZED
    elif any(n in COMMUNICATION_ERRORS for n in numbers):
        code = ErrorCode.UPSTREAM_UNAVAILABLE
    else:
        code = ErrorCode.UPSTREAM_ERROR
    return slurm_refusal(code, status, said, numbers)


_TASK_RANGE = re.compile(r"([0-9]{1,10})(?:-([0-9]{1,10})(?::([0-9]{1,10}))?)?")
MAX_ARRAY_TASKS = 1_000_001  # Slurm's MaxArraySize is at most 4,000,001; this bounds our walk


def array_tasks(text: str) -> set[int]:
    """The task ids of an array task string such as "1-3,7,10-20:2" (empty on anything else)."""
    tasks: set[int] = set()
    for part in text.split("%")[0].split(","):
        match = _TASK_RANGE.fullmatch(part.strip())
        if match is None:
            return set()
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        step = int(match[3]) if match[3] else 1
        if step < 1 or last - first > MAX_ARRAY_TASKS:
            return set()
        tasks.update(range(first, last + 1, step))
    return tasks


def tasks_record(records: list[JobRecord], job_id: str, array_job: str) -> JobRecord:
    """One record for several tasks of an array: the first task's fields; a status any task has, the
    first of working, submitted, canceled, failed (else completed); the span of their times."""
    statuses = {record["status"] for record in records}
    status = next((s for s in _TASKS_STATUS_ORDER if s in statuses), JobStatus.COMPLETED)
    ended = [record["completed_at"] for record in records if record["completed_at"]]
    first = records[0]
    return {
        **first,
        "id": job_id,
        "batch_id": array_job,
        "status": status,
        "exit_code": first["exit_code"] if len(records) == 1 else None,
        "failed_reason": first["failed_reason"] if len(records) == 1 else None,
        "started_at": min((r["started_at"] for r in records if r["started_at"]), default=None),
        "completed_at": max(ended) if status in TERMINAL_STATUSES and ended else None,
        "created_at": min(record["created_at"] for record in records),
        "updated_at": max(record["updated_at"] for record in records),
    }


def newest_version(document: Any, address: str) -> str:
    """The newest job API version from v0.0.38 on that an OpenAPI description's paths offer."""
    paths = document.get("paths") if isinstance(document, dict) else None
    served = {match.group(1) for path in paths or () if (match := _SERVED_VERSION.fullmatch(str(path)))}
    usable = [v for v in served if int(v.rsplit(".", 1)[1]) >= OLDEST_VERSION]
    if not usable:
        raise malformed(
            PROVIDER,
            f"slurmrestd at {address} lists no job API from v0.0.38 on in /openapi/v3 (it lists"
            f" {', '.join(sorted(served)) or 'none'}); load a newer openapi plugin or set api_version",
        )
    return max(usable, key=lambda version: int(version.rsplit(".", 1)[1]))
