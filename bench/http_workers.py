"""`--workers` scaling: one uvicorn worker against several, at 32 concurrent clients.

Every row is stateless (`--workers N` implies `--stateless`; the one-worker row passes it too, so only the
worker count differs) and serves `cancel_job` on local jobs already canceled, loaded by bench/wire.py. On a
2-CPU machine the load generator takes one CPU, so calls/s cannot grow with workers here. What says whether
workers scale is counted per worker process: how the calls' CPU time splits across the workers, and
whether the CPU per call stays flat as workers are added (then N cores serve about N / CPU-per-call calls/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from common import (
    OURS_KIND,
    ServerKind,
    Table,
    cancel_calls,
    canceled_jobs,
    http_server,
    median,
    print_tables,
)
from common import spread as spread_of
from wire import cpu_ns, http_load

CLIENTS = 32


def workers_kind(workers: int) -> ServerKind:
    stdio = OURS_KIND.stdio
    return ServerKind(
        f"{workers} worker(s)",
        stdio=stdio,
        http=lambda port: (*stdio, "serve", "--transport", "http", "--port", str(port), "--stateless",
                           "--workers", str(workers)),
    )  # fmt: skip


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's supervisor and its worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree = [pid]
    for member in tree:
        tree += [child for child, parent in parents.items() if parent == member]
    return tree


def measure(quick: bool) -> dict[int, list[tuple[float, float, list[float]]]]:
    """Per worker count: one (calls/s, CPU s per call, each worker's share of the CPU) per run."""
    total, repetitions = (512, 1) if quick else (1024, 3)
    home = canceled_jobs()[0]
    calls = cancel_calls(OURS_KIND)
    results: dict[int, list[tuple[float, float, list[float]]]] = {}
    for workers in sorted({1, 2, os.cpu_count() or 1}):
        with http_server(workers_kind(workers), home) as server:
            asyncio.run(http_load(server.url, CLIENTS, 256, calls))  # warm-up: every worker has started
            tree = process_tree(server.pid)
            workers_pids = [pid for pid in tree if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            workers_pids = workers_pids or [server.pid]  # one worker: uvicorn serves in its own process
            for _ in range(repetitions):
                before = {pid: cpu_ns(pid) for pid in tree}
                rate, latencies = asyncio.run(http_load(server.url, CLIENTS, total, calls))
                used = {pid: cpu_ns(pid) - before[pid] for pid in tree}
                cpu = sum(used.values()) / 1e9 / len(latencies)
                shares = [used[pid] / max(1, sum(used[p] for p in workers_pids)) for pid in workers_pids]
                results.setdefault(workers, []).append((rate, cpu, shares))
    return results


def run(quick: bool = False) -> list[Table]:
    results = measure(quick)
    single = median([rate for rate, _, _ in results[1]])
    table = Table(
        f"HTTP --workers scaling ({CLIENTS} concurrent clients, {os.cpu_count()} CPUs, stateless)",
        ["workers", "calls/s", "spread", "vs 1 worker", "server CPU ms/call (all processes)",
         "CPU share per worker", "calls/s per busy core (1 / CPU per call)"],
        notes=["Medians over the runs, spread = min-max; cancel_job on canceled local jobs. CPU from"
               " /proc/PID/task/*/schedstat of uvicorn's processes."],
    )  # fmt: skip
    for workers, runs in results.items():
        rates = [rate for rate, _, _ in runs]
        cpu = median([c for _, c, _ in runs])
        shares = [median([run[2][i] for run in runs]) for i in range(len(runs[0][2]))]
        table.rows.append(
            [str(workers), f"{median(rates):.0f}", spread_of(rates, 1, 0), f"{median(rates) / single:.2f}x",
             f"{cpu * 1000:.2f}", " / ".join(f"{share:.0%}" for share in shares), f"{1 / cpu:.0f}"]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print_tables(run(parser.parse_args().quick))
