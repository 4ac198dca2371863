"""Load with nothing lost: 200 concurrent cancels over HTTP, 1,000 sequential calls over stdio.

Every local job logs each SIGTERM it receives; at the end every job is `canceled` exactly once (one
transition, every cancel answer identical, process group gone, completed_at recorded, at least one
SIGTERM and no second one),
every record is valid, no call failed at the protocol level, and the server's resident memory did
not grow past a generous bound.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from ..battery_support import (
    RawStdioServer,
    cpu_burners,
    db_row,
    live_groups,
    shared_stdio_server,
    structured,
    submit_here,
    tool_result,
    vm_rss_kib,
)
from ..conftest import (
    TERM_LOGGER,
    client,
    job_process_group,
    start_http_server,
    stop_http_server,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
RECORD = Draft7Validator(load_schema("cancel_job.output"))
PAGE = Draft7Validator(load_schema("list_jobs.output"))
MAX_RSS_GROWTH_KIB = 30 * 1024


def submit_many(home: Path, tmp_path: Path, project: str, count: int) -> list[tuple[str, Path, int]]:
    """`count` TERM-logging jobs; (job id, signal log, process group) each."""
    logs = [tmp_path / f"{project}-{index}.signals" for index in range(count)]
    ids = [submit_here(home, project, sys.executable, "-c", TERM_LOGGER, str(log))["id"] for log in logs]
    # Ready once its SIGTERM handler is installed (before that a SIGTERM would kill it silently).
    wait_until(lambda: all(Path(f"{log}.ready").exists() for log in logs), timeout=30)
    groups = [wait_until(partial(job_process_group, home, job_id)) for job_id in ids]
    return list(zip(ids, logs, groups, strict=True))


def assert_canceled_exactly_once(home: Path, jobs: list[tuple[str, Path, int]]) -> None:
    """Each job canceled once, stopped by one SIGTERM, and its stop recorded."""
    assert live_groups([pgid for _, _, pgid in jobs]) == [], "processes outlived their recorded stop"
    for job_id, log, _ in jobs:
        row = db_row(home, job_id)
        assert row["status"] == "canceled", (job_id, row["status"])
        assert row["completed_at"] is not None, job_id
        assert log.read_text() == "TERM\n", f"{job_id}: {log.read_text().count('TERM')} SIGTERMs"
        # 143 would mean a second SIGTERM landed while the job was exiting on its first.
        assert row["exit_code"] == 0, (job_id, row["exit_code"])
    print(f"\n[battery-load] {len(jobs)} jobs canceled, each by exactly one SIGTERM")


def print_rss(label: str, start: int, warm: int, end: int) -> None:
    print(
        f"\n[battery-load] {label}: VmRSS {start / 1024:.1f} MB at start, {warm / 1024:.1f} MB after warm-up,"
        f" {end / 1024:.1f} MB at the end (growth {(end - warm) / 1024:+.1f} MB, bound"
        f" {MAX_RSS_GROWTH_KIB / 1024:.0f} MB)"
    )


@pytest.mark.anyio
async def test_200_concurrent_cancels_from_4_servers_on_50_jobs_under_cpu_load(
    home: Path, tmp_path: Path
) -> None:
    """4 HTTP server processes x 2 sessions x 25 concurrent calls, 4 cancels per job, both CPUs busy."""
    jobs = submit_many(home, tmp_path, "load", 50)
    servers = [start_http_server(home, "--max-concurrent-calls", "256") for _ in range(4)]
    sessions_per_server, per_session = 2, 25
    records: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id, _, _ in jobs}
    call_seconds: list[float] = []
    failures: list[str] = []
    try:
        rss_start = vm_rss_kib(servers[0].process.pid)
        async with contextlib.AsyncExitStack() as stack:  # the sessions: closed before the servers stop
            sessions = [
                await stack.enter_async_context(client(servers[index % len(servers)].url))
                for index in range(sessions_per_server * len(servers))
            ]
            for session in sessions:
                # Tools first, as clients do: otherwise the SDK lists them again for each result that
                # comes before its first listing did (to check it against the output schema).
                await session.list_tools()

            async def call_once(session: Any, job_id: str, tool: str, results: dict[str, list[Any]]) -> None:
                started = anyio.current_time()
                try:
                    result = await session.call_tool(tool, {"project_reference": "load", "job_id": job_id})
                except Exception as error:  # a protocol-level failure: counted, reported below
                    failures.append(f"{tool} {job_id}: {type(error).__name__}: {error}")
                    return
                call_seconds.append(anyio.current_time() - started)
                if result.is_error:
                    failures.append(f"{tool} {job_id}: {result.content[0].text}")
                    return
                results[job_id].append(result.structured_content)

            async def run(tool: str, results: dict[str, list[Any]]) -> float:
                """`per_session` concurrent calls on every session at once."""
                started = anyio.current_time()
                with anyio.fail_after(120):
                    async with anyio.create_task_group() as group:
                        for index, session in enumerate(sessions):
                            for call in range(per_session):
                                job_id = jobs[(index * per_session + call) % len(jobs)][0]
                                group.start_soon(call_once, session, job_id, tool, results)
                return anyio.current_time() - started

            # Warm-up: the same shape of load, reading only.
            reads: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id, _, _ in jobs}
            await run("get_job", reads)
            assert all(record["status"] == "working" for found in reads.values() for record in found)
            rss_warm = vm_rss_kib(servers[0].process.pid)
            call_seconds.clear()
            with cpu_burners(2):
                elapsed = await run("cancel_job", records)
            rss_end = vm_rss_kib(servers[0].process.pid)
    finally:
        stdouts = [stop_http_server(server) for server in servers]
    calls = sessions_per_server * len(servers) * per_session
    print(
        f"\n[battery-load] HTTP, 2 CPU burners: {calls} concurrent cancels from {len(servers)} servers,"
        f" all returned in {elapsed:.2f} s; slowest call {max(call_seconds):.2f} s"
    )
    print_rss("HTTP server", rss_start, rss_warm, rss_end)
    assert stdouts == [""] * len(servers)
    assert failures == [], failures[:5]
    assert max(call_seconds) < 60, "every call returns within seconds, even on a starved machine"
    assert sum(len(found) for found in records.values()) == calls
    for job_id, found in records.items():
        assert len(found) == calls // len(jobs), job_id
        for record in found:
            RECORD.validate(record)
        assert all(record == found[0] for record in found), f"{job_id}: the cancels disagree"
        assert found[0]["status"] == "canceled"
        assert found[0]["completed_at"] is not None
    assert_canceled_exactly_once(home, jobs)
    assert rss_end - rss_warm < MAX_RSS_GROWTH_KIB


@pytest.fixture(scope="module")
def stdio_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stdio-home")


@pytest.fixture(scope="module")
def stdio(stdio_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawStdioServer]:
    """The stdio server of the tests below (each its own project and jobs)."""
    with shared_stdio_server(stdio_home, tmp_path_factory.mktemp("stdio") / "stderr.txt") as server:
        yield server


def test_1000_sequential_calls_over_stdio(stdio_home: Path, tmp_path: Path, stdio: RawStdioServer) -> None:
    home, server = stdio_home, stdio
    jobs = submit_many(home, tmp_path, "seq", 10)
    ids = [job_id for job_id, _, _ in jobs]
    first_final_cancel = 1000 - len(ids)  # the last calls cancel every job, each in turn
    rng = random.Random(6)
    final: dict[str, dict[str, Any]] = {}
    counts = {"get_job": 0, "cancel_job": 0, "list_jobs": 0}
    cursor: str | None = None
    rss = [vm_rss_kib(server.pid)]
    for call in range(1000):
        if call == 100:
            rss.append(vm_rss_kib(server.pid))  # after the warm-up
        final_cancel = call >= first_final_cancel
        job_id = ids[call - first_final_cancel] if final_cancel else rng.choice(ids)
        tool = "cancel_job" if final_cancel else rng.choices(list(counts), weights=(5, 2, 3))[0]
        counts[tool] += 1
        if tool == "list_jobs":
            status = rng.choice([None, "working", "canceled"])
            arguments: dict[str, Any] = {"project_reference": "seq", "limit": rng.randint(1, 7)}
            if status:
                arguments["status"] = status
            if cursor is not None and status is None:
                arguments["cursor"] = cursor
            page = structured(tool_result(server.call_tool(tool, arguments)))
            PAGE.validate(page)
            assert all(status is None or job["status"] == status for job in page["jobs"])
            cursor = page["next_cursor"] if status is None else None
            for job in page["jobs"]:
                if job["id"] in final:
                    assert job == final[job["id"]], "a listing disagrees with the job's final record"
            continue
        record = structured(
            tool_result(server.call_tool(tool, {"project_reference": "seq", "job_id": job_id}))
        )
        RECORD.validate(record)
        if job_id in final:
            assert record == final[job_id], f"{job_id} changed after it was canceled"
        elif tool == "cancel_job":
            assert record["status"] == "canceled"
            assert record["completed_at"] is not None
            final[job_id] = record
        else:
            assert record["status"] == "working"
    rss.append(vm_rss_kib(server.pid))
    stderr = server.stderr_path.read_text(errors="replace")
    print(f"\n[battery-load] stdio: {sum(counts.values())} sequential requests, by tool {counts}")
    print_rss("stdio server", *rss)
    assert sum(counts.values()) == 1000
    assert "Traceback" not in stderr, stderr[-3000:]
    assert sorted(final) == sorted(ids)
    assert_canceled_exactly_once(home, jobs)
    assert rss[2] - rss[1] < MAX_RSS_GROWTH_KIB


SLOW_TERM_HANDLER = (
    "import signal, sys, time\n"
    "def on_term(*_):\n"
    "    open(sys.argv[1], 'a').write('TERM\\n')\n"
    "    time.sleep(1)  # a graceful shutdown that takes a moment\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "open(sys.argv[1] + '.ready', 'w').close()\n"
    "time.sleep(600)\n"
)


def test_a_cancel_sends_one_sigterm_even_when_the_job_takes_time_to_stop(
    stdio_home: Path, tmp_path: Path, stdio: RawStdioServer
) -> None:
    log = tmp_path / "signals.txt"
    job = submit_here(stdio_home, "once", sys.executable, "-c", SLOW_TERM_HANDLER, str(log))
    wait_until(lambda: Path(f"{log}.ready").exists())
    answer = stdio.call_tool("cancel_job", {"project_reference": "once", "job_id": job["id"]})
    record = structured(tool_result(answer))
    assert record["status"] == "canceled"
    assert log.read_text() == "TERM\n", f"{log.read_text().count('TERM')} SIGTERMs"
