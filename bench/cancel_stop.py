"""Cancel-to-stopped latency of the local runtime: from the cancel_job call to the job's process group's end.

Under load: 50 jobs (`sleep 600`), 200 concurrent cancel_job calls from 4 stdio server processes (4 calls
per job, 50 per server, all at once) while 2 CPU-burning processes keep both CPUs busy; timed until every
job's process group is gone and until every call has returned. Floor: the same 50 commands started from
Python in sessions of their own, stopped with killpg(SIGTERM) and reaped, under the same CPU load.

One at a time: two jobs, each submitted through the CLI and running before the clock starts:
- `sleep 600`, which exits on SIGTERM (the common path);
- `sh -c 'trap "" TERM; sleep 600'` submitted with `--grace-period 1`, which ignores SIGTERM, so the runtime
  has to wait out the grace period and SIGKILL the group.
Ours: one long-lived stdio session (SDK Client, mode=auto) calls cancel_job; a watcher polls the group's
members every millisecond until none is left running. Zombies do not count: here PID 1 reaps orphans late,
and a zombie holds no resources (tests/conftest.py judges the same way). Both the call's return and the
group's end are timed. Baseline: the floor for the same job, the same command in a new session started from
Python, stopped with killpg(SIGTERM) (then SIGKILL after 1 s for the second job) and reaped at once.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
from common import (
    BASELINE,
    OURS,
    OURS_KIND,
    Table,
    client,
    group_alive,
    group_members,
    job_process_group,
    kill_group_quietly,
    median,
    print_tables,
    ratio,
    running,
    spread,
    state_home,
    submit,
    wait_for,
)

PROJECT = "bench-stop"
JOBS = {
    "exits on SIGTERM": (("sleep", "600"), ()),
    "ignores SIGTERM (grace 1 s)": (("sh", "-c", 'trap "" TERM; sleep 600'), ("--grace-period", "1")),
}


def watch_many(members: list[int], started: threading.Event, result: list[float]) -> None:
    """Like `watch_group` for many processes: looks every 5 ms, only at those still running, so the
    watcher does not take the CPU the cancels need."""
    started.set()
    left = set(members)
    while left:
        left = {pid for pid in left if running(pid)}
        time.sleep(0.005)
    result.append(time.perf_counter())


def watch_group(members: list[int], started: threading.Event, result: list[float]) -> None:
    started.set()
    while any(running(pid) for pid in members):
        time.sleep(0.001)
    result.append(time.perf_counter())


async def ours_once(
    session: object, home: Path, command: tuple[str, ...], options: tuple[str, ...]
) -> tuple[float, float]:
    job = submit(home, PROJECT, *command, options=options)["id"]
    pgid: int = wait_for(lambda: (g := job_process_group(home, job)) and group_alive(g) and g)
    await anyio.sleep(0.2)  # let a shell install its trap and start its child
    members = group_members(pgid)
    started, gone_at = threading.Event(), []
    watcher = threading.Thread(target=watch_group, args=(members, started, gone_at), daemon=True)
    watcher.start()
    started.wait()
    start = time.perf_counter()
    result = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": job})  # type: ignore[attr-defined]
    returned = time.perf_counter() - start
    if result.is_error or result.structured_content["status"] != "canceled":
        raise RuntimeError(f"cancel failed: {result}")
    await anyio.to_thread.run_sync(watcher.join, 30)
    if not gone_at:
        kill_group_quietly(pgid)
        raise RuntimeError(f"process group {pgid} still alive after the cancel")
    return returned, gone_at[0] - start


LOAD_JOBS, LOAD_SERVERS, LOAD_CALLS = 50, 4, 200


@contextlib.contextmanager
def cpu_burners(count: int = 2) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def ours_under_load(home: Path) -> tuple[float, float, float]:
    """(all groups gone, all calls returned, slowest call), seconds from the first call."""
    from cancel_job_mcp.backends.local.runtime import submit_job

    jobs = [submit_job(home, PROJECT, ["sleep", "600"])["id"] for _ in range(LOAD_JOBS)]
    groups = [
        wait_for(lambda job=job: (g := job_process_group(home, job)) and group_alive(g) and g, 60)
        for job in jobs
    ]
    members = [pid for group in groups for pid in group_members(group)]
    slowest: list[float] = []
    started, gone_at = threading.Event(), []
    watcher = threading.Thread(target=watch_many, args=(members, started, gone_at), daemon=True)

    async def one_server(index: int) -> None:
        async with client(OURS_KIND.stdio_params(home)) as session:
            ready.append(index)
            if len(ready) == LOAD_SERVERS:
                all_ready.set()

            async def call(job: str) -> None:
                began = time.perf_counter()
                result = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": job})
                if result.is_error or result.structured_content["completed_at"] is None:
                    raise RuntimeError(f"cancel did not end in a recorded stop: {result}")
                slowest.append(time.perf_counter() - began)

            await gate.wait()
            async with anyio.create_task_group() as group:
                for call_index in range(LOAD_CALLS // LOAD_SERVERS):
                    group.start_soon(call, jobs[(index * 13 + call_index) % LOAD_JOBS])

    gate, all_ready, ready = anyio.Event(), anyio.Event(), []
    async with anyio.create_task_group() as servers:
        for index in range(LOAD_SERVERS):
            servers.start_soon(one_server, index)
        await all_ready.wait()  # every server has started and initialized its session
        watcher.start()
        started.wait()
        start = time.perf_counter()
        gate.set()
    returned = time.perf_counter() - start
    await anyio.to_thread.run_sync(watcher.join, 60)
    if not gone_at:
        raise RuntimeError("a job outlived its cancel")
    return gone_at[0] - start, returned, max(slowest)


def floor_under_load() -> float:
    processes = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(LOAD_JOBS)]
    time.sleep(0.5)
    start = time.perf_counter()
    for process in processes:
        signal_group(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait()
    return time.perf_counter() - start


def measure_load(repetitions: int) -> dict[str, list[float]]:
    cell: dict[str, list[float]] = {"gone": [], "returned": [], "slowest": [], "floor": []}
    with cpu_burners():
        for _ in range(repetitions):
            with state_home() as home:
                gone, returned, slowest = anyio.run(ours_under_load, home)
            cell["gone"].append(gone)
            cell["returned"].append(returned)
            cell["slowest"].append(slowest)
            cell["floor"].append(floor_under_load())
    return cell


def baseline_once(command: tuple[str, ...], grace: float | None) -> float:
    process = subprocess.Popen(command, start_new_session=True)
    pgid = process.pid
    time.sleep(0.2)
    members = group_members(pgid)
    start = time.perf_counter()
    signal_group(pgid, signal.SIGTERM)
    if grace is not None:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(pgid, signal.SIGKILL)
    process.wait()
    while any(running(pid) for pid in members):  # the shell's sleep child as well
        time.sleep(0.001)
    return time.perf_counter() - start


def signal_group(pgid: int, signum: int) -> None:
    import os

    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


async def measure(quick: bool) -> dict[str, dict[str, list[float]]]:
    repetitions = {"exits on SIGTERM": 2 if quick else 5, "ignores SIGTERM (grace 1 s)": 1 if quick else 3}
    samples: dict[str, dict[str, list[float]]] = {}
    with state_home() as home:
        async with client(OURS_KIND.stdio_params(home)) as session:
            for label, (command, options) in JOBS.items():
                cell = samples.setdefault(label, {"returned": [], "gone": [], "baseline": []})
                for _ in range(repetitions[label]):
                    returned, gone = await ours_once(session, home, command, options)
                    cell["returned"].append(returned)
                    cell["gone"].append(gone)
                    grace = 1.0 if options else None
                    cell["baseline"].append(await anyio.to_thread.run_sync(baseline_once, command, grace))
    return samples


def run(quick: bool = False) -> list[Table]:
    load = measure_load(1 if quick else 3)
    load_table = Table(
        f"{LOAD_CALLS} concurrent cancels on {LOAD_JOBS} jobs, 2 CPU burners, local runtime, ms",
        ["runs", f"{OURS}: all groups gone", "spread", "all calls returned", "slowest call",
         "raw killpg floor (50 groups)", "gone - floor"],
        notes=[
            f"{LOAD_SERVERS} stdio server processes, {LOAD_CALLS // LOAD_SERVERS} concurrent calls each"
            " (4 per job); a call returns once the job's supervisor has recorded the stop. Medians, spread ="
            " min-max."
        ],
    )  # fmt: skip
    load_table.rows.append(
        [str(len(load["gone"])), f"{median(load['gone']) * 1000:.0f}", spread(load["gone"], 1000, 0),
         f"{median(load['returned']) * 1000:.0f}", f"{median(load['slowest']) * 1000:.0f}",
         f"{median(load['floor']) * 1000:.1f}",
         f"{(median(load['gone']) - median(load['floor'])) * 1000:.0f}"]
    )  # fmt: skip
    samples = anyio.run(measure, quick)
    table = Table(
        "Cancel → process group gone, local runtime, ms",
        ["job", "runs", f"{OURS}: call returned", f"{OURS}: group gone", "spread (gone)",
         f"{BASELINE}: raw killpg floor", "ratio (gone)", "gone - floor"],
        notes=[
            "Ours over stdio (one session, mode=auto); medians, spread = min-max. The raw floor is killpg"
            " from Python on the same command, own session, reaped at once (no MCP, store or supervisor)."
        ],
    )  # fmt: skip
    for label, cell in samples.items():
        table.rows.append(
            [label, str(len(cell["gone"])), f"{median(cell['returned']) * 1000:.0f}",
             f"{median(cell['gone']) * 1000:.0f}", spread(cell["gone"], 1000, 0),
             f"{median(cell['baseline']) * 1000:.1f}", ratio(median(cell["gone"]), median(cell["baseline"])),
             f"{(median(cell['gone']) - median(cell['baseline'])) * 1000:.0f}"]
        )  # fmt: skip
    return [load_table, table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    print_tables(run(parser.parse_args().quick))
