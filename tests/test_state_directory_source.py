"""One state directory for the tools and the CLI: `[backends.local] home` in the configuration file is
where `submit` records a job, where `show`, `cancel`, `jobs` and `prune` find it, and where the MCP
tools find it too (it was the command line's home for the first four, the file's for the tools)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import client, env_for, stdio_server


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cancel_job_mcp", *args], env=env_for(home), capture_output=True, text=True,
        check=check, timeout=60,
    )  # fmt: skip


@pytest.fixture
def configured(tmp_path: Path, home: Path) -> Path:
    """A configuration file in the command line's home whose local backend keeps its jobs elsewhere."""
    (tmp_path / "jobs-here").mkdir(mode=0o700)
    (home / "config.toml").write_text(
        f'[backends.local]\nkind = "local"\nhome = "{tmp_path / "jobs-here"}"\n'
    )
    return tmp_path / "jobs-here"


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_configured_home_serves_submit_show_cancel_jobs_and_the_tools(
    home: Path, configured: Path
) -> None:
    job = json.loads(
        cli(home, "submit", "--project", "demo", "--grace-period", "1", "--", "sleep", "600").stdout
    )
    assert (configured / "jobs.sqlite3").is_file()
    assert not (home / "jobs.sqlite3").exists()

    shown = json.loads(cli(home, "show", "demo", job["id"]).stdout)
    assert shown["id"] == job["id"]
    assert job["id"] in cli(home, "jobs").stdout
    assert job["id"] in cli(home, "jobs", "--project", "demo").stdout

    async with client(stdio_server(home)) as session:
        found = await session.call_tool("get_job", {"project_reference": "demo", "job_id": job["id"]})
        assert not found.is_error, found
        assert found.structured_content["id"] == job["id"]

    canceled = json.loads(cli(home, "cancel", "demo", job["id"]).stdout)
    assert canceled["status"] == "canceled"
    assert canceled["exit_code"] == 128 + signal.SIGTERM


def test_submit_accepts_the_backend_prefix_the_tools_accept(home: Path, configured: Path) -> None:
    job = json.loads(cli(home, "submit", "--project", "local:demo", "--", "true").stdout)
    assert job["project_id"] == "demo"
    assert json.loads(cli(home, "show", "local:demo", job["id"]).stdout)["id"] == job["id"]


@pytest.mark.parametrize(
    ("project", "problem"),
    [
        ("gpu-train", "not_supported: backend 'cluster' (ray) does not offer submit."),
        ("cluster:train", "not_supported: backend 'cluster' (ray) does not offer submit."),
        ("nope:train", "There is no backend named 'nope'."),
    ],
)
def test_submit_to_a_project_no_local_backend_serves_is_refused_and_records_nothing(
    home: Path, project: str, problem: str
) -> None:
    (home / "config.toml").write_text(
        '[backends.cluster]\nkind = "ray"\nbase_url = "http://127.0.0.1:9"\nprojects = ["gpu-*"]\n'
    )
    done = cli(home, "submit", "--project", project, "--", "true", check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert problem in done.stderr
    assert not (home / "jobs.sqlite3").exists()
