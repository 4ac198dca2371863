"""Per-call latency over raw stdio pipes: sequential tools/call requests on one process per server.

Ours and the FastMCP peer serve `cancel_job` on local jobs that are already canceled (the job is found in
the SQLite store and its 18-field record returned unchanged); the bare SDK server serves its trivial `noop`.
The client is hand-written JSON-RPC on the pipes (bench/wire.py), so no client-side validation is in the
loop. The three servers run side by side and the runs are interleaved; each run also reads the server's CPU
time, which a busy machine inflates far less than latency.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from common import (
    BASELINE,
    FASTMCP,
    KINDS,
    MEMORY,
    OURS,
    SUMMARY,
    Table,
    cancel_calls,
    canceled_jobs,
    median,
    memory_kib,
    percentile,
    print_tables,
    ratio,
    server_env,
    spread,
    verdict,
)
from wire import StdioPipes, cpu_ns, discover, is_error, tool_call

TARGETS = {"p50": 1.3, "p99": 1.5}


def timed_calls(server: StdioPipes, calls: Sequence[tuple[str, dict[str, Any]]], count: int) -> list[float]:
    lines = [tool_call(i, name, arguments) for i, (name, arguments) in enumerate(calls)]
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        answer = server.send(lines[i % len(lines)])
        latencies.append(time.perf_counter() - start)
        if is_error(answer):
            raise RuntimeError(f"{server.process.args}: {answer[:300]!r}")
    return latencies


def measure(quick: bool) -> dict[str, list[tuple[list[float], float]]]:
    """Per server: one (latencies, CPU seconds per call) per run."""
    # Short runs, many of them: this VM's speed drifts over seconds, and interleaving finely hits all alike.
    repetitions, count = (2, 500) if quick else (10, 600)
    env = server_env(canceled_jobs()[0])
    servers = {kind.name: StdioPipes(kind.stdio, env) for kind in KINDS}
    runs: dict[str, list[tuple[list[float], float]]] = {name: [] for name in servers}
    try:
        idle = {}
        for kind in KINDS:
            server = servers[kind.name]
            server.send(discover())
            timed_calls(server, cancel_calls(kind), 200)  # warm-up: connections, caches, lazy imports
            idle[kind.name] = memory_kib(server.pid)["VmRSS"]
        for _ in range(repetitions):
            for kind in KINDS:
                server = servers[kind.name]
                before = cpu_ns(server.pid)
                latencies = timed_calls(server, cancel_calls(kind), count)
                runs[kind.name].append((latencies, (cpu_ns(server.pid) - before) / 1e9 / count))
        for name, server in servers.items():
            served = 200 + repetitions * count
            MEMORY.append(("stdio", name, idle[name], memory_kib(server.pid)["VmHWM"], served))
    finally:
        for server in servers.values():
            server.close()
    return runs


def run(quick: bool = False) -> list[Table]:
    runs = measure(quick)

    def figure(name: str, key: str) -> list[float]:
        if key == "cpu":
            return [cpu for _, cpu in runs[name]]
        return [percentile(latencies, 0.5 if key == "p50" else 0.99) for latencies, _ in runs[name]]

    count = len(runs[OURS][0][0])
    table = Table(
        f"cancel_job over raw stdio pipes ({count:,} sequential calls per run), ms",
        ["figure", OURS, "spread", BASELINE, "spread", FASTMCP, "spread", "ours / bare", "target",
         "ours / FastMCP"],
        notes=[
            f"{len(runs[OURS])} run(s) per server, interleaved; medians across runs, spread = min-max."
            f" {OURS} and {FASTMCP}: cancel_job cycling over {len(canceled_jobs()[2])} local jobs already"
            f" canceled (the record comes back, isError false); {BASELINE}: its noop tool. Server CPU per"
            " call = the server process's CPU time over the run / calls."
        ],
    )  # fmt: skip
    for key, label in (("p50", "p50 latency"), ("p99", "p99 latency"), ("cpu", "server CPU per call")):
        ours, base, peer = figure(OURS, key), figure(BASELINE, key), figure(FASTMCP, key)
        target = verdict(median(ours) / median(base), TARGETS[key]) if key in TARGETS else "-"
        if key in TARGETS:
            SUMMARY.append(
                (
                    f"cancel_job {key} over stdio pipes",
                    median(ours) * 1000,
                    median(base) * 1000,
                    median(peer) * 1000,
                    "ms",
                    TARGETS[key],
                    True,
                )
            )
        table.rows.append(
            [label, f"{median(ours) * 1000:.2f}", spread(ours, 1000, 2), f"{median(base) * 1000:.2f}",
             spread(base, 1000, 2), f"{median(peer) * 1000:.2f}", spread(peer, 1000, 2),
             ratio(median(ours), median(base)), target, ratio(median(ours), median(peer))]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two runs of 500 calls instead of ten of 600")
    print_tables(run(parser.parse_args().quick))
