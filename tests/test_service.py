"""The service with a fake backend: identifiers checked before anything is routed, cursors wrapped and
bound to their listing, the cancel's wait."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from cancel_job_mcp.audit import Attempt, AuditLog
from cancel_job_mcp.backends.base import BackendSettings, JobPage, StopHooks
from cancel_job_mcp.caller import cli_caller
from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.record import JobRecord, make_record
from cancel_job_mcp.routing import Router
from cancel_job_mcp.service import JobService

ATTEMPT = Attempt("cancel_job", cli_caller())


def job(job_id: str, status: str = "working") -> JobRecord:
    return make_record(
        id=job_id, project_id="web", name="n", status=status, target="t",
        created_at="2026-01-01T00:00:00.000Z", updated_at="2026-01-01T00:00:00.000Z",
    )  # fmt: skip


class FakeBackend(StopHooks):
    """Three jobs, listed two to a page with the page number as its cursor; records every call."""

    kind = "fake"

    def __init__(self, settings: BackendSettings) -> None:
        self.name = settings.name
        self.calls: list[tuple[Any, ...]] = []
        self.jobs = [job("j3"), job("j2", "completed"), job("j1")]

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        self.calls.append(("cancel_job", project, job_id))
        return job(job_id, "canceled")

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        self.calls.append(("get_job", project, job_id))
        return job(job_id)

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        self.calls.append(("list_jobs", project, status, limit, cursor))
        start = int(cursor or 0)
        rest = self.jobs[start:]
        return JobPage(jobs=rest[:limit], next_cursor=str(start + limit) if len(rest) > limit else None)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def backends() -> dict[str, FakeBackend]:
    return {}


@pytest.fixture
def service(tmp_path: Path, backends: dict[str, FakeBackend]) -> JobService:
    def make(settings: BackendSettings) -> FakeBackend:
        backends[settings.name] = FakeBackend(settings)
        return backends[settings.name]

    settings = [
        BackendSettings(name="web", kind="fake", projects=("web-*",)),
        BackendSettings(name="other", kind="fake", projects=("*",)),
    ]
    return JobService(
        Router(settings, factory=make), CursorCodec(tmp_path / "cursor.key"), AuditLog(tmp_path)
    )


def test_calls_reach_the_routed_backend_with_the_prefix_removed(
    service: JobService, backends: dict[str, FakeBackend]
) -> None:
    assert anyio.run(service.get_job, "web-1", "j1")["id"] == "j1"
    assert (
        anyio.run(partial(service.cancel_job, attempt=ATTEMPT), "other:web-1", "j2").record["status"]
        == "canceled"
    )
    assert backends["web"].calls == [("get_job", "web-1", "j1")]
    assert backends["other"].calls == [("cancel_job", "web-1", "j2")], "no wait: the job is already canceled"


@pytest.mark.parametrize(
    ("project_reference", "job_id", "field"),
    [("../etc", "j1", "project_reference"), ("web-1", "", "job_id"), ("web 1", "j/1", "project_reference")],
)
def test_a_broken_identifier_is_refused_before_routing(
    service: JobService, backends: dict[str, FakeBackend], project_reference: str, job_id: str, field: str
) -> None:
    for call in (service.get_job, partial(service.cancel_job, attempt=ATTEMPT)):
        with pytest.raises(ToolError) as raised:
            anyio.run(call, project_reference, job_id)
        assert raised.value.code == ErrorCode.INVALID_ARGUMENT
        assert raised.value.message.startswith(f"{field}: ")
    assert backends == {}, "no backend was even made"


def test_list_pages_through_with_opaque_cursors(
    service: JobService, backends: dict[str, FakeBackend]
) -> None:
    first = anyio.run(service.list_jobs, "web-1", None, 2, None)
    assert [record["id"] for record in first["jobs"]] == ["j3", "j2"]
    assert first["next_cursor"] is not None
    assert first["next_cursor"] != "2"
    second = anyio.run(service.list_jobs, "web-1", None, 2, first["next_cursor"])
    assert [record["id"] for record in second["jobs"]] == ["j1"]
    assert second["next_cursor"] is None
    assert [call[-1] for call in backends["web"].calls] == [None, "2"], "the backend sees its own cursor"


@pytest.mark.parametrize(
    ("project_reference", "status"),
    [("web-2", None), ("other:web-1", None), ("web-1", "working")],
)
def test_a_cursor_replayed_against_another_listing_is_refused(
    service: JobService, backends: dict[str, FakeBackend], project_reference: str, status: str | None
) -> None:
    cursor = anyio.run(service.list_jobs, "web-1", None, 2, None)["next_cursor"]
    with pytest.raises(ToolError, match=r"^invalid_argument: cursor: "):
        anyio.run(service.list_jobs, project_reference, status, 2, cursor)
    assert len(backends["web"].calls) == 1


def test_a_forged_cursor_is_refused_before_routing(
    service: JobService, backends: dict[str, FakeBackend]
) -> None:
    with pytest.raises(ToolError, match=r"^invalid_argument: cursor: "):
        anyio.run(service.list_jobs, "nobody:x", None, 2, "forged.cursor")
    assert backends == {}
