"""End to end on a real Ray head node (issue #5: "must show"): jobs submitted through Ray's own REST API,
then listed, read and canceled through a real MCP client talking to the server as a stdio subprocess,
configured by a TOML file with `[backends.cluster] kind = "ray"`.

The head node is the session's `ray_head` fixture (tests/conftest.py), shared with test_ray.py; it
skips, saying why, when Ray is not installed (`.ci/install-ray.sh` makes .cache/ray-venv). The
cluster may hold other jobs than this test's, so listings are checked against what Ray's own API
reports, and these tests' jobs carry submission ids of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from .conftest import client, stdio_server
from .ray_cluster import RayHead

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECORD = Draft7Validator(load_schema("get_job.output"))
PAGE = Draft7Validator(load_schema("list_jobs.output"))
CANCELED = Draft7Validator(load_schema("cancel_job.output"))
PROJECT = "cluster-e2e"


def ray_order(head: RayHead, status: str | None = None) -> list[str]:
    """Ray's own listing as the backend must page it: newest first by (start_time, id)."""
    with head.client() as http:
        response = http.get("/api/jobs/")
    response.raise_for_status()
    jobs = [
        ((job.get("start_time") or 0, job.get("submission_id") or job["job_id"]), job)
        for job in response.json()
        if status is None or job["status"] == status
    ]
    jobs.sort(key=lambda pair: pair[0], reverse=True)
    return [key[1] for key, _ in jobs]


async def all_pages(
    session: Any, reference: str, limit: int, status: str | None = None
) -> tuple[list[str], int]:
    arguments: dict[str, Any] = {"project_reference": reference, "limit": limit}
    if status is not None:
        arguments["status"] = status
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        result = await session.call_tool("list_jobs", {**arguments, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, result.content[0].text
        page = result.structured_content
        PAGE.validate(page)
        pages += 1
        assert 1 <= len(page["jobs"]) <= limit
        for job in page["jobs"]:
            RECORD.validate(job)
            assert job["project_id"] == PROJECT
            if status is not None:
                assert job["status"] == status, job
        created = [job["created_at"] for job in page["jobs"]]
        assert created == sorted(created, reverse=True)
        ids += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 200, "the listing never ends"


def subsequence(items: list[str], of: list[str]) -> bool:
    rest = iter(of)
    return all(item in rest for item in items)


@dataclass
class Jobs:
    """This module's jobs on the shared head node; no test changes them (the cancel test submits its own)."""

    tag: str
    succeeded: list[str]
    failed: str  # exit 3
    running: list[str]  # "sleep 600", named "sleeper 0" and "sleeper 1"
    succeeded_before: list[str]  # Ray's SUCCEEDED listing once they had settled

    @property
    def mine(self) -> list[str]:
        return [*self.succeeded, self.failed, *self.running]


@pytest.fixture(scope="module")
def jobs(ray_head: RayHead) -> Iterator[Jobs]:
    tag = uuid.uuid4().hex[:8]
    succeeded = [ray_head.submit("true", submission_id=f"e2e-{tag}-ok-{i}") for i in range(2)]
    failed = ray_head.submit("exit 3", submission_id=f"e2e-{tag}-exit3")
    running = [
        ray_head.submit("sleep 600", submission_id=f"e2e-{tag}-sleep-{i}", metadata={"name": f"sleeper {i}"})
        for i in range(2)
    ]
    try:
        for job_id in succeeded:
            ray_head.wait_for_status(job_id, "SUCCEEDED")
        ray_head.wait_for_status(failed, "FAILED")
        for job_id in running:
            ray_head.wait_for_status(job_id, "RUNNING")
        yield Jobs(tag, succeeded, failed, running, ray_order(ray_head, "SUCCEEDED"))
    finally:
        stop_if_active(ray_head, *running)


def stop_if_active(head: RayHead, *job_ids: str) -> None:
    for job_id in job_ids:
        if head.info(job_id)["status"] in ("PENDING", "RUNNING"):
            with head.client() as http:
                http.post(f"/api/jobs/{job_id}/stop")


def server(head: RayHead, home: Path, tmp_path: Path) -> Any:
    config = tmp_path / "ray.toml"
    config.write_text(
        "[backends.cluster]\n"
        'kind = "ray"\n'
        f'base_url = "{head.url}"\n'
        'projects = ["cluster-*"]\n'
        "read_timeout = 10\n"
        "settle_timeout = 20\n"
    )
    return client(stdio_server(home, "--config", str(config)))


async def call(session: Any, tool: str, **arguments: Any) -> Any:
    return await session.call_tool(tool, arguments)


async def test_list_jobs_pages_rays_listing_in_rays_order(
    ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path
) -> None:
    """Both routing forms: Ray's whole listing, in Ray's order, at least three pages."""
    everything = ray_order(ray_head)
    async with server(ray_head, home, tmp_path) as session:
        for reference in (PROJECT, f"cluster:{PROJECT}"):
            ids, pages = await all_pages(session, reference, limit=2)
            assert ids == everything
            assert len(set(ids)) == len(ids)
            assert pages >= 3
            assert subsequence(list(reversed(jobs.mine)), ids), "newest first"


async def test_list_jobs_filters_by_status(ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path) -> None:
    """Only jobs in that state, this module's among them, in order."""
    async with server(ray_head, home, tmp_path) as session:
        completed, pages = await all_pages(session, PROJECT, limit=1, status="completed")
        failures, _ = await all_pages(session, PROJECT, limit=2, status="failed")
        working, _ = await all_pages(session, PROJECT, limit=1, status="working")
    assert pages >= 2
    assert subsequence(list(reversed(jobs.succeeded)), completed)
    assert set(jobs.succeeded_before) <= set(completed) <= set(ray_order(ray_head, "SUCCEEDED"))
    assert jobs.failed not in completed
    assert not set(jobs.running) & set(completed)
    assert jobs.failed in failures
    assert not set(jobs.succeeded) & set(failures)
    assert subsequence(list(reversed(jobs.running)), working)


async def test_a_tampered_or_replayed_cursor_is_refused(
    ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path
) -> None:
    async with server(ray_head, home, tmp_path) as session:
        first = (await call(session, "list_jobs", project_reference=PROJECT, limit=3)).structured_content
        cursor = first["next_cursor"]
        for bad, extra in (
            (cursor[:2] + ("B" if cursor[2] != "B" else "C") + cursor[3:], {}),
            (cursor, {"status": "failed"}),
        ):
            result = await call(session, "list_jobs", project_reference=PROJECT, limit=3, cursor=bad, **extra)
            assert result.is_error
            assert result.content[0].text.startswith("invalid_argument: cursor"), result.content[0].text


async def test_get_job_reads_a_finished_and_a_failed_job_as_ray_reports_them(
    ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path
) -> None:
    async with server(ray_head, home, tmp_path) as session:
        succeeded = await call(session, "get_job", project_reference=PROJECT, job_id=jobs.succeeded[0])
        failed = await call(session, "get_job", project_reference=f"cluster:{PROJECT}", job_id=jobs.failed)
    assert not succeeded.is_error, succeeded.content[0].text
    record = succeeded.structured_content
    RECORD.validate(record)
    assert (record["id"], record["status"], record["exit_code"]) == (jobs.succeeded[0], "completed", 0)
    assert record["target"] == "true"
    assert (failed.structured_content["status"], failed.structured_content["exit_code"]) == ("failed", 3)


async def test_cancel_job_waits_until_ray_says_stopped(
    ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path
) -> None:
    victim = ray_head.submit("sleep 600", submission_id=f"e2e-{jobs.tag}-victim", metadata={"name": "victim"})
    try:
        ray_head.wait_for_status(victim, "RUNNING")
        async with server(ray_head, home, tmp_path) as session:
            result = await call(session, "cancel_job", project_reference=f"cluster:{PROJECT}", job_id=victim)
            assert not result.is_error, result.content[0].text
            canceled = result.structured_content
            CANCELED.validate(canceled)
            assert (canceled["id"], canceled["name"], canceled["status"]) == (victim, "victim", "canceled")
            assert canceled["completed_at"] is not None
            assert ray_head.info(victim)["status"] == "STOPPED"
            record = (
                await call(session, "get_job", project_reference=PROJECT, job_id=victim)
            ).structured_content
            assert record["status"] == "canceled"
            assert all(ray_head.info(job)["status"] == "RUNNING" for job in jobs.running), (
                "only the job named was stopped"
            )
            stopped, _ = await all_pages(session, PROJECT, limit=5, status="canceled")
            assert victim in stopped
            working, _ = await all_pages(session, PROJECT, limit=5, status="working")
            assert victim not in working
            assert set(jobs.running) <= set(working)
            again = await call(session, "cancel_job", project_reference=PROJECT, job_id=victim)
            assert again.is_error
            assert again.content[0].text.startswith("not_cancellable: "), again.content[0].text
    finally:
        stop_if_active(ray_head, victim)


async def test_unknown_ids_are_not_found(ray_head: RayHead, jobs: Jobs, home: Path, tmp_path: Path) -> None:
    async with server(ray_head, home, tmp_path) as session:
        for tool in ("get_job", "cancel_job"):
            result = await call(session, tool, project_reference=PROJECT, job_id=f"raysubmit_nope{jobs.tag}")
            assert result.is_error
            assert result.content[0].text.startswith("not_found: "), result.content[0].text
