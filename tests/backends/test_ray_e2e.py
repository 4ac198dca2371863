"""End to end on a real Ray head node (issue #5: "must show"): jobs submitted through Ray's own REST API,
then listed, read and canceled through a real MCP client talking to the server as a stdio subprocess,
configured by a TOML file with `[backends.cluster] kind = "ray"`.

The head node and its jobs are the session's `ray_head` and `ray_jobs` fixtures (tests/conftest.py),
shared with test_ray.py; they skip, saying why, when Ray is not installed (`.ci/install-ray.sh` makes
.cache/ray-venv). The cluster holds other tests' jobs too, so listings are checked against what Ray's
own API reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema
from cancel_job_mcp.stops import STOP_META_KEY

from ..conftest import client, stdio_server
from ..listing import all_pages
from ..ray_cluster import RayHead, SharedJobs

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("ray_head")]

RECORD = Draft7Validator(load_schema("get_job.output"))
CANCELED = Draft7Validator(load_schema("cancel_job.output"))
PROJECT = "cluster-e2e"


def subsequence(items: list[str], of: list[str]) -> bool:
    rest = iter(of)
    return all(item in rest for item in items)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session serves every test here


@pytest.fixture(scope="module")
async def session(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """One server for the module: the tests only read, or cancel a job of their own."""
    home = tmp_path_factory.mktemp("home")
    config = home / "ray.toml"
    config.write_text(
        "[backends.cluster]\n"
        'kind = "ray"\n'
        f'base_url = "{ray_head.url}"\n'
        'projects = ["cluster-*"]\n'
        "read_timeout = 10\n"
        "settle_timeout = 20\n"
    )
    async with client(stdio_server(home, "--config", str(config))) as session:
        yield session


async def call(session: Any, tool: str, **arguments: Any) -> Any:
    return await session.call_tool(tool, arguments)


async def test_list_jobs_pages_rays_listing_in_rays_order(
    ray_head: RayHead, ray_jobs: SharedJobs, session: Any
) -> None:
    """Both routing forms: Ray's whole listing, in Ray's order, at least three pages."""
    everything = ray_head.order()
    for reference in (PROJECT, f"cluster:{PROJECT}"):
        ids, pages = await all_pages(session, reference, limit=2, project=PROJECT)
        assert ids == everything
        assert len(set(ids)) == len(ids)
        assert pages >= 3
        assert subsequence(list(reversed(ray_jobs.mine)), ids), "newest first"


async def test_list_jobs_filters_by_status(ray_head: RayHead, ray_jobs: SharedJobs, session: Any) -> None:
    """Only jobs in that state, the shared ones among them, in Ray's order."""
    completed, pages = await all_pages(session, PROJECT, limit=1, status="completed", project=PROJECT)
    failures, _ = await all_pages(session, PROJECT, limit=2, status="failed", project=PROJECT)
    working, _ = await all_pages(session, PROJECT, limit=1, status="working", project=PROJECT)
    assert pages >= 2
    # Every job that succeeds has succeeded by now (the rest sleep until stopped).
    assert completed == ray_head.order("SUCCEEDED")
    assert subsequence(list(reversed(ray_jobs.succeeded)), completed)
    assert ray_jobs.failed in failures
    assert set(failures) <= set(ray_head.order("FAILED"))
    assert not set(ray_jobs.succeeded) & set(failures)
    assert ray_jobs.running in working
    # Listed working, each job was running then; read again now, it may have finished meanwhile (a job of
    # another module on the shared head), but never be anything but running or finished.
    for job in set(working) - set(ray_head.order("RUNNING")):
        assert ray_head.info(job)["status"] in ("SUCCEEDED", "FAILED", "STOPPED"), job
    assert working == [job for job in ray_head.order() if job in working], "in Ray's order"


async def test_a_tampered_or_replayed_cursor_is_refused(session: Any) -> None:
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
    ray_jobs: SharedJobs, session: Any
) -> None:
    succeeded = await call(session, "get_job", project_reference=PROJECT, job_id=ray_jobs.succeeded[0])
    failed = await call(session, "get_job", project_reference=f"cluster:{PROJECT}", job_id=ray_jobs.failed)
    assert not succeeded.is_error, succeeded.content[0].text
    record = succeeded.structured_content
    RECORD.validate(record)
    assert (record["id"], record["status"], record["exit_code"]) == (ray_jobs.succeeded[0], "completed", 0)
    assert record["target"] == "true"
    assert (failed.structured_content["status"], failed.structured_content["exit_code"]) == ("failed", 3)


async def test_cancel_job_waits_until_ray_says_stopped(
    ray_head: RayHead, ray_jobs: SharedJobs, session: Any
) -> None:
    victim, name = ray_jobs.take_victim(ray_head)
    try:
        result = await call(session, "cancel_job", project_reference=f"cluster:{PROJECT}", job_id=victim)
        assert not result.is_error, result.content[0].text
        canceled = result.structured_content
        CANCELED.validate(canceled)
        assert (canceled["id"], canceled["name"], canceled["status"]) == (victim, name, "canceled")
        assert canceled["completed_at"] is not None
        assert canceled["failed_reason"] == "Job was intentionally stopped."
        assert ray_head.info(victim)["status"] == "STOPPED"
        facts = result.meta[STOP_META_KEY]  # the evidence: Ray said RUNNING after the stop, then STOPPED
        seen = [status["status"] for status in facts["statuses_seen"]]
        assert (seen[0], seen[-1], facts["stopped"]) == ("working", "canceled", True)
        assert facts["settle_seconds"] >= facts["statuses_seen"][-1]["after_seconds"] > 0
        assert "signals" not in facts
        assert result.content[1].text.startswith(f"Job {victim} stopped: statuses seen working -> ")
        record = (await call(session, "get_job", project_reference=PROJECT, job_id=victim)).structured_content
        assert record["status"] == "canceled"
        assert ray_head.info(ray_jobs.running)["status"] == "RUNNING", "only the job named was stopped"
        stopped, _ = await all_pages(session, PROJECT, limit=5, status="canceled", project=PROJECT)
        assert victim in stopped
        working, _ = await all_pages(session, PROJECT, limit=5, status="working", project=PROJECT)
        assert victim not in working
        assert ray_jobs.running in working
        again = await call(session, "cancel_job", project_reference=PROJECT, job_id=victim)
        assert again.is_error
        assert again.content[0].text.startswith("not_cancellable: "), again.content[0].text
        assert "already canceled" in again.content[0].text
    finally:
        ray_head.stop_if_active(victim)


async def test_get_job_logs_reads_the_drivers_output_from_the_head(ray_head: RayHead, session: Any) -> None:
    job_id = ray_head.submit("for i in $(seq 1 300); do echo ray line $i; done; echo done >&2")
    ray_head.wait_for_status(job_id, "SUCCEEDED")
    result = await call(session, "get_job_logs", project_reference=PROJECT, job_id=job_id, tail_lines=3)
    assert not result.is_error, result.content[0].text
    logs = result.structured_content
    # Ray may add lines of its own to a driver's log (on a busy machine, a note quoting the entrypoint):
    # the tail is the last 3 lines of the whole log as Ray serves it, and holds the job's own last lines.
    whole = ray_head.http.get(f"/api/jobs/{job_id}/logs").json()["logs"].splitlines()
    assert logs["lines"] == whole[-3:]
    assert whole.index("ray line 300") < whole.index("done")
    assert logs["source"] == f"Ray GET /api/jobs/{job_id}/logs"
    assert logs["truncated"] is False
    assert logs["log_bytes"] > 300 * len("ray line 1\n")
    only = await call(session, "get_job_logs", project_reference=PROJECT, job_id=job_id, contains="LINE 25")
    assert only.structured_content["lines"] == ["ray line 25", *(f"ray line {250 + i}" for i in range(10))]
    missing = await call(session, "get_job_logs", project_reference=PROJECT, job_id="raysubmit_nope_logs")
    assert missing.content[0].text.startswith("not_found: "), missing.content[0].text


async def test_unknown_ids_are_not_found(ray_jobs: SharedJobs, session: Any) -> None:
    for tool in ("get_job", "cancel_job"):
        result = await call(session, tool, project_reference=PROJECT, job_id=f"raysubmit_nope{ray_jobs.tag}")
        assert result.is_error
        assert result.content[0].text.startswith("not_found: "), result.content[0].text
