"""Slurm cases of issue 20 against the real controller the suite starts (tests/slurm_cluster.py), through
a real MCP client and the server as a stdio subprocess: a job array's tasks by `J_T` (running ones, the
pending tasks of a held array, tasks that do not exist), a repeated cancel, and a job of another user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ...conftest import client, stdio_server
from ...slurm_cluster import API, SlurmCluster
from .test_e2e import config_file

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("slurm_cluster")]

SLEEP = "#!/bin/bash\nsleep 600\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def session(
    slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    home = tmp_path_factory.mktemp("home")
    async with client(stdio_server(home, "--config", str(config_file(slurm_cluster, home)))) as session:
        yield session


async def call(session: Any, tool: str, job_id: str) -> tuple[str | None, Any]:
    """(the error code or None, the text or the record)."""
    result = await session.call_tool(tool, {"project_reference": "alpha", "job_id": job_id})
    if result.is_error:
        text: str = result.content[0].text
        return text.split(":", 1)[0], text
    return None, result.structured_content


async def test_a_running_arrays_tasks_are_read_and_canceled_by_id(
    slurm_cluster: SlurmCluster, session: Any
) -> None:
    array = slurm_cluster.submit(SLEEP, name="array", account="alpha", array="1-2")
    slurm_cluster.wait_for_state(array, "RUNNING")
    code, record = await call(session, "get_job", f"{array}_2")
    assert code is None, record
    # A running task has a job id of its own (the last task keeps the array's): the record is Slurm's.
    task = slurm_cluster.http.get(f"{API}/job/{array}_2").json()["jobs"][0]
    assert (record["id"], record["batch_id"]) == (str(task["job_id"]), str(array))
    for tool in ("get_job", "cancel_job"):
        code, text = await call(session, tool, f"{array}_99")
        assert code == "not_found", text
    code, canceled = await call(session, "cancel_job", f"{array}_2")
    assert code is None, canceled
    assert canceled["status"] == "canceled"
    code, again = await call(session, "cancel_job", f"{array}_2")  # idempotent: the record comes back
    assert code is None, again
    assert (again["status"], again["completed_at"]) == ("canceled", canceled["completed_at"])
    code, other = await call(session, "get_job", f"{array}_1")
    assert (code, other["status"]) == (None, "working"), "only the task named was canceled"
    await call(session, "cancel_job", str(array))


async def test_a_pending_task_of_a_held_array_is_read_and_canceled(
    slurm_cluster: SlurmCluster, session: Any
) -> None:
    held = slurm_cluster.submit(SLEEP, name="held-array", account="alpha", array="1-3", hold=True)
    code, record = await call(session, "get_job", f"{held}_2")
    assert code is None, record
    assert (record["id"], record["status"], record["batch_id"]) == (f"{held}_2", "submitted", str(held))
    code, text = await call(session, "get_job", f"{held}_99")
    assert code == "not_found", text
    code, canceled = await call(session, "cancel_job", f"{held}_2")
    assert code is None, canceled
    assert (canceled["id"], canceled["status"], canceled["started_at"]) == (f"{held}_2", "canceled", None)
    assert slurm_cluster.job(held)["array_task_string"] == "1,3", "only task 2 left the array"
    await call(session, "cancel_job", str(held))


async def test_a_job_of_another_user_is_unauthorized_and_left_alone(
    slurm_cluster: SlurmCluster, session: Any
) -> None:
    roots = slurm_cluster.sbatch("--hold", "--account=alpha", "--job-name=root-array", "--wrap=sleep 1")
    code, text = await call(session, "cancel_job", str(roots))
    assert code == "unauthorized", text
    assert "Access/permission denied" in text
    assert slurm_cluster.job(roots)["job_state"] == "PENDING"


async def test_several_tasks_of_an_array_are_read_and_canceled_as_one_id(
    slurm_cluster: SlurmCluster, session: Any
) -> None:
    held = slurm_cluster.submit(SLEEP, name="held-tasks", account="alpha", array="1-4", hold=True)
    code, record = await call(session, "get_job", f"{held}_[1-2]")
    assert code is None, record
    assert (record["id"], record["status"], record["batch_id"]) == (f"{held}_[1-2]", "submitted", str(held))
    code, text = await call(session, "get_job", f"{held}_[7-8]")
    assert code == "not_found", text
    code, canceled = await call(session, "cancel_job", f"{held}_[1-2]")
    assert code is None, canceled
    assert (canceled["id"], canceled["status"]) == (f"{held}_[1-2]", "canceled")
    assert slurm_cluster.job(held)["array_task_string"] == "3-4", "only tasks 1 and 2 left the array"

    running = slurm_cluster.submit(SLEEP, name="running-tasks", account="alpha", array="1-2")
    slurm_cluster.wait_for_state(running, "RUNNING")
    code, stopped = await call(session, "cancel_job", f"{running}_[1,2]")
    assert code is None, stopped
    assert (stopped["id"], stopped["status"]) == (f"{running}_[1,2]", "canceled")
    await call(session, "cancel_job", str(held))
