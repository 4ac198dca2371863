"""HTTP throughput: 1, 8 and 32 concurrent clients over Streamable HTTP, a fixed number of calls in all.

Each client is its own SDK Client session (mode="auto", 2026-07-28, caching off) making sequential calls; the
clients run concurrently in one asyncio process, the load generator, which shares the machine's CPUs with the
server. Ours serves `cancel_job` on local jobs that are already canceled; the baseline serves its `noop` tool
through the same uvicorn + Streamable HTTP stack. Sessions are opened before the clock starts.
"""

from __future__ import annotations

import argparse
import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
from common import (
    BASELINE,
    BASELINE_KIND,
    MEMORY,
    OURS,
    OURS_KIND,
    ServerKind,
    Table,
    cancel_cli,
    client,
    cpu_seconds,
    http_server,
    median,
    memory_kib,
    percentile,
    print_tables,
    ratio,
    spread,
    state_home,
    submit,
)

CONCURRENCY = (1, 8, 32)
JOBS = 8
PROJECT = "bench-http"


async def load(
    url: str, clients: int, total: int, call: tuple[str, list[dict[str, Any]]], pid: int
) -> tuple[float, list[float], float]:
    """Returns calls/s, the latencies, and the server's CPU time per call."""
    name, arguments = call
    latencies: list[float] = []
    per_client = total // clients
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(client(url)) for _ in range(clients)]

        async def worker(index: int, session: Any) -> None:
            for i in range(per_client):
                start = time.perf_counter()
                result = await session.call_tool(name, arguments[(index + i) % len(arguments)])
                latencies.append(time.perf_counter() - start)
                if result.is_error:
                    raise RuntimeError(f"{name}: {result}")

        cpu_before, start = cpu_seconds(pid), time.perf_counter()
        async with anyio.create_task_group() as group:
            for index, session in enumerate(sessions):
                group.start_soon(worker, index, session)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu_before
    return len(latencies) / elapsed, latencies, cpu / len(latencies)


async def measure(quick: bool) -> tuple[int, dict[tuple[str, int], list[tuple[float, float, float]]]]:
    total = 256 if quick else 1024
    repetitions = 1 if quick else 3
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    with state_home() as home:
        jobs = [submit(home, PROJECT, "sleep", "600")["id"] for _ in range(JOBS)]
        for job in jobs:
            cancel_cli(home, PROJECT, job)
        calls: dict[str, tuple[str, list[dict[str, Any]]]] = {
            OURS: ("cancel_job", [{"project_reference": PROJECT, "job_id": job} for job in jobs]),
            BASELINE: ("noop", [{}]),
        }
        kinds: tuple[ServerKind, ...] = (OURS_KIND, BASELINE_KIND)
        for kind in kinds:
            with http_server(kind, home) as server:
                idle = memory_kib(server.pid)["VmRSS"]
                await load(server.url, 1, 16, calls[kind.name], server.pid)  # warm-up
                for _ in range(repetitions):
                    for clients in CONCURRENCY:
                        rate, latencies, cpu = await load(
                            server.url, clients, total, calls[kind.name], server.pid
                        )
                        sample = (rate, percentile(latencies, 0.99), cpu)
                        results.setdefault((kind.name, clients), []).append(sample)
                served = 16 + repetitions * len(CONCURRENCY) * total
                MEMORY.append(("http", kind.name, idle, memory_kib(server.pid)["VmHWM"], served))
    return total, results


def run(quick: bool = False) -> list[Table]:
    total, results = anyio.run(measure, quick)
    runs = len(results[OURS, 1])
    table = Table(
        f"HTTP throughput ({total:,} calls per run, split evenly across the clients)",
        ["clients", f"{OURS} calls/s", "spread", f"{BASELINE} calls/s", "spread", "throughput ratio",
         f"{OURS} p99 ms", f"{BASELINE} p99 ms", "p99 ratio", "server CPU ms/call (ours / baseline)"],
        notes=[
            f"{runs} run(s) per cell, medians, spread = min-max; ours: cancel_job on {JOBS} already-canceled"
            " local jobs; baseline: noop. Client and server share the machine's CPUs, so calls/s is for the"
            " pair; server CPU ms/call is the server process's user+system time in the run over the calls."
        ],
    )  # fmt: skip
    for clients in CONCURRENCY:
        ours, base = results[OURS, clients], results[BASELINE, clients]
        ours_rate, base_rate = [r for r, _, _ in ours], [r for r, _, _ in base]
        ours_p99, base_p99 = [p for _, p, _ in ours], [p for _, p, _ in base]
        ours_cpu, base_cpu = median([c for _, _, c in ours]), median([c for _, _, c in base])
        table.rows.append(
            [str(clients), f"{median(ours_rate):.0f}", spread(ours_rate, 1, 0), f"{median(base_rate):.0f}",
             spread(base_rate, 1, 0), ratio(median(ours_rate), median(base_rate)),
             f"{median(ours_p99) * 1000:.1f}", f"{median(base_p99) * 1000:.1f}",
             ratio(median(ours_p99), median(base_p99)), f"{ours_cpu * 1000:.2f} / {base_cpu * 1000:.2f}"]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="256 calls per run and one run instead of 1,024 and three"
    )
    print_tables(run(parser.parse_args().quick))
