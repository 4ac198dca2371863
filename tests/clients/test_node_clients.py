"""Real Node MCP clients over stdio: the AI SDK's (@ai-sdk/mcp, default settings: it probes with
server/discover for one second, then falls back to initialize on the same pipe) and the TypeScript
SDK 2.x client in `auto` mode. Each opens new connections in a row and cancels a real local job on each.

Five connections in a row each, as issue 12 asks: the AI SDK's fallback used to fail 0 of 8 times. A
connection costs about 1.5 s of CPU with the AI SDK, 3 s with the TS SDK (which starts the server twice per
connection: once for its server/discover probe, which it then closes, and once for the session)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import TERM_LOGGER, process_group_alive, submit, wait_for_process_group, wait_until
from ..node_tools import AI_SDK_MCP, NODE_MODULES, SCRIPTS, TS_SDK_CLIENT, require

pytestmark = pytest.mark.slow
NODE = require(AI_SDK_MCP, TS_SDK_CLIENT)
PROJECT = "node-clients"
CONNECTIONS = {"ai_sdk_cancel.mjs": 5, "ts_sdk_cancel.mjs": 5}


def run_node_client(script: str, home: Path, workdir: Path, job_ids: list[str]) -> list[dict[str, Any]]:
    """Run a client script beside a node_modules link (ES modules resolve packages from their own path)."""
    workdir.mkdir()
    (workdir / "node_modules").symlink_to(NODE_MODULES)
    shutil.copy(SCRIPTS / script, workdir / script)
    server = {
        "command": sys.executable,
        "args": ["-m", "cancel_job_mcp"],
        "env": {"CANCEL_JOB_MCP_HOME": str(home), "PATH": os.environ.get("PATH", "")},
        "project": PROJECT,
        "jobIds": job_ids,
    }
    done = subprocess.run(
        [str(NODE), str(workdir / script), json.dumps(server)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("script", list(CONNECTIONS))
def test_a_node_client_cancels_real_jobs_connection_after_connection(
    home: Path, tmp_path: Path, script: str
) -> None:
    logs = [tmp_path / f"term-{index}.log" for index in range(CONNECTIONS[script])]
    jobs = [submit(home, PROJECT, sys.executable, "-c", TERM_LOGGER, str(log))["id"] for log in logs]
    groups = [wait_for_process_group(home, job_id) for job_id in jobs]
    for log in logs:
        wait_until(Path(f"{log}.ready").exists)

    results = run_node_client(script, home, tmp_path / "client", jobs)

    assert [result["jobId"] for result in results] == jobs
    for result in results:
        assert result["isError"] is False, result
        assert result["record"]["status"] == "canceled", result
    for log, group in zip(logs, groups, strict=True):
        assert log.read_text() == "TERM\n", "each job got exactly one SIGTERM"
        wait_until(lambda group=group: not process_group_alive(group))
