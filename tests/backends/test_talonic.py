"""The Talonic backend: cancel-as-failed, any routed reference as the project, rate-limit resets, cursors."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends import talonic
from cancel_job_mcp.backends.base import Backend
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus

from ..fakes import CASES, FakeTalonic, Fault, ProviderCase, documented_example, every_page, job_ids

pytestmark = pytest.mark.anyio

PROJECT = "invoices"


@pytest.fixture
def case() -> ProviderCase:
    return CASES["talonic"]


def example() -> dict[str, Any]:
    payload: dict[str, Any] = documented_example("talonic-cancel-job.txt", "Response\n\n{")
    return payload


def test_documented_cancel_answer_is_canceled(record_validator: Draft7Validator) -> None:
    for canceled in (True, False):  # from POST .../cancel, and read back later with GET
        record = talonic.to_record(example(), PROJECT, canceled=canceled)
        record_validator.validate(record)
        assert record["status"] == "canceled"
        assert record["failed_reason"] == "Cancelled via API"
    assert record["id"] == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert record["project_id"] == PROJECT
    assert record["name"] == "Q4 Invoice Run"
    assert record["target"] == "schema:sch_uuid_1"
    assert record["updated_at"] == record["completed_at"] == "2024-09-14T10:33:10.000Z"
    assert record["config"]["completed_documents"] == 12
    assert record["config"]["provider_status"] == "failed"
    assert "estimated_seconds_remaining" not in record["config"]


def test_a_real_failure_stays_failed() -> None:
    payload = {**example(), "error": {"code": "job_failed", "message": "Schema could not be resolved"}}
    record = talonic.to_record(payload, PROJECT)
    assert (record["status"], record["failed_reason"]) == ("failed", "Schema could not be resolved")
    unnamed = talonic.to_record({**example(), "name": None, "schema": None}, PROJECT)
    assert (unnamed["name"], unnamed["target"]) == (unnamed["id"], "extraction")


@pytest.mark.parametrize(
    ("status", "message", "canceled", "expected"),
    [
        ("pending", None, False, JobStatus.SUBMITTED),
        ("queued", None, False, JobStatus.SUBMITTED),
        ("processing", None, False, JobStatus.WORKING),
        ("complete", None, False, JobStatus.COMPLETED),
        ("completed", None, False, JobStatus.COMPLETED),
        ("failed", "Out of credits", False, JobStatus.FAILED),
        ("failed", "Cancelled via API", False, JobStatus.CANCELED),
        ("failed", "job CANCELED by user", False, JobStatus.CANCELED),
        ("failed", None, True, JobStatus.CANCELED),
        ("cancelled", None, False, JobStatus.CANCELED),
        ("brand_new", None, False, JobStatus.SUBMITTED),
    ],
)
def test_status_mapping(status: str, message: str | None, canceled: bool, expected: JobStatus) -> None:
    assert talonic.map_status(status, message, canceled=canceled) == expected


async def test_cancel_twice(fake: FakeTalonic, backend: Backend, record_validator: Draft7Validator) -> None:
    job_id = fake.add_job("processing")
    record = await backend.cancel_job(PROJECT, job_id)
    record_validator.validate(record)
    assert (record["status"], record["failed_reason"]) == ("canceled", "Cancelled via API")
    assert fake.requests[0].path == f"/v1/jobs/{job_id}/cancel"
    # Talonic answers 409 for the second cancel; the job reads canceled, so that is the answer.
    again = await backend.cancel_job(PROJECT, job_id)
    assert again["status"] == "canceled"
    assert [r.method for r in fake.requests] == ["POST", "POST", "GET"]


async def test_finished_job_is_not_cancellable(fake: FakeTalonic, backend: Backend) -> None:
    job_id = fake.add_job("failed", error={"code": "job_failed", "message": "Out of credits"})
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, job_id)
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert "failed" in caught.value.message


async def test_every_reference_routed_here_is_served_and_recorded(
    fake: FakeTalonic, backend: Backend
) -> None:
    """Talonic has no projects (the key decides): whatever reference reached this backend is the project."""
    job_id = fake.add_job("processing")
    assert (await backend.get_job("invoices", job_id))["project_id"] == "invoices"
    assert (await backend.get_job("receipts", job_id))["project_id"] == "receipts"
    canceled = await backend.cancel_job("invoices", job_id)
    assert (canceled["project_id"], canceled["status"]) == ("invoices", "canceled")
    page = await backend.list_jobs("invoices", None, 10, None)
    assert [(job["id"], job["project_id"]) for job in page["jobs"]] == [(job_id, "invoices")]
    assert all(request.path.startswith("/v1/jobs") for request in fake.requests)


@pytest.mark.parametrize("reset_format", ["iso", "epoch"])
async def test_rate_limit_reset_forms(fake: FakeTalonic, backend: Backend, reset_format: str) -> None:
    fake.reset_format = reset_format
    fake.fail(Fault.RATE_LIMITED)
    job_id = fake.add_job("processing")
    assert (await backend.get_job(PROJECT, job_id))["status"] == "working"
    assert len(fake.requests) == 2
    fake.reset_in = 120
    fake.fail_always(Fault.RATE_LIMITED)
    with pytest.raises(ToolError) as caught:
        await backend.get_job(PROJECT, job_id)
    assert caught.value.code == ErrorCode.RATE_LIMITED
    assert "retry after 1" in caught.value.message  # 119-120 s


async def test_list_cursor_pages_and_status_filters(
    fake: FakeTalonic, backend: Backend, record_validator: Draft7Validator
) -> None:
    ids = [fake.add_job("processing", created_at=f"2026-01-01T00:00:{i:02d}Z") for i in range(7)]
    pages = await every_page(backend, PROJECT, 3, validator=record_validator)
    assert len(pages) == 3
    assert job_ids(pages) == list(reversed(ids))
    assert fake.requests[1].query["cursor"] == [f"cur_{ids[4]}"]

    await backend.cancel_job(PROJECT, ids[0])
    broken = fake.add_job("failed", error={"code": "job_failed", "message": "Out of credits"})
    canceled = await backend.list_jobs(PROJECT, "canceled", 10, None)
    assert [job["id"] for job in canceled["jobs"]] == [ids[0]]
    assert fake.requests[-1].query["status"] == ["failed"]
    failed = await backend.list_jobs(PROJECT, "failed", 10, None)
    assert [job["id"] for job in failed["jobs"]] == [broken]
    working = await backend.list_jobs(PROJECT, "working", 10, None)
    assert len(working["jobs"]) == 6
    assert fake.requests[-1].query["status"] == ["processing"]
    submitted = await backend.list_jobs(PROJECT, "submitted", 10, None)
    assert submitted == {"jobs": [], "next_cursor": None}
