"""cancel_jobs on a real Ray head node (tests/ray_cluster.py): the jobs named in the filter stop, the
session's other jobs (another name) run on, and each cancel has its audit row."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ..conftest import client, run_cli, stdio_server
from ..ray_cluster import RayHead, SharedJobs

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("ray_head")]


async def test_cancel_jobs_stops_the_named_ray_jobs_only(
    ray_head: RayHead, ray_jobs: SharedJobs, tmp_path: Path
) -> None:
    name = f"bulk-{uuid.uuid4().hex[:6]}"
    victims = [ray_head.submit("sleep 600", metadata={"name": name}) for _ in range(3)]
    spared = ray_head.submit("sleep 600", metadata={"name": f"{name}-spared"})
    for job_id in [*victims, spared]:
        ray_head.wait_for_status(job_id, "RUNNING")
    home = tmp_path / "home"
    home.mkdir()
    config = home / "ray.toml"
    config.write_text(
        f'[backends.cluster]\nkind = "ray"\nbase_url = "{ray_head.url}"\nprojects = ["cluster-*"]\n'
        "read_timeout = 10\nsettle_timeout = 30\n"
    )
    arguments = {"project_reference": "cluster-bulk", "name": name, "max": 10}
    try:
        async with client(stdio_server(home, "--config", str(config)), "legacy") as session:
            dry = (await session.call_tool("cancel_jobs", arguments)).structured_content
            real = await session.call_tool("cancel_jobs", {**arguments, "dry_run": False})
        assert not real.is_error, real.content[0].text
        assert {entry["job_id"] for entry in dry["jobs"]} == set(victims)
        answer = real.structured_content
        assert {entry["job_id"] for entry in answer["jobs"]} == set(victims)
        assert {entry["record"]["status"] for entry in answer["jobs"]} == {"canceled"}
        assert [ray_head.info(job_id)["status"] for job_id in victims] == ["STOPPED"] * 3
        assert ray_head.info(spared)["status"] == "RUNNING"
        assert ray_head.info(ray_jobs.running)["status"] == "RUNNING"
        rows = json.loads(run_cli(home, "audit", "--json").stdout)
        assert sorted(row["job_id"] for row in rows) == sorted(victims)
        assert {(row["backend"], row["tool"], row["outcome"]) for row in rows} == {
            ("cluster", "cancel_jobs", "ok")
        }
    finally:
        ray_head.stop_if_active(*victims, spared)
