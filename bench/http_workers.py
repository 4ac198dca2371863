"""`--workers` scaling on this machine: one uvicorn worker against several, at 32 concurrent clients.

Both runs are stateless (`--workers N` implies `--stateless`; the one-worker run passes it too, so only
the worker count differs) and serve `cancel_job` on local jobs that are already canceled. The load
generator runs on the same machine and takes CPU from the server, so the gain is bounded by the cores.
"""

from __future__ import annotations

import argparse
import os

import anyio
from common import (
    OURS_KIND,
    ServerKind,
    Table,
    cancel_cli,
    http_server,
    median,
    print_tables,
    spread,
    state_home,
    submit,
)
from http_throughput import load

CLIENTS = 32
JOBS = 8
PROJECT = "bench-workers"


def workers_kind(workers: int) -> ServerKind:
    stdio = OURS_KIND.stdio
    return ServerKind(
        f"{workers} worker(s)",
        stdio=stdio,
        http=lambda port: (*stdio, "serve", "--transport", "http", "--port", str(port), "--stateless",
                           "--workers", str(workers)),
    )  # fmt: skip


async def measure(quick: bool) -> dict[int, list[float]]:
    total, repetitions = (256, 1) if quick else (1024, 3)
    rates: dict[int, list[float]] = {}
    with state_home() as home:
        jobs = [submit(home, PROJECT, "sleep", "600")["id"] for _ in range(JOBS)]
        for job in jobs:
            cancel_cli(home, PROJECT, job)
        call = ("cancel_job", [{"project_reference": PROJECT, "job_id": job} for job in jobs])
        for workers in sorted({1, 2, os.cpu_count() or 1}):
            with http_server(workers_kind(workers), home) as server:
                await load(server.url, CLIENTS, 64, call, server.pid)  # warm-up: every worker has started
                for _ in range(repetitions):
                    rate, _, _ = await load(server.url, CLIENTS, total, call, server.pid)
                    rates.setdefault(workers, []).append(rate)
    return rates


def run(quick: bool = False) -> list[Table]:
    rates = anyio.run(measure, quick)
    single = median(rates[1])
    table = Table(
        f"HTTP --workers scaling ({CLIENTS} concurrent clients, {os.cpu_count()} CPUs)",
        ["workers", "calls/s", "spread", "vs 1 worker"],
        notes=[
            "Medians over the runs, spread = min-max; stateless in every row;"
            " cancel_job on canceled local jobs."
        ],
    )
    for workers, values in rates.items():
        table.rows.append(
            [str(workers), f"{median(values):.0f}", spread(values, 1, 0), f"{median(values) / single:.2f}x"]
        )
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print_tables(run(parser.parse_args().quick))
