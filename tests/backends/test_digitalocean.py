"""The DigitalOcean backend: the spec's example, wrappers, phases, app scoping and page cursors."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends import digitalocean
from cancel_job_mcp.backends.base import Backend
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus

from ..fakes import (
    CASES,
    FakeDigitalOcean,
    Fault,
    ProviderCase,
    documented_example,
    every_page,
    job_ids,
)

pytestmark = pytest.mark.anyio

APP = "4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf"
OTHER_APP = "9a1b2c3d-0000-4000-8000-000000000000"


@pytest.fixture
def case() -> ProviderCase:
    return CASES["digitalocean"]


def test_documented_example_maps_to_a_valid_record(record_validator: Draft7Validator) -> None:
    payload: dict[str, Any] = documented_example("digitalocean-gradient-cancel-job-invocation.txt", "print(")
    assert isinstance(payload["job_invocation"], list)
    record = digitalocean.to_record(payload, APP)
    record_validator.validate(record)
    assert record["id"] == "ba32b134-569c-4c0c-ba02-8ffdb0492ece"
    assert record["project_id"] == APP
    assert record["name"] == record["target"] == "good-job"
    assert record["status"] == "completed"
    assert record["cron_job_id"] == f"{APP}:good-job"
    assert record["config"]["deployment_id"] == "c020763f-ddb7-4112-a0df-7f01c69fc00b"
    assert record["config"]["trigger"]["scheduled"]["schedule"]["cron"] == "*/2 * * * *"
    assert (record["created_at"], record["updated_at"]) == (
        "2025-09-11T11:04:05.000Z",
        "2025-09-11T11:04:40.000Z",
    )
    assert record["failed_reason"] is None


def test_all_three_wrappers_read_the_same(record_validator: Draft7Validator) -> None:
    inner = {"id": "inv-1", "job_name": "j", "phase": "RUNNING", "created_at": "2026-01-01T00:00:00Z"}
    records = [
        digitalocean.to_record(p, APP)
        for p in (inner, {"job_invocation": inner}, {"job_invocation": [inner]})
    ]
    assert records[0] == records[1] == records[2]
    record_validator.validate(records[0])
    assert records[0]["cron_job_id"] is None


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("UNKNOWN", JobStatus.SUBMITTED),
        ("PENDING", JobStatus.SUBMITTED),
        ("RUNNING", JobStatus.WORKING),
        ("SUCCEEDED", JobStatus.COMPLETED),
        ("FAILED", JobStatus.FAILED),
        ("CANCELED", JobStatus.CANCELED),
        ("SKIPPED", JobStatus.CANCELED),
        ("NEW_PHASE", JobStatus.SUBMITTED),
    ],
)
def test_phase_mapping(phase: str, expected: JobStatus) -> None:
    assert digitalocean.map_status(phase) == expected


def test_failed_reasons() -> None:
    base = {"id": "i", "job_name": "j", "created_at": "2026-01-01T00:00:00Z"}
    skipped = digitalocean.to_record({**base, "phase": "SKIPPED"}, APP)
    assert (skipped["status"], skipped["failed_reason"]) == ("canceled", digitalocean.SKIPPED_REASON)
    steps = {"steps": [{"name": "run"}, {"reason": {"code": "ExitCode", "message": "exited with code 3"}}]}
    failed = digitalocean.to_record({**base, "phase": "FAILED", "progress": steps}, APP)
    assert failed["failed_reason"] == "exited with code 3"
    assert digitalocean.to_record({**base, "phase": "FAILED"}, APP)["failed_reason"] == "failed"


@pytest.mark.parametrize("wrapper", ["object", "list", "bare"])
async def test_cancel_and_get_with_each_wrapper(
    fake: FakeDigitalOcean, backend: Backend, record_validator: Draft7Validator, wrapper: str
) -> None:
    fake.wrapper = wrapper
    inv = fake.add_invocation(APP, "RUNNING")
    record = await backend.cancel_job(APP, inv)
    record_validator.validate(record)
    assert record["status"] == "canceled"
    assert (await backend.get_job(APP, inv))["status"] == "canceled"
    assert fake.requests[0].path == f"/v2/apps/{APP}/job-invocations/{inv}/cancel"


async def test_cancel_accepted_while_still_running(fake: FakeDigitalOcean, backend: Backend) -> None:
    fake.cancel_lag = 1
    inv = fake.add_invocation(APP, "RUNNING")
    record = await backend.cancel_job(APP, inv)
    assert record["status"] == "working"  # the service polls get_job until it is terminal
    assert (await backend.get_job(APP, inv))["status"] == "canceled"


async def test_finished_invocation_is_not_cancellable(fake: FakeDigitalOcean, backend: Backend) -> None:
    inv = fake.add_invocation(APP, "FAILED")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(APP, inv)
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert "failed" in caught.value.message
    # An undocumented 4xx refusal is checked with a GET: a finished invocation is not_cancellable ...
    fake.fail(Fault.BAD_REQUEST, method="POST")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(APP, inv)
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert fake.requests[-1].method == "GET"
    # ... and for an active one the provider's own answer stands.
    active = fake.add_invocation(APP, "RUNNING")
    fake.fail(Fault.BAD_REQUEST, method="POST")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(APP, active)
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT


async def test_invocation_of_another_app_is_not_canceled(fake: FakeDigitalOcean, backend: Backend) -> None:
    inv = fake.add_invocation(OTHER_APP, "RUNNING")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(APP, inv)
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert fake.invocations[inv]["invocation"]["phase"] == "RUNNING"


async def test_list_pages_and_local_status_filter(
    fake: FakeDigitalOcean, backend: Backend, record_validator: Draft7Validator
) -> None:
    phases = ["RUNNING", "SUCCEEDED"] * 4 + ["RUNNING"]
    ids = [fake.add_invocation(APP, p, created_at=f"2026-01-01T00:00:{i:02d}Z") for i, p in enumerate(phases)]
    fake.add_invocation(OTHER_APP, "RUNNING")

    pages = await every_page(backend, APP, 3, validator=record_validator)
    assert job_ids(pages) == list(reversed(ids))
    assert [page["next_cursor"] for page in pages] == ["2:3", "3:3", None]
    working = job_ids(await every_page(backend, APP, 2, "working", validator=record_validator))
    assert working == [i for i, p in reversed(list(zip(ids, phases, strict=True))) if p == "RUNNING"]
    assert all("status" not in r.query and "phase" not in r.query for r in fake.requests)


async def test_list_cursor_and_limit_checks(fake: FakeDigitalOcean, backend: Backend) -> None:
    await backend.list_jobs(APP, None, 999, None)
    assert fake.requests[-1].query["per_page"] == ["200"]
    for cursor in ("0:3", "x", "2:500", "2"):
        with pytest.raises(ToolError) as caught:
            await backend.list_jobs(APP, None, 3, cursor)
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert len(fake.requests) == 1
