"""The Talonic backend: cancel-as-failed, the account as project, rate-limit resets, cursors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends import talonic
from cancel_job_mcp.backends.base import Backend
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus

from .fakes import CANARY_TOKEN, FakeTalonic, Fault, backend_settings, documented_example

pytestmark = pytest.mark.anyio

ACCOUNT = "acme"


@pytest.fixture
def fake() -> Iterator[FakeTalonic]:
    server = FakeTalonic(CANARY_TOKEN)
    yield server
    server.close()


@pytest.fixture
async def backend(fake: FakeTalonic, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Backend]:
    monkeypatch.setenv("TALONIC_API_KEY", CANARY_TOKEN)
    made = talonic.create(backend_settings("talonic", fake.url, options={"account": ACCOUNT}))
    yield made
    await made.aclose()


def example() -> dict[str, Any]:
    payload: dict[str, Any] = documented_example("talonic-cancel-job.txt", "Response\n\n{")
    return payload


def test_documented_cancel_answer_is_canceled(record_validator: Draft7Validator) -> None:
    for canceled in (True, False):  # from POST .../cancel, and read back later with GET
        record = talonic.to_record(example(), ACCOUNT, canceled=canceled)
        record_validator.validate(record)
        assert record["status"] == "canceled"
        assert record["failed_reason"] == "Cancelled via API"
    assert record["id"] == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert record["project_id"] == ACCOUNT
    assert record["name"] == "Q4 Invoice Run"
    assert record["target"] == "schema:sch_uuid_1"
    assert record["updated_at"] == record["completed_at"] == "2024-09-14T10:33:10.000Z"
    assert record["config"]["completed_documents"] == 12
    assert record["config"]["provider_status"] == "failed"
    assert "estimated_seconds_remaining" not in record["config"]


def test_a_real_failure_stays_failed() -> None:
    payload = {**example(), "error": {"code": "job_failed", "message": "Schema could not be resolved"}}
    record = talonic.to_record(payload, ACCOUNT)
    assert (record["status"], record["failed_reason"]) == ("failed", "Schema could not be resolved")
    unnamed = talonic.to_record({**example(), "name": None, "schema": None}, ACCOUNT)
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
    record = await backend.cancel_job(ACCOUNT, job_id)
    record_validator.validate(record)
    assert (record["status"], record["failed_reason"]) == ("canceled", "Cancelled via API")
    assert fake.requests[0].path == f"/v1/jobs/{job_id}/cancel"
    # Talonic answers 409 for the second cancel; the job reads canceled, so that is the answer.
    again = await backend.cancel_job(ACCOUNT, job_id)
    assert again["status"] == "canceled"
    assert [r.method for r in fake.requests] == ["POST", "POST", "GET"]


async def test_finished_job_is_not_cancellable(fake: FakeTalonic, backend: Backend) -> None:
    job_id = fake.add_job("failed", error={"code": "job_failed", "message": "Out of credits"})
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(ACCOUNT, job_id)
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert "failed" in caught.value.message


async def test_other_project_names_send_nothing(fake: FakeTalonic, backend: Backend) -> None:
    job_id = fake.add_job("processing")
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call("someone-else", job_id)
        assert caught.value.code == ErrorCode.NOT_FOUND
        assert ACCOUNT in caught.value.message
    with pytest.raises(ToolError):
        await backend.list_jobs("someone-else", None, 10, None)
    assert fake.requests == []
    assert fake.jobs[job_id]["status"] == "processing"


async def test_account_defaults_to_the_backend_name(
    fake: FakeTalonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALONIC_API_KEY", CANARY_TOKEN)
    made = talonic.create(backend_settings("talonic", fake.url))
    try:
        assert (await made.get_job("talonic", fake.add_job("queued")))["project_id"] == "talonic"
    finally:
        await made.aclose()


@pytest.mark.parametrize("reset_format", ["iso", "epoch"])
async def test_rate_limit_reset_forms(fake: FakeTalonic, backend: Backend, reset_format: str) -> None:
    fake.reset_format = reset_format
    fake.fail(Fault.RATE_LIMITED)
    job_id = fake.add_job("processing")
    assert (await backend.get_job(ACCOUNT, job_id))["status"] == "working"
    assert len(fake.requests) == 2
    fake.reset_in = 120
    fake.fail_always(Fault.RATE_LIMITED)
    with pytest.raises(ToolError) as caught:
        await backend.get_job(ACCOUNT, job_id)
    assert caught.value.code == ErrorCode.RATE_LIMITED
    assert "retry after 1" in caught.value.message  # 119-120 s


async def test_list_cursor_pages_and_status_filters(
    fake: FakeTalonic, backend: Backend, record_validator: Draft7Validator
) -> None:
    ids = [fake.add_job("processing", created_at=f"2026-01-01T00:00:{i:02d}Z") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await backend.list_jobs(ACCOUNT, None, 3, cursor)
        pages += 1
        for job in page["jobs"]:
            record_validator.validate(job)
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))
    assert fake.requests[1].query["cursor"] == [f"cur_{ids[4]}"]

    await backend.cancel_job(ACCOUNT, ids[0])
    broken = fake.add_job("failed", error={"code": "job_failed", "message": "Out of credits"})
    canceled = await backend.list_jobs(ACCOUNT, "canceled", 10, None)
    assert [job["id"] for job in canceled["jobs"]] == [ids[0]]
    assert fake.requests[-1].query["status"] == ["failed"]
    failed = await backend.list_jobs(ACCOUNT, "failed", 10, None)
    assert [job["id"] for job in failed["jobs"]] == [broken]
    working = await backend.list_jobs(ACCOUNT, "working", 10, None)
    assert len(working["jobs"]) == 6
    assert fake.requests[-1].query["status"] == ["processing"]
    submitted = await backend.list_jobs(ACCOUNT, "submitted", 10, None)
    assert submitted == {"jobs": [], "next_cursor": None}
