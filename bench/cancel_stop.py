"""Cancel-to-stopped latency of the local runtime: from the cancel_job call to the job's process group's end.

Two jobs, each submitted through the CLI and running before the clock starts:
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
import threading
import time
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
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    print_tables(run(parser.parse_args().quick))
