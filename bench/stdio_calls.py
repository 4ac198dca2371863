"""Per-call latency over stdio: 1,000 sequential tools/call requests on one session, per repetition.

Ours is measured twice: `cancel_job` on local jobs that are already canceled (the idempotent path: the job
is found in the SQLite store and its record returned unchanged, isError false), and `cancel_job` on job ids
that do not exist (the not_found path, isError true). Each is set against the baseline's trivial `noop` tool
on the same transport and client (SDK Client, mode="auto", caching off).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
from common import (
    BASELINE,
    BASELINE_KIND,
    MEMORY,
    OURS,
    OURS_KIND,
    Table,
    client,
    median,
    memory_kib,
    percentile,
    print_tables,
    ratio,
    spread,
    state_home,
    stdio_child_pid,
    submit,
)

CALLS = 1000
JOBS = 10
PROJECT = "bench-stdio"


async def timed_calls(
    session: Any, name: str, argument_list: list[dict[str, Any]], expect_error: bool
) -> list[float]:
    latencies = []
    for arguments in argument_list:
        start = time.perf_counter()
        result = await session.call_tool(name, arguments)
        latencies.append(time.perf_counter() - start)
        if result.is_error != expect_error:
            raise RuntimeError(f"{name}{arguments}: unexpected result {result}")
    return latencies


async def measure(quick: bool) -> dict[str, list[list[float]]]:
    repetitions = 1 if quick else 3
    series: dict[str, list[list[float]]] = {"canceled": [], "not_found": [], "noop": []}
    with state_home() as home:
        jobs = [submit(home, PROJECT, "sleep", "600")["id"] for _ in range(JOBS)]
        canceled = [{"project_reference": PROJECT, "job_id": jobs[i % JOBS]} for i in range(CALLS)]
        missing = [{"project_reference": PROJECT, "job_id": f"job_missing{i}"} for i in range(CALLS)]
        async with client(OURS_KIND.stdio_params(home)) as ours:
            pid = stdio_child_pid(OURS_KIND.stdio)
            idle = memory_kib(pid)["VmRSS"]
            await timed_calls(ours, "cancel_job", canceled[:JOBS], expect_error=False)  # the real cancels
            for _ in range(repetitions):
                series["canceled"].append(await timed_calls(ours, "cancel_job", canceled, expect_error=False))
                series["not_found"].append(await timed_calls(ours, "cancel_job", missing, expect_error=True))
            MEMORY.append(("stdio", OURS, idle, memory_kib(pid)["VmHWM"], 2 * repetitions * CALLS))
        async with client(BASELINE_KIND.stdio_params(home)) as base:
            pid = stdio_child_pid(BASELINE_KIND.stdio)
            idle = memory_kib(pid)["VmRSS"]
            for _ in range(repetitions):
                series["noop"].append(await timed_calls(base, "noop", [{}] * CALLS, expect_error=False))
            MEMORY.append(("stdio", BASELINE, idle, memory_kib(pid)["VmHWM"], repetitions * CALLS))
    return series


def run(quick: bool = False) -> list[Table]:
    series = anyio.run(measure, quick)
    noop_p50 = median([percentile(run, 0.5) for run in series["noop"]])
    noop_p99 = median([percentile(run, 0.99) for run in series["noop"]])
    table = Table(
        f"Per-call latency over stdio ({CALLS:,} sequential calls per run), ms",
        ["server · call", "p50", "p50 spread", "p99", "p99 spread", "p50 ratio", "p99 ratio"],
        notes=[
            f"{len(series['noop'])} run(s) of {CALLS:,} calls each; medians across runs, spread = min-max"
            f" across runs; SDK Client mode=auto (2026-07-28). 'already canceled': cancel_job cycling over"
            f" {JOBS} local jobs canceled before the clock starts (returns the record, isError false);"
            " 'not_found': cancel_job on ids that do not exist (isError true); ratios against baseline noop."
        ],
    )
    labels = {
        "canceled": f"{OURS} · cancel_job (already canceled)",
        "not_found": f"{OURS} · cancel_job (not_found)",
        "noop": f"{BASELINE} · noop",
    }
    for key, label in labels.items():
        p50s = [percentile(run, 0.5) for run in series[key]]
        p99s = [percentile(run, 0.99) for run in series[key]]
        table.rows.append(
            [label, f"{median(p50s) * 1000:.2f}", spread(p50s, 1000, 2), f"{median(p99s) * 1000:.2f}",
             spread(p99s, 1000, 2), ratio(median(p50s), noop_p50), ratio(median(p99s), noop_p99)]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run instead of three")
    print_tables(run(parser.parse_args().quick))
