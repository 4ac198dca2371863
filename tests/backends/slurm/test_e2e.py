"""End to end on a real Slurm cluster (issue 15, "must show"): jobs submitted as an unprivileged user
through slurmrestd, then listed, read and canceled through a real MCP client talking to the server as a
stdio subprocess, configured by a TOML file with `kind = "slurm"` and the slurmrestd unix socket.

The cluster is the session's `slurm_cluster` fixture (tests/slurm_cluster.py); it skips, saying why,
where Slurm cannot run (not root, packages not installed: `.ci/install-slurm.sh`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from ...cluster_support import poll
from ...conftest import client, stdio_server
from ...listing import all_pages
from ...slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("slurm_cluster")]

RECORD = Draft7Validator(load_schema("get_job.output"))
CANCELED = Draft7Validator(load_schema("cancel_job.output"))
ACTIVE = ("PENDING", "RUNNING", "COMPLETING")


def trapping_script(marker: Path) -> str:
    """Logs SIGTERM to `marker`, takes a second to clean up, logs EXIT and exits 0; `marker`.ready once
    the trap is set. Slurm reports the job COMPLETING during that second.

    Its child ignores SIGTERM, so that the script ends through its trap only: Slurm (proctrack/linuxproc)
    signals the step's processes one by one, and a child that died first let the script's `wait` return
    and the script end before its own SIGTERM came (seen under load: no TERM logged)."""
    return (
        "#!/bin/bash\n"
        f"trap 'echo TERM >> {marker}; kill -KILL $child; sleep 1; echo EXIT >> {marker}; exit 0' TERM\n"
        "(trap '' TERM; exec sleep 600) &\n"
        "child=$!\n"
        f"touch {marker}.ready\n"
        "wait\n"
    )


def slurm_order(cluster: SlurmCluster, account: str, state: str | None = None) -> list[str]:
    """The account's jobs as the backend must page them: newest first by (submit_time, job id)."""
    jobs = [job for job in cluster.jobs() if job["account"] == account and state in (None, job["job_state"])]
    jobs.sort(key=lambda job: (job["submit_time"], job["job_id"]), reverse=True)
    return [str(job["job_id"]) for job in jobs]


def config_file(cluster: SlurmCluster, tmp_path: Path, api_version: str | None = None) -> Path:
    version = f'api_version = "{api_version}"\n' if api_version else ""
    path = tmp_path / "slurm.toml"
    path.write_text(
        "[backends.hpc]\n"
        'kind = "slurm"\n'
        f'base_url = "{cluster.base_url}"\n'
        f"{version}"
        'projects = ["alpha", "beta"]\n'
        "settle_timeout = 20\n"
        "read_output = true\n"
        "[backends.queue]\n"
        'kind = "slurm"\n'
        f'base_url = "{cluster.base_url}"\n'
        'scope = "partition"\n'
        'projects = ["other"]\n'
    )
    return path


@dataclass
class Jobs:
    """The jobs the tests here read; no test changes them (the cancel tests submit their own)."""

    tag: str
    finished: list[int]
    failed: int
    held: int
    running: int  # with a time limit of 10 minutes
    bystander: int
    foreign: int  # account "beta"
    roots: int  # root's held job: slurmrestd's user may not cancel it


@pytest.fixture(scope="module")
def jobs(slurm_cluster: SlurmCluster) -> Jobs:
    cluster = slurm_cluster
    tag = uuid.uuid4().hex[:6]
    submitted = Jobs(
        tag=tag,
        finished=[
            cluster.submit("#!/bin/bash\ntrue\n", name=f"ok-{tag}-{i}", account="alpha") for i in range(3)
        ],
        failed=cluster.submit(
            "#!/bin/bash\nexit 3\n", name=f"exit3-{tag}", account="alpha", partition="other"
        ),
        held=cluster.submit("#!/bin/bash\ntrue\n", name=f"held-{tag}", account="alpha", hold=True),
        running=cluster.submit(
            "#!/bin/bash\nsleep 600\n", name=f"running-{tag}", account="alpha", time_limit=10
        ),
        bystander=cluster.submit("#!/bin/bash\nsleep 600\n", name=f"bystander-{tag}", account="alpha"),
        foreign=cluster.submit(
            trapping_script(foreign_marker(cluster, tag)), name=f"foreign-{tag}", account="beta"
        ),
        roots=cluster.sbatch("--hold", "--account=alpha", f"--job-name=root-{tag}", "--wrap=sleep 1"),
    )
    for job_id in submitted.finished:
        cluster.wait_for_state(job_id, "COMPLETED")
    cluster.wait_for_state(submitted.failed, "FAILED")
    for job_id in (submitted.running, submitted.bystander, submitted.foreign):
        cluster.wait_for_state(job_id, "RUNNING")
    poll(lambda: Path(f"{foreign_marker(cluster, tag)}.ready").exists(), timeout=30, what="the trap")
    return submitted


def foreign_marker(cluster: SlurmCluster, tag: str) -> Path:
    return cluster.work / f"term-{tag}-beta"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session serves every test here


@pytest.fixture(scope="module")
async def session(
    slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    """One server for the module: the tests only read, or cancel jobs of their own."""
    home = tmp_path_factory.mktemp("home")
    async with client(stdio_server(home, "--config", str(config_file(slurm_cluster, home)))) as session:
        yield session


async def error_of(session: Any, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    return text


async def test_list_jobs_pages_the_account_in_slurms_order(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    cluster = slurm_cluster
    everything = slurm_order(cluster, "alpha")
    for reference in ("alpha", "hpc:alpha"):
        ids, pages = await all_pages(session, reference, limit=3)
        assert ids == everything
        assert pages >= 3


async def test_list_jobs_filters_by_status(slurm_cluster: SlurmCluster, jobs: Jobs, session: Any) -> None:
    cluster = slurm_cluster
    completed, pages = await all_pages(session, "alpha", limit=2, status="completed")
    assert completed == slurm_order(cluster, "alpha", "COMPLETED")
    assert set(map(str, jobs.finished)) <= set(completed)
    assert pages >= 2
    working, _ = await all_pages(session, "alpha", limit=1, status="working")
    assert working == slurm_order(cluster, "alpha", "RUNNING")
    assert [job for job in working if job in (str(jobs.running), str(jobs.bystander))] == [
        str(jobs.bystander),
        str(jobs.running),
    ]
    submitted, _ = await all_pages(session, "alpha", limit=5, status="submitted")
    assert {str(jobs.held), str(jobs.roots)} <= set(submitted)
    # Another scope: the partition "other" holds the failed job, whatever its account.
    assert str(jobs.failed) in (await all_pages(session, "queue:other", limit=5))[0]


async def test_get_job_maps_slurms_answer(slurm_cluster: SlurmCluster, jobs: Jobs, session: Any) -> None:
    failed = await session.call_tool("get_job", {"project_reference": "alpha", "job_id": str(jobs.failed)})
    running = await session.call_tool("get_job", {"project_reference": "alpha", "job_id": str(jobs.running)})
    record = failed.structured_content
    RECORD.validate(record)
    assert (record["status"], record["exit_code"], record["name"]) == ("failed", 3, f"exit3-{jobs.tag}")
    assert record["failed_reason"] == "Slurm reports the job FAILED (NonZeroExitCode)."
    assert record["config"]["partition"] == "other"
    assert (running.structured_content["status"], running.structured_content["timeout_seconds"]) == (
        "working",
        600,
    )


async def test_a_job_of_another_account_is_not_found_and_not_canceled(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    for tool in ("get_job", "cancel_job"):
        text = await error_of(session, tool, project_reference="alpha", job_id=str(jobs.foreign))
        assert text.startswith("not_found: "), text
    assert slurm_cluster.job(jobs.foreign)["job_state"] == "RUNNING"
    assert not foreign_marker(slurm_cluster, jobs.tag).exists()


async def test_cancel_job_waits_for_slurms_cancelled_after_sigterm(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    """SIGTERM reaches the script, and the answer says canceled only once Slurm says CANCELLED (after the
    trap's second of cleanup), with progress meanwhile; canceling it again is not_cancellable."""
    cluster = slurm_cluster
    marker = cluster.work / f"term-{jobs.tag}-victim"
    victim = cluster.submit(trapping_script(marker), name=f"victim-{jobs.tag}", account="alpha")
    cluster.wait_for_state(victim, "RUNNING")
    poll(lambda: Path(f"{marker}.ready").exists(), timeout=30, what="the trap")
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    result = await session.call_tool(
        "cancel_job",
        {"project_reference": "hpc:alpha", "job_id": str(victim)},
        progress_callback=on_progress,
    )
    again = await session.call_tool("cancel_job", {"project_reference": "alpha", "job_id": str(victim)})
    assert not result.is_error, result.content[0].text
    canceled = result.structured_content
    CANCELED.validate(canceled)
    assert (canceled["id"], canceled["status"]) == (str(victim), "canceled")
    assert canceled["completed_at"] is not None
    assert marker.read_text() == "TERM\nEXIT\n"
    assert cluster.job(victim)["job_state"] == "CANCELLED"
    assert updates, "no progress while the job was COMPLETING"
    assert all(total == 20 for _, total, _ in updates)
    assert cluster.job(jobs.bystander)["job_state"] == "RUNNING", "only the job named was canceled"
    assert not again.is_error, again.content[0].text  # idempotent: the canceled record comes back
    assert again.structured_content["status"] == "canceled"
    assert again.structured_content["completed_at"] == canceled["completed_at"]


async def test_a_pending_job_is_canceled_at_once_and_never_runs(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    cluster = slurm_cluster
    ran = cluster.work / f"never-ran-{jobs.tag}"
    held = cluster.submit(f"#!/bin/bash\ntouch {ran}\n", name=f"held-{jobs.tag}", account="alpha", hold=True)
    result = await session.call_tool("cancel_job", {"project_reference": "alpha", "job_id": str(held)})
    never_ran = result.structured_content
    assert never_ran["status"] == "canceled", result.content[0].text
    assert (never_ran["started_at"], never_ran["exit_code"]) == (None, None)
    assert cluster.job(held)["job_state"] == "CANCELLED"
    assert not ran.exists()


async def test_a_finished_job_is_not_cancellable(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    text = await error_of(session, "cancel_job", project_reference="alpha", job_id=str(jobs.finished[0]))
    assert text.startswith("not_cancellable: "), text
    assert "already completed" in text
    assert slurm_cluster.job(jobs.finished[0])["job_state"] == "COMPLETED"


async def test_unknown_and_malformed_ids(slurm_cluster: SlurmCluster, jobs: Jobs, session: Any) -> None:
    for tool in ("get_job", "cancel_job"):
        text = await error_of(session, tool, project_reference="alpha", job_id="99999999")
        assert text.startswith("not_found: "), text
        text = await error_of(session, tool, project_reference="alpha", job_id="12; rm")
        assert text.startswith("invalid_argument: "), text


async def test_slurms_refusal_reaches_the_client_in_its_own_words(
    slurm_cluster: SlurmCluster, jobs: Jobs, session: Any
) -> None:
    """slurmrestd's user may not cancel root's job."""
    text = await error_of(session, "cancel_job", project_reference="alpha", job_id=str(jobs.roots))
    assert text.startswith("unauthorized: "), text
    assert "Access/permission denied" in text
    assert "nothing was canceled" in text
    assert slurm_cluster.job(jobs.roots)["job_state"] == "PENDING"


async def test_get_job_logs_reads_the_jobs_output_file(slurm_cluster: SlurmCluster, session: Any) -> None:
    script = "#!/bin/bash\nfor i in $(seq 1 200); do echo slurm line $i; done\n"
    job_id = slurm_cluster.submit(script, name="printer", account="alpha")
    slurm_cluster.wait_for_state(job_id, "COMPLETED")
    result = await session.call_tool(
        "get_job_logs", {"project_reference": "alpha", "job_id": str(job_id), "tail_lines": 3}
    )
    assert not result.is_error, result.content[0].text
    logs = result.structured_content
    assert logs["lines"] == ["slurm line 198", "slurm line 199", "slurm line 200"]
    path = slurm_cluster.work / f"slurm-{job_id}.out"  # sbatch's default, in the working directory
    assert logs["source"].startswith(f"{path} (the job's StdOut, written on ")
    assert logs["log_bytes"] == len("".join(f"slurm line {i}\n" for i in range(1, 201)))
    other = await error_of(session, "get_job_logs", project_reference="beta", job_id=str(job_id))
    assert other.startswith("not_found: ")
    not_read = await error_of(session, "get_job_logs", project_reference="other", job_id=str(job_id))
    assert not_read.startswith("not_supported: ")
    assert "read_output = true" in not_read
    path.unlink()
    gone = await error_of(session, "get_job_logs", project_reference="alpha", job_id=str(job_id))
    assert gone.startswith(f"not_supported: The output of job '{job_id}' is in {path} on ")
    assert "which this machine cannot read" in gone
