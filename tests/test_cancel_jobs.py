"""cancel_jobs: a dry run by default, a bounded and filtered selection, one truthful cancel per job, each
one audited; on a fake backend in process, on 50 real local jobs, and on a hosted provider's fake."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import pytest
from jsonschema import Draft7Validator
from mcp import MCPError

from cancel_job_mcp.audit import AUDIT_FILE, AuditLog
from cancel_job_mcp.backends.base import BackendSettings, JobPage, StopHooks
from cancel_job_mcp.bulk import MAX_SCANNED
from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.errors import ErrorCode, ToolError, not_found
from cancel_job_mcp.record import JobRecord, make_record
from cancel_job_mcp.routing import Router
from cancel_job_mcp.schemas import load_schema
from cancel_job_mcp.server import build_server
from cancel_job_mcp.service import JobService

from .conftest import client, run_cli, start_http_server, stdio_server, stop_http_server, wait_until
from .fakes import CANARY_TOKEN, FakeVeryfront

OUTPUT = Draft7Validator(load_schema("cancel_jobs.output"))
# Logs its SIGTERM to $0 and exits 0 on it; $0.ready appears once the trap is set. `wait` returns at
# once on a trapped signal, where a foreground `sleep` would hold the trap until it ended.
SH_TERM_LOGGER = 'trap \'echo TERM >> "$0"; exit 0\' TERM; : > "$0.ready"; sleep 600 & wait'


def job(number: int, status: str = "working", **fields: Any) -> JobRecord:
    created = f"2026-01-01T{number // 3600:02d}:{number // 60 % 60:02d}:{number % 60:02d}.000Z"
    return make_record(
        id=f"j{number:05d}", project_id="web", name=fields.pop("name", "etl"), status=status,
        target="etl.py", created_at=created, updated_at=created, **fields,
    )  # fmt: skip


class ListingBackend(StopHooks):
    """A backend holding `jobs` (newest first), listing them in pages, counting the jobs it listed."""

    name = "fake"
    kind = "fake"

    def __init__(self, jobs: list[JobRecord]) -> None:
        self.jobs = {record["id"]: record for record in jobs}
        self.listed = 0
        self.canceled: list[str] = []

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        record = await self.get_job(project, job_id)
        if record["status"] not in ("submitted", "working"):
            raise ToolError(ErrorCode.NOT_CANCELLABLE, "already over")
        self.canceled.append(job_id)
        record = self.jobs[job_id] = {**record, "status": "canceled"}
        return record

    async def get_job(self, project: str, job_id: str) -> JobRecord:
        if job_id not in self.jobs or project != "web":
            raise not_found(job_id, "in the fake")
        return self.jobs[job_id]

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        start = int(cursor or 0)
        kept = [r for r in self.jobs.values() if project == "web" and status in (None, r["status"])]
        kept.sort(key=lambda record: record["created_at"], reverse=True)
        page = kept[start : start + limit]
        self.listed += len(page)
        more = start + limit < len(kept)
        return JobPage(jobs=page, next_cursor=str(start + limit) if more else None)

    async def aclose(self) -> None:
        return None


def server_for(backend: ListingBackend, read_only: bool = False) -> Any:
    settings = BackendSettings(name="fake", kind="fake", projects=("*",))
    home = Path(mkdtemp())
    service = JobService(
        Router([settings], factory=lambda _: backend), CursorCodec(home / "key"), AuditLog(home)
    )
    return build_server(service, read_only)


async def cancel_jobs(backend: ListingBackend, **arguments: Any) -> dict[str, Any]:
    async with client(server_for(backend), "legacy") as session:
        result = await session.call_tool("cancel_jobs", {"project_reference": "web", **arguments})
    assert not result.is_error, result.content[0].text
    answer: dict[str, Any] = result.structured_content
    OUTPUT.validate(answer)
    return answer


@pytest.mark.anyio
async def test_a_dry_run_is_the_default_and_changes_nothing() -> None:
    backend = ListingBackend([job(3), job(2, "submitted"), job(1, "completed")])
    answer = await cancel_jobs(backend, max=10)
    assert answer["dry_run"] is True
    assert [entry["job_id"] for entry in answer["jobs"]] == ["j00003", "j00002"]
    assert (answer["matched"], answer["truncated"]) == (2, False)
    assert all(entry["error"] is None and entry["record"] for entry in answer["jobs"])
    assert backend.canceled == []


@pytest.mark.anyio
async def test_a_real_run_cancels_exactly_the_matches_newest_first_up_to_max() -> None:
    jobs = [
        job(n, "working" if n % 2 else "submitted", batch_id="b1" if n % 3 else "b2") for n in range(1, 31)
    ]
    backend = ListingBackend([*jobs, job(99, "completed", batch_id="b1")])
    answer = await cancel_jobs(backend, max=5, batch_id="b1", status="working", dry_run=False)
    wanted = [r["id"] for r in sorted(jobs, key=lambda r: r["id"], reverse=True)
              if r["status"] == "working" and r["batch_id"] == "b1"]  # fmt: skip
    assert [entry["job_id"] for entry in answer["jobs"]] == wanted[:5]
    assert sorted(backend.canceled) == sorted(wanted[:5])
    assert all(entry["record"]["status"] == "canceled" for entry in answer["jobs"])
    assert (answer["dry_run"], answer["matched"], answer["truncated"]) == (False, 5, True)


@pytest.mark.anyio
async def test_without_a_narrowing_filter_it_lists_no_more_than_max_needs() -> None:
    backend = ListingBackend([job(n) for n in range(1, 1001)])
    answer = await cancel_jobs(backend, max=3)
    assert answer["matched"] == 3
    assert answer["truncated"] is True
    assert backend.listed == 3  # an empty page of submitted jobs, and one of `max` working jobs


class StartingBackend(ListingBackend):
    """Its submitted jobs start (become working) just after its first listing, whatever it listed."""

    async def list_jobs(self, project: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        page = await super().list_jobs(project, status, limit, cursor)
        for job_id, record in self.jobs.items():
            if record["status"] == "submitted":
                self.jobs[job_id] = {**record, "status": "working"}
        return page


@pytest.mark.anyio
async def test_a_job_that_starts_between_the_listings_is_still_taken() -> None:
    """Each active status is listed on its own: a job moving from one to the next meanwhile must be in
    one of the two listings (seen under load: a job submitted just before the call was missed)."""
    backend = StartingBackend([job(2), job(1, "submitted")])
    answer = await cancel_jobs(backend, max=10)
    assert [entry["job_id"] for entry in answer["jobs"]] == ["j00002", "j00001"]
    assert answer["jobs"][1]["record"]["status"] == "working", "the job as last seen"


@pytest.mark.anyio
async def test_a_filter_matching_nothing_stops_at_the_scan_limit() -> None:
    backend = ListingBackend([job(n) for n in range(1, MAX_SCANNED + 301)])
    answer = await cancel_jobs(backend, max=1, name="nope")
    assert (answer["matched"], answer["truncated"]) == (0, True)
    assert backend.listed == MAX_SCANNED


@pytest.mark.anyio
async def test_each_job_gets_its_record_or_its_error() -> None:
    backend = ListingBackend([job(2), job(1)])

    async def refuse(project: str, job_id: str) -> JobRecord:
        if job_id == "j00001":
            raise not_found(job_id, "in the fake", " Nothing was canceled.")
        return {**backend.jobs[job_id], "status": "canceled"}

    backend.cancel_job = refuse  # type: ignore[method-assign]
    answer = await cancel_jobs(backend, max=2, dry_run=False)
    assert answer["jobs"][0]["record"]["status"] == "canceled"
    assert answer["jobs"][1]["record"] is None
    assert answer["jobs"][1]["error"]["code"] == "not_found"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "max: is required"),
        ({"max": 0}, "max: 0 is less than the minimum of 1"),
        ({"max": 101}, "max: 101 is greater than the maximum of 100"),
        ({"max": 1, "status": "completed"}, 'status: must be one of "submitted", "working"; got "completed"'),
        ({"max": 1, "dry_run": "no"}, "dry_run: must be of type boolean, got string"),
    ],
)
async def test_bad_arguments_name_the_field_and_the_rule(arguments: dict[str, Any], problem: str) -> None:
    backend = ListingBackend([job(1)])
    async with client(server_for(backend), "legacy") as session:
        result = await session.call_tool("cancel_jobs", {"project_reference": "web", **arguments})
    assert result.is_error
    assert result.content[0].text.startswith("invalid_argument: ")
    assert problem in result.content[0].text
    assert backend.canceled == []


@pytest.mark.anyio
async def test_read_only_servers_hide_it() -> None:
    async with client(server_for(ListingBackend([]), read_only=True), "legacy") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        with pytest.raises(MCPError, match="read-only"):
            await session.call_tool("cancel_jobs", {"project_reference": "web", "max": 1})
    assert "cancel_jobs" not in names


def audit(home: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run_cli(home, "audit", "--json").stdout)
    return rows


def submit_local(home: Path, project: str, name: str, log: Path) -> str:
    from cancel_job_mcp.backends.local.runtime import submit_job

    record = submit_job(home, project, ["sh", "-c", SH_TERM_LOGGER, str(log)], name=name)
    return record["id"]


def local_status(home: Path, job_id: str) -> str:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        status: str = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    return status


@pytest.mark.slow  # 52 real jobs
@pytest.mark.anyio
async def test_fifty_local_jobs_one_call_and_the_bystanders_untouched(home: Path, tmp_path: Path) -> None:
    logs = {}
    for number in range(50):
        log = tmp_path / f"etl-{number}.log"
        logs[submit_local(home, "fleet", "etl", log)] = log
    unmatched = submit_local(home, "fleet", "report", tmp_path / "report.log")
    bystander = submit_local(home, "fleet-b", "etl", tmp_path / "bystander.log")
    every_log = [*logs.values(), tmp_path / "report.log", tmp_path / "bystander.log"]
    wait_until(lambda: all(Path(f"{log}.ready").exists() for log in every_log), timeout=120)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    arguments = {"project_reference": "fleet", "name": "etl", "max": 100}
    async with client(stdio_server(home), "legacy") as session:
        dry = (await session.call_tool("cancel_jobs", arguments)).structured_content
        assert {entry["job_id"] for entry in dry["jobs"]} == set(logs)
        assert all(local_status(home, job_id) == "working" for job_id in logs)
        real = await session.call_tool(
            "cancel_jobs", {**arguments, "dry_run": False}, progress_callback=on_progress
        )
    assert not real.is_error, real.content[0].text
    answer = real.structured_content
    OUTPUT.validate(answer)
    assert (answer["dry_run"], answer["matched"], answer["truncated"]) == (False, 50, False)
    assert {entry["job_id"] for entry in answer["jobs"]} == set(logs)
    for entry in answer["jobs"]:
        record = entry["record"]
        assert (record["status"], record["exit_code"]) == ("canceled", 0), entry  # it exited on SIGTERM
        assert record["completed_at"] is not None
        assert logs[entry["job_id"]].read_text() == "TERM\n"
    assert sorted(progress) == list(range(1, 51))
    for job_id, log in ((unmatched, tmp_path / "report.log"), (bystander, tmp_path / "bystander.log")):
        assert local_status(home, job_id) == "working"
        assert not log.exists()
    rows = audit(home)
    assert len(rows) == 50  # the dry run is no attempt
    assert {row["job_id"] for row in rows} == set(logs)
    assert {(row["tool"], row["transport"], row["outcome"], row["status"]) for row in rows} == {
        ("cancel_jobs", "stdio", "ok", "canceled")
    }
    run_cli(home, "cancel", "fleet", unmatched)
    run_cli(home, "cancel", "fleet-b", bystander)


@pytest.mark.slow  # a server and a fake provider of their own
@pytest.mark.anyio
async def test_a_hosted_provider_over_http_with_the_token_name_in_the_audit(tmp_path: Path) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    home = tmp_path / "home"
    home.mkdir()
    with FakeVeryfront(CANARY_TOKEN) as fake:
        batch = [fake.add_job("proj-a", batch_id="batch-7") for _ in range(4)]
        other_batch = fake.add_job("proj-a", batch_id="batch-8")
        finished = fake.add_job("proj-a", status="completed", batch_id="batch-7")
        bystander = fake.add_job("proj-b", batch_id="batch-7")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[backends.vf]\nkind = "veryfront"\nbase_url = "{fake.url}"\ntoken_env = "VF_SECRET"\n'
            'projects = ["proj-*"]\nsettle_timeout = 2\n'
        )
        mcp_token = "ops-canary-0123456789abcdef"
        server = start_http_server(
            home,
            "--config",
            str(config),
            VF_SECRET=CANARY_TOKEN,
            CANCEL_JOB_MCP_HTTP_TOKENS=f"ops:{mcp_token}",
        )
        try:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {mcp_token}"}, timeout=120)
            async with (
                http,
                client(streamable_http_client(server.url, http_client=http), "legacy") as session,
            ):
                result = await session.call_tool(
                    "cancel_jobs",
                    {"project_reference": "proj-a", "batch_id": "batch-7", "max": 10, "dry_run": False},
                )
        finally:
            assert stop_http_server(server) == ""
        statuses = {job_id: fake.jobs[job_id]["status"] for job_id in fake.jobs}
    assert not result.is_error, result.content[0].text
    answer = result.structured_content
    assert {entry["job_id"] for entry in answer["jobs"]} == set(batch)
    assert all(entry["record"]["status"] == "canceled" for entry in answer["jobs"])
    assert [statuses[job_id] for job_id in batch] == ["canceled"] * 4
    assert (statuses[other_batch], statuses[finished], statuses[bystander]) == (
        "working",
        "completed",
        "working",
    )
    rows = audit(home)
    assert {(row["principal"], row["backend"], row["project"], row["outcome"]) for row in rows} == {
        ("ops", "vf", "proj-a", "ok")
    }
    assert {row["job_id"] for row in rows} == set(batch)
    stored = b"".join(path.read_bytes() for path in home.glob(f"{AUDIT_FILE}*"))
    for secret in (CANARY_TOKEN, mcp_token):
        assert secret.encode() not in stored
        assert secret not in json.dumps(answer)
