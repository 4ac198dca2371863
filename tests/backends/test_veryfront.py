"""The Veryfront backend: documented examples, mapping, project scoping and cursor pagination."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends import veryfront
from cancel_job_mcp.backends.base import Backend
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus

from ..fakes import CASES, FakeVeryfront, ProviderCase, documented_example, every_page, job_ids

pytestmark = pytest.mark.anyio


@pytest.fixture
def case() -> ProviderCase:
    return CASES["veryfront"]


def example() -> dict[str, Any]:
    payload: dict[str, Any] = documented_example("veryfront-rest-cancel-job.txt", '\n{ "id"')
    return payload


def test_documented_example_maps_to_a_valid_record(record_validator: Draft7Validator) -> None:
    payload = example()
    # The document's timestamps are "<string>" placeholders; a real answer carries ISO 8601 times.
    for field in ("started_at", "completed_at", "created_at", "updated_at"):
        assert payload[field] == "<string>"
        payload[field] = "2026-03-01T12:00:00+01:00"
    record = veryfront.to_record(payload, "my-project")
    record_validator.validate(record)
    assert set(record) == set(record_validator.schema["required"])
    assert record["id"] == "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert record["project_id"] == payload["project_id"]
    assert record["status"] == "submitted"
    assert record["config"] == {}
    assert (record["timeout_seconds"], record["backoff_limit"], record["exit_code"]) == (123, 123, 123)
    assert record["created_at"] == "2026-03-01T11:00:00.000Z"
    assert "canonical_run_id" not in record
    assert "result" not in record["config"]


def test_documented_placeholder_timestamps_are_an_upstream_error() -> None:
    with pytest.raises(ToolError) as caught:
        veryfront.to_record(example(), "p")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    assert "created_at" in caught.value.message


def test_minimal_and_wrapped_records(record_validator: Draft7Validator) -> None:
    job = {"id": "j1", "status": "working", "created_at": "2026-01-01T00:00:00Z", "failure_detail": "x"}
    for payload in (job, {"data": job}, {"job": job}):
        record = veryfront.to_record(payload, "proj")
        record_validator.validate(record)
        assert record["project_id"] == "proj"
        assert record["name"] == "j1"
        assert (record["timeout_seconds"], record["backoff_limit"]) == (0, 0)
        assert record["failed_reason"] == "x"
        assert record["updated_at"] == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("submitted", JobStatus.SUBMITTED),
        ("working", JobStatus.WORKING),
        ("completed", JobStatus.COMPLETED),
        ("failed", JobStatus.FAILED),
        ("canceled", JobStatus.CANCELED),
        ("cancelled", JobStatus.CANCELED),
        ("running", JobStatus.WORKING),
        ("something-new", JobStatus.SUBMITTED),
    ],
)
def test_status_mapping(status: str, expected: JobStatus) -> None:
    assert veryfront.map_status(status) == expected


async def test_cancel_and_get(
    fake: FakeVeryfront, backend: Backend, record_validator: Draft7Validator
) -> None:
    job_id = fake.add_job("proj-a", "working")
    record = await backend.cancel_job("proj-a", job_id)
    record_validator.validate(record)
    assert record["status"] == "canceled"
    assert record["completed_at"] is not None
    assert [r.path for r in fake.requests] == [f"/projects/proj-a/jobs/{job_id}/cancel"]
    again = await backend.get_job("proj-a", job_id)
    assert again == record
    # Canceling twice: Veryfront refuses (409), the job reads canceled, so the record is returned.
    assert (await backend.cancel_job("proj-a", job_id))["status"] == "canceled"


async def test_job_of_another_project_is_not_canceled(fake: FakeVeryfront, backend: Backend) -> None:
    job_id = fake.add_job("proj-b", "working")
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call("proj-a", job_id)
        assert caught.value.code == ErrorCode.NOT_FOUND
    assert fake.jobs[job_id]["status"] == "working"
    assert all(r.path.startswith("/projects/proj-a/") for r in fake.requests)


async def test_list_pages_newest_first(
    fake: FakeVeryfront, backend: Backend, record_validator: Draft7Validator
) -> None:
    ids = [fake.add_job("proj-a", "working", created_at=f"2026-01-01T00:00:{i:02d}Z") for i in range(7)]
    fake.add_job("proj-b", "working")
    pages = await every_page(backend, "proj-a", 3, validator=record_validator)
    assert len(pages) == 3
    assert job_ids(pages) == list(reversed(ids))
    assert [r.query["limit"] for r in fake.requests] == [["3"]] * 3


async def test_list_status_filter_is_sent_to_veryfront(fake: FakeVeryfront, backend: Backend) -> None:
    done = [fake.add_job("proj-a", "completed", created_at=f"2026-01-01T00:00:{i:02d}Z") for i in range(3)]
    fake.add_job("proj-a", "working")
    page = await backend.list_jobs("proj-a", "completed", 10, None)
    assert {job["id"] for job in page["jobs"]} == set(done)
    assert fake.requests[0].query["status"] == ["completed"]
    await backend.list_jobs("proj-a", None, 1000, None)
    assert fake.requests[-1].query["limit"] == ["100"]


async def test_list_rejects_bad_arguments_without_a_request(fake: FakeVeryfront, backend: Backend) -> None:
    for args in [("proj-a", "running", 10, None), ("proj-a", None, 0, None), ("proj-a", None, 10, "a b")]:
        with pytest.raises(ToolError) as caught:
            await backend.list_jobs(*args)
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert fake.requests == []
