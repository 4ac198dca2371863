"""Crash safety of the local runtime: kill -9 a supervisor, or the server in the middle of a cancel.

The database must stay consistent (`PRAGMA integrity_check`) and every job's final state truthful: a
job whose supervisor died is reconciled to `failed` with the reason and its processes stopped; a
cancel whose server died is finished by the supervisor (canceled, processes gone, completed_at).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from .battery_support import RawStdioServer, db_row, integrity_check, structured
from .conftest import TERM_LOGGER, process_group_alive, submit, wait_for_process_group, wait_until

RECORD = Draft7Validator(load_schema("get_job.output"))
# Logs each SIGTERM to argv[1] and carries on: only SIGKILL stops it.
TERM_IGNORER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: open(sys.argv[1], 'a').write('TERM\\n'))\n"
    "open(sys.argv[1] + '.ready', 'w').close()\n"
    "while True:\n"
    "    time.sleep(1)\n"
)


@pytest.fixture
def servers(home: Path, tmp_path: Path) -> Iterator[list[RawStdioServer]]:
    started: list[RawStdioServer] = []
    yield started
    for server in started:
        server.kill()
        server.close()


def start_server(servers: list[RawStdioServer], home: Path, tmp_path: Path) -> RawStdioServer:
    server = RawStdioServer(home, "--log-level", "info", stderr_path=tmp_path / f"stderr-{len(servers)}.txt")
    servers.append(server)
    server.initialize()
    return server


def pid_of(identity: str | None) -> int:
    assert identity, "no process recorded"
    return int(identity.split(":")[0])


def get_job(server: RawStdioServer, project: str, job_id: str) -> dict[str, Any]:
    record = structured(
        server.call_tool("get_job", {"project_reference": project, "job_id": job_id})["result"]
    )
    RECORD.validate(record)
    return record


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def test_a_killed_supervisor_is_reconciled_on_read(
    home: Path, tmp_path: Path, servers: list[RawStdioServer]
) -> None:
    signals = tmp_path / "signals.txt"
    job = submit(home, "crash", sys.executable, "-c", TERM_LOGGER, str(signals))
    pgid = wait_for_process_group(home, job["id"])
    wait_until(lambda: Path(f"{signals}.ready").exists())  # its SIGTERM handler is installed
    supervisor = pid_of(db_row(home, job["id"])["supervisor"])
    server = start_server(servers, home, tmp_path)
    assert get_job(server, "crash", job["id"])["status"] == "working"

    os.kill(supervisor, signal.SIGKILL)
    started = time.monotonic()
    record = wait_until(
        lambda: (record := get_job(server, "crash", job["id"]))["status"] != "working" and record, timeout=15
    )
    print(
        f"\n[battery-crash] supervisor {supervisor} killed;"
        f" job reconciled in {time.monotonic() - started:.2f} s"
    )

    assert record["status"] == "failed"
    assert f"supervisor (pid {supervisor}) is gone" in record["failed_reason"]
    assert record["completed_at"] is not None
    assert not process_group_alive(pgid), "the job's processes outlived the reconcile"
    assert signals.read_text() == "TERM\n"
    assert get_job(server, "crash", job["id"]) == record, "a second read changes nothing"
    assert integrity_check(home) == "ok"


def test_a_server_killed_mid_cancel_leaves_the_supervisor_to_finish(
    home: Path, tmp_path: Path, servers: list[RawStdioServer]
) -> None:
    signals = tmp_path / "signals.txt"
    job = submit(
        home, "crash", sys.executable, "-c", TERM_IGNORER, str(signals), options=("--grace-period", "3")
    )
    pgid = wait_for_process_group(home, job["id"])
    wait_until(lambda: Path(f"{signals}.ready").exists())  # its SIGTERM handler is installed
    server = start_server(servers, home, tmp_path)
    server.send(
        "tools/call", {"name": "cancel_job", "arguments": {"project_reference": "crash", "job_id": job["id"]}}
    )
    # The cancel is recorded and the job has had its SIGTERM: the server is now waiting out the grace period.
    wait_until(lambda: db_row(home, job["id"])["status"] == "canceled" and signals.exists(), timeout=15)
    assert db_row(home, job["id"])["completed_at"] is None
    server.kill()
    killed_at = time.monotonic()

    row = wait_until(lambda: (row := db_row(home, job["id"]))["completed_at"] and row, timeout=20)
    print(
        f"\n[battery-crash] server killed mid-cancel;"
        f" stop recorded {time.monotonic() - killed_at:.2f} s later"
    )
    assert row["status"] == "canceled"
    assert row["exit_code"] == 128 + signal.SIGKILL
    assert not process_group_alive(pgid)
    assert integrity_check(home) == "ok"
    reader = start_server(servers, home, tmp_path)
    record = get_job(reader, "crash", job["id"])
    assert record["status"] == "canceled"
    assert record["completed_at"] == row["completed_at"]


def test_a_cancel_orphaned_by_server_and_supervisor_is_finished_on_read(
    home: Path, tmp_path: Path, servers: list[RawStdioServer]
) -> None:
    signals = tmp_path / "signals.txt"
    job = submit(
        home, "crash", sys.executable, "-c", TERM_IGNORER, str(signals), options=("--grace-period", "2")
    )
    pgid = wait_for_process_group(home, job["id"])
    wait_until(lambda: Path(f"{signals}.ready").exists())  # its SIGTERM handler is installed
    supervisor = pid_of(db_row(home, job["id"])["supervisor"])
    server = start_server(servers, home, tmp_path)
    server.send(
        "tools/call", {"name": "cancel_job", "arguments": {"project_reference": "crash", "job_id": job["id"]}}
    )
    wait_until(lambda: db_row(home, job["id"])["status"] == "canceled" and signals.exists(), timeout=15)
    server.kill()
    os.kill(supervisor, signal.SIGKILL)
    try:
        reader = start_server(servers, home, tmp_path)
        deadline = time.monotonic() + 15  # the rest of the 2 s grace period, then SIGKILL
        record = get_job(reader, "crash", job["id"])
        while record["completed_at"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
            record = get_job(reader, "crash", job["id"])
        assert integrity_check(home) == "ok"
        assert record["status"] == "canceled"
        assert record["completed_at"] is not None, "reported canceled, but nothing recorded it stopped"
        assert not process_group_alive(pgid), "reported canceled while its processes still run"
    finally:
        kill_group(pgid)
