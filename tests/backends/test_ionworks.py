"""The Ionworks backend: the documented JobResponse, statuses, the project check, offset pagination."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends import ionworks
from cancel_job_mcp.backends.base import Backend
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus

from ..fakes import CANARY_TOKEN, CASES, FakeIonworks, ProviderCase, documented_example, every_page, job_ids

pytestmark = pytest.mark.anyio


@pytest.fixture
def case() -> ProviderCase:
    return CASES["ionworks"]


def test_documented_example_maps_to_a_valid_record(record_validator: Draft7Validator) -> None:
    payload: dict[str, Any] = documented_example("ionworks-cancel-job.txt")
    record = ionworks.to_record(payload, "ignored")
    record_validator.validate(record)
    assert record["id"] == "<string>"
    assert record["project_id"] == "<string>"  # the job's own project_id, not the reference asked for
    assert record["status"] == "submitted"  # "pending"; the example's contradictory flags are not used
    assert record["name"] == record["target"] == "dummy"
    assert record["batch_id"] == "<string>"
    assert record["failed_reason"] == "<string> (EXECUTION_TIMEOUT)"
    assert record["config"]["priority"] == 123
    assert "result" not in record["config"]
    assert record["created_at"] == "2023-11-07T05:31:56.000Z"
    assert (record["timeout_seconds"], record["backoff_limit"], record["exit_code"]) == (0, 0, None)


def test_organization_job_belongs_to_its_organization() -> None:
    payload = {
        **documented_example("ionworks-cancel-job.txt"),
        "project_id": None,
        "organization_id": "org-9",
    }
    record = ionworks.to_record(payload, "proj-a")
    assert record["project_id"] == "org-9"
    assert not ionworks.in_project(record, "proj-a")


@pytest.mark.parametrize(
    ("status", "flags", "started", "expected"),
    [
        ("pending", {}, False, JobStatus.SUBMITTED),
        ("processing", {}, True, JobStatus.WORKING),
        ("completed", {}, True, JobStatus.COMPLETED),
        ("failed", {}, True, JobStatus.FAILED),
        ("canceled", {}, True, JobStatus.CANCELED),
        ("waiting", {}, False, JobStatus.SUBMITTED),
        ("waiting", {}, True, JobStatus.WORKING),
        ("archived", {"is_terminal": True, "is_failed": False}, True, JobStatus.COMPLETED),
        ("timed_out", {"is_terminal": True, "is_failed": True}, True, JobStatus.FAILED),
        ("paused", {"is_terminal": False, "is_failed": False}, True, JobStatus.SUBMITTED),
    ],
)
def test_status_mapping(status: str, flags: dict[str, bool], started: bool, expected: JobStatus) -> None:
    assert ionworks.map_status(status, started=started, **flags) == expected


def test_unknown_status_without_flags_is_malformed() -> None:
    payload = {**documented_example("ionworks-cancel-job.txt"), "status": "new"}
    del payload["is_terminal"]
    with pytest.raises(ToolError) as caught:
        ionworks.to_record(payload, "p")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR


async def test_cancel_checks_the_project_first(
    fake: FakeIonworks, backend: Backend, record_validator: Draft7Validator
) -> None:
    job_id = fake.add_job("proj-a", "processing")
    record = await backend.cancel_job("proj-a", job_id)
    record_validator.validate(record)
    assert record["status"] == "canceled"
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/cancel"),
    ]
    assert json.loads(fake.requests[1].body) == {}
    assert fake.requests[1].headers["x-api-key"] == CANARY_TOKEN
    assert "authorization" not in fake.requests[1].headers


async def test_job_of_another_project_is_never_canceled(fake: FakeIonworks, backend: Backend) -> None:
    job_id = fake.add_job("proj-b", "processing")
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call("proj-a", job_id)
        assert caught.value.code == ErrorCode.NOT_FOUND
        assert "proj-a" in caught.value.message
    assert fake.requests_to("POST") == []
    assert fake.jobs[job_id]["status"] == "processing"
    assert (await backend.get_job("proj-b", job_id))["project_id"] == "proj-b"


async def test_organization_level_job(fake: FakeIonworks, backend: Backend) -> None:
    job_id = fake.add_job(None, "pending")
    with pytest.raises(ToolError):
        await backend.cancel_job("proj-a", job_id)
    assert (await backend.cancel_job("org-1", job_id))["status"] == "canceled"


async def test_finished_jobs_are_answered_without_a_post(fake: FakeIonworks, backend: Backend) -> None:
    done = fake.add_job("proj-a", "completed")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job("proj-a", done)
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert "completed" in caught.value.message
    canceled = fake.add_job("proj-a", "canceled")
    assert (await backend.cancel_job("proj-a", canceled))["status"] == "canceled"
    assert fake.requests_to("POST") == []


@pytest.mark.parametrize("shape", ["array", "object"])
async def test_list_pages_only_the_project(
    fake: FakeIonworks, backend: Backend, record_validator: Draft7Validator, shape: str
) -> None:
    fake.list_shape = shape
    mine = []
    for i in range(10):
        project = "proj-b" if i % 3 == 0 else "proj-a"
        job_id = fake.add_job(project, "processing", created_at=f"2026-01-01T00:00:{i:02d}Z")
        if project == "proj-a":
            mine.append(job_id)
    pages = await every_page(backend, "proj-a", 3, validator=record_validator)
    assert len(pages) >= 3
    assert {job["project_id"] for page in pages for job in page["jobs"]} == {"proj-a"}
    assert job_ids(pages) == list(reversed(mine))
    assert [r.query["offset"][0] for r in fake.requests][:3] == ["0", "3", "6"]


async def test_list_status_filter(fake: FakeIonworks, backend: Backend) -> None:
    waiting = fake.add_job("proj-a", "waiting", started_at=None)
    pending = fake.add_job("proj-a", "pending")
    done = fake.add_job("proj-a", "completed")
    fake.add_job("proj-a", "processing")
    page = await backend.list_jobs("proj-a", "submitted", 10, None)
    assert {job["id"] for job in page["jobs"]} == {waiting, pending}
    assert "status" not in fake.requests[-1].query
    page = await backend.list_jobs("proj-a", "completed", 10, None)
    assert [job["id"] for job in page["jobs"]] == [done]
    assert fake.requests[-1].query["status"] == ["completed"]
    with pytest.raises(ToolError) as caught:
        await backend.list_jobs("proj-a", None, 10, "-1")
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
