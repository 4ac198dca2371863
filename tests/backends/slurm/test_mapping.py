"""The Slurm mapping (pure functions of backends/slurm/mapping.py) on recorded and documented payloads.

tests/fixtures/slurm/SOURCES.md says where each payload comes from: v0.0.38 answers recorded from a
real slurmrestd 22.05, and the REST API reference's examples for v0.0.40, v0.0.41 and v0.0.42.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends.slurm import mapping as slurm
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.schemas import load_schema

from ...conftest import FIXTURES

SLURM_FIXTURES = FIXTURES / "slurm"
RECORD = Draft7Validator(load_schema("get_job.output"))
DOC_VERSIONS = ("v0.0.40", "v0.0.41", "v0.0.42")


def recorded(name: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((SLURM_FIXTURES / "v0.0.38" / f"{name}.json").read_text())
    return answer


def recorded_job(name: str) -> dict[str, Any]:
    job: dict[str, Any] = slurm.listed_jobs(recorded(name)["body"])[0]
    return job


def doc_answer(version: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((SLURM_FIXTURES / f"{version}-doc-get-job.json").read_text())
    return answer


def number(value: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": value}


UNSET = {"set": False, "infinite": False, "number": 0}


def doc_job(version: str, **values: Any) -> dict[str, Any]:
    """The documentation's example job with its placeholders replaced by a real job's values."""
    job = copy.deepcopy(doc_answer(version)["jobs"][0])
    job.update(
        job_id=4242,
        name="train",
        account="physics",
        partition="gpu",
        user_name="ada",
        command="/home/ada/train.sh",
        nodes="node[01-02]",
        cluster="hpc",
        state_reason="None",
        state_description="",
        array_job_id=number(0),
        submit_time=number(1_767_000_000),
        start_time=number(1_767_000_060),
        end_time=number(1_767_003_600),
        time_limit=number(90),
        exit_code={"status": ["SUCCESS"], "return_code": number(0), "signal": {"id": UNSET, "name": ""}},
    )
    job.update(values)
    return job


# --- v0.0.38, recorded from a real cluster -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "exit_code", "timeout_seconds", "reason"),
    [
        ("running", "working", None, 1800, None),
        ("pending-held", "submitted", None, 0, "JobHeldUser"),
        ("pending-begintime", "submitted", None, 0, "BeginTime"),
        ("completed", "completed", 0, 0, None),
        ("failed-exit3", "failed", 3, 0, "NonZeroExitCode"),
        ("failed-sigkill", "failed", 137, 0, "JobLaunchFailure"),
        ("timeout", "failed", 143, 60, "TimeLimit"),
        ("completing", "working", None, 1800, None),
        ("cancelled", "canceled", 0, 0, None),
        ("cancelled-pending", "canceled", None, 0, "JobHeldUser"),
    ],
)
def test_recorded_v0038_jobs_map_to_records(
    name: str, status: str, exit_code: int | None, timeout_seconds: int, reason: str | None
) -> None:
    job = recorded_job(name)
    record = slurm.to_record(job, "alpha")
    RECORD.validate(record)
    assert record["id"] == str(job["job_id"])
    assert record["project_id"] == "alpha"
    assert record["status"] == status
    assert record["exit_code"] == exit_code
    assert record["timeout_seconds"] == timeout_seconds
    assert record["name"] == job["name"]
    assert record["target"] == job["name"]  # submitted over REST: Slurm knows no script path
    assert record["config"]["reason"] == reason
    assert record["config"]["account"] == job["account"]
    assert record["config"]["partition"] == job["partition"]
    assert record["config"]["user"] == "cjm-slurm"
    assert record["config"]["job_state"] == [job["job_state"]]
    assert record["created_at"].startswith("2026-11-")
    if status == "submitted" or name == "cancelled-pending":
        # A pending job's start_time is Slurm's estimate (BeginTime: an hour ahead), not a start; a job
        # canceled while pending gets start_time = end_time from Slurm, but never ran.
        assert job["start_time"] or status == "submitted"
        assert record["started_at"] is None
    else:
        assert record["started_at"] is not None
        assert record["started_at"] >= record["created_at"]
    if status in ("completed", "failed", "canceled"):
        assert record["completed_at"] is not None
        assert record["updated_at"] == record["completed_at"]
    else:
        # COMPLETING has an end_time already, but the job has not stopped yet.
        assert record["completed_at"] is None


def test_failed_reason_names_the_state_and_slurms_reason() -> None:
    assert slurm.to_record(recorded_job("timeout"), "alpha")["failed_reason"] == (
        "Slurm reports the job TIMEOUT (TimeLimit)."
    )
    assert slurm.to_record(recorded_job("failed-exit3"), "beta")["failed_reason"] == (
        "Slurm reports the job FAILED (NonZeroExitCode)."
    )
    assert slurm.to_record(recorded_job("cancelled"), "alpha")["failed_reason"] == (
        "Slurm reports the job CANCELLED."
    )
    for name in ("running", "completed", "pending-held", "completing"):
        assert slurm.to_record(recorded_job(name), "alpha")["failed_reason"] is None


def test_the_listing_maps_every_job_and_scopes_by_account_partition_or_user() -> None:
    jobs = slurm.listed_jobs(recorded("jobs")["body"])
    assert len(jobs) == 9
    for job in jobs:
        RECORD.validate(slurm.to_record(job, "p"))
    ids = {
        scope: {job["job_id"] for job in jobs if slurm.in_scope(job, scope, project)}
        for scope, project in (
            ("account", "beta"),
            ("partition", "other"),
            ("user", "root"),
        )
    }
    assert ids == {"account": {5}, "partition": {5}, "user": {9}}
    assert {job["job_id"] for job in jobs if slurm.in_scope(job, "account", "alpha")} == {
        1,
        2,
        3,
        4,
        6,
        7,
        8,
        9,
    }
    assert not any(slurm.in_scope(job, "account", "alph") for job in jobs)


def test_a_job_queued_in_several_partitions_belongs_to_each() -> None:
    job = {**recorded_job("pending-held"), "partition": "debug,other"}
    assert slurm.in_scope(job, "partition", "other")
    assert slurm.in_scope(job, "partition", "debug")
    assert not slurm.in_scope(job, "partition", "debug,other,x")


def test_a_script_path_is_the_target() -> None:
    job = {**recorded_job("running"), "command": "/home/ada/run.sh"}
    assert slurm.to_record(job, "alpha")["target"] == "/home/ada/run.sh"


@pytest.mark.parametrize(
    ("name", "status", "number"),
    [
        ("unknown-id", 500, 2017),
        ("delete-unknown", 500, 2017),
        ("delete-denied", 500, 2002),
        ("bad-id", 400, 9002),
    ],
)
def test_recorded_errors_are_read_with_their_numbers(name: str, status: int, number: int) -> None:
    answer = recorded(name)
    assert answer["status"] == status
    errors = slurm.slurm_errors(answer["body"])
    assert [slurm.error_number(error) for error in errors] == [number]


def test_an_error_is_quoted_in_slurms_words() -> None:
    error = slurm.slurm_error(500, slurm.slurm_errors(recorded("delete-denied")["body"]))
    assert error.code == ErrorCode.UNAUTHORIZED
    assert error.message.startswith(
        "Slurm refused the request (HTTP 500): Access/permission denied (unable to kill JobId=9 with"
        " signal 9: Access/permission denied) [2002]. The job belongs to a user"
    )
    for name in ("unknown-id", "delete-unknown"):
        unknown = slurm.slurm_error(500, slurm.slurm_errors(recorded(name)["body"]))
        assert unknown.code == ErrorCode.NOT_FOUND
        assert "Invalid job id specified" in unknown.message


# --- v0.0.40+, the documentation's examples ----------------------------------------------------------


@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_the_documentation_examples_verbatim_are_refused_by_name(version: str) -> None:
    """Their times are placeholders (unset or infinite): a job without a submit time is a bad answer."""
    jobs = slurm.listed_jobs(doc_answer(version))
    assert len(jobs) == 2
    for job in jobs:
        with pytest.raises(ToolError) as raised:
            slurm.to_record(job, "account")
        assert raised.value.code == ErrorCode.UPSTREAM_ERROR
        assert "job '5' has no submit_time" in raised.value.message


@pytest.mark.parametrize("version", DOC_VERSIONS)
@pytest.mark.parametrize(
    ("job_state", "exit_code", "status", "code"),
    [
        (["PENDING"], {"status": ["PENDING"], "return_code": UNSET}, "submitted", None),
        (["PENDING", "REQUEUE_HOLD"], {"status": ["PENDING"], "return_code": UNSET}, "submitted", None),
        (["RUNNING"], {"status": ["PENDING"], "return_code": UNSET}, "working", None),
        (["RUNNING", "CONFIGURING"], {"status": ["PENDING"], "return_code": UNSET}, "working", None),
        (["SUSPENDED"], {"status": ["PENDING"], "return_code": UNSET}, "working", None),
        (
            ["CANCELLED", "COMPLETING"],
            {"status": ["SIGNALED"], "signal": {"id": number(15)}},
            "working",
            None,
        ),
        (["COMPLETED", "COMPLETING"], {"status": ["SUCCESS"], "return_code": number(0)}, "working", None),
        (["COMPLETED"], {"status": ["SUCCESS"], "return_code": number(0)}, "completed", 0),
        (["FAILED"], {"status": ["ERROR"], "return_code": number(3)}, "failed", 3),
        (
            ["OUT_OF_MEMORY"],
            {"status": ["SIGNALED"], "signal": {"id": number(9), "name": "KILL"}},
            "failed",
            137,
        ),
        (["NODE_FAIL"], {"status": ["CORE_DUMPED"], "signal": {"id": number(11)}}, "failed", 139),
        (["TIMEOUT"], {"status": ["SIGNALED"], "signal": {"id": number(15), "name": "TERM"}}, "failed", 143),
        (["PREEMPTED"], {"status": ["INVALID"], "return_code": number(0)}, "failed", None),
        (["BOOT_FAIL"], {"status": ["ERROR"], "return_code": number(1)}, "failed", 1),
        (["DEADLINE"], {"status": ["ERROR"], "return_code": number(1)}, "failed", 1),
        (["CANCELLED"], {"status": ["SIGNALED"], "signal": {"id": number(15)}}, "canceled", 143),
        (["CANCELLED"], {"status": ["SUCCESS"], "return_code": number(0)}, "canceled", 0),
    ],
)
def test_documented_shapes_map_states_and_exit_codes(
    version: str, job_state: list[str], exit_code: dict[str, Any], status: str, code: int | None
) -> None:
    record = slurm.to_record(doc_job(version, job_state=job_state, exit_code=exit_code), "physics")
    RECORD.validate(record)
    assert record["status"] == status
    assert record["exit_code"] == code
    assert record["config"]["job_state"] == job_state
    assert record["id"] == "4242"
    assert record["target"] == "/home/ada/train.sh"
    assert record["timeout_seconds"] == 90 * 60
    assert record["created_at"] == "2025-12-29T09:20:00.000Z"
    assert record["started_at"] == (None if status == "submitted" else "2025-12-29T09:21:00.000Z")
    assert record["completed_at"] == (
        "2025-12-29T10:20:00.000Z" if status in ("completed", "failed", "canceled") else None
    )
    if status == "failed":
        assert record["failed_reason"] == f"Slurm reports the job {job_state[0]}."


@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_documented_shapes_unlimited_time_and_array_tasks(version: str) -> None:
    unlimited = {"set": True, "infinite": True, "number": 0}
    record = slurm.to_record(
        doc_job(version, job_state=["RUNNING"], time_limit=unlimited, array_job_id=number(4200)), "physics"
    )
    assert record["timeout_seconds"] == 0
    assert record["batch_id"] == "4200"
    assert slurm.to_record(doc_job(version, time_limit=UNSET), "physics")["timeout_seconds"] == 0


@pytest.mark.parametrize("version", DOC_VERSIONS)
def test_documented_error_shape_is_read(version: str) -> None:
    errors = slurm.slurm_errors(doc_answer(version))
    placeholder = doc_answer(version)["errors"][0]["error_number"]  # 1, 6 or 0 in the examples
    assert [slurm.error_number(error) for error in errors] == [placeholder, placeholder]
    assert slurm.describe_errors(errors) == (
        f"error (description) [{placeholder}]; error (description) [{placeholder}]"
    )


def test_an_unknown_state_is_an_upstream_error_naming_it() -> None:
    with pytest.raises(ToolError) as raised:
        slurm.to_record(doc_job("v0.0.42", job_state=["HIBERNATING"]), "physics")
    assert raised.value.code == ErrorCode.UPSTREAM_ERROR
    assert "HIBERNATING" in raised.value.message


@pytest.mark.parametrize(
    "job",
    [[], "job", {"job_id": 1}, {"job_id": 1, "job_state": []}, {"job_id": None, "job_state": "RUNNING"}],
)
def test_malformed_jobs_are_upstream_errors(job: Any) -> None:
    with pytest.raises(ToolError) as raised:
        slurm.to_record(job, "p")
    assert raised.value.code == ErrorCode.UPSTREAM_ERROR


@pytest.mark.parametrize(
    ("wait_status", "exit_code"),
    [(0, 0), (768, 3), (256 * 255, 255), (9, 137), (15, 143), (0x80 | 11, 139), (-1, None), (None, None)],
)
def test_v0038_wait_statuses_decode_like_a_shell(wait_status: int | None, exit_code: int | None) -> None:
    assert slurm.exit_code_of(wait_status) == exit_code
