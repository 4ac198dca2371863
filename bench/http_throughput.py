"""HTTP throughput: 1 and 32 concurrent clients over Streamable HTTP, a fixed number of calls in all.

Each client is one keep-alive HTTP/1.1 connection POSTing hand-written 2026-07-28 `tools/call` requests
(bench/wire.py: a few microseconds a call, so the load generator leaves the server most of the CPU it shares
with it). Ours and the FastMCP peer serve `cancel_job` on local jobs already canceled; the bare SDK server
serves `noop`, through the same uvicorn + Streamable HTTP stack. Runs are interleaved across the servers.
"""

from __future__ import annotations

import argparse
import asyncio

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
    http_server,
    median,
    memory_kib,
    percentile,
    print_tables,
    ratio,
    spread,
    verdict,
)
from wire import cpu_ns, http_load

CONCURRENCY = (1, 32)
TARGET = 0.85  # ours / bare calls/s at 32 clients, at least


def measure(quick: bool) -> dict[tuple[str, int], list[tuple[float, float, float]]]:
    """Per (server, clients): one (calls/s, p99 s, server CPU s per call) per run."""
    total, repetitions = (512, 1) if quick else (1024, 3)
    home = canceled_jobs()[0]
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    with http_server(KINDS[0], home) as ours, http_server(KINDS[1], home) as base, \
            http_server(KINDS[2], home) as peer:  # fmt: skip
        servers = dict(zip(KINDS, (ours, base, peer), strict=True))
        idle = {kind.name: memory_kib(server.pid)["VmRSS"] for kind, server in servers.items()}
        for kind, server in servers.items():  # warm-up
            asyncio.run(http_load(server.url, 8, 128, cancel_calls(kind)))
        for _ in range(repetitions):
            for clients in CONCURRENCY:
                for kind, server in servers.items():
                    before = cpu_ns(server.pid)
                    rate, latencies = asyncio.run(http_load(server.url, clients, total, cancel_calls(kind)))
                    cpu = (cpu_ns(server.pid) - before) / 1e9 / len(latencies)
                    results.setdefault((kind.name, clients), []).append(
                        (rate, percentile(latencies, 0.99), cpu)
                    )
        served = 128 + repetitions * total * len(CONCURRENCY)
        for kind, server in servers.items():
            MEMORY.append(("http", kind.name, idle[kind.name], memory_kib(server.pid)["VmHWM"], served))
    return results


def run(quick: bool = False) -> list[Table]:
    results = measure(quick)
    names = (OURS, BASELINE, FASTMCP)
    table = Table(
        "HTTP throughput (Streamable HTTP, 2026-07-28, one uvicorn process per server)",
        ["clients · figure", OURS, "spread", BASELINE, "spread", FASTMCP, "spread", "ours / bare", "target",
         "ours / FastMCP"],
        notes=[
            f"{len(results[OURS, 1])} run(s) per cell, interleaved; medians, spread = min-max. Load generator"
            " and servers share the machine's CPUs. Server CPU per call = the server process's CPU time over"
            " the run / calls: the figure that says what a call costs, whatever else runs."
        ],
    )  # fmt: skip
    for clients in CONCURRENCY:
        for index, label, scale, digits in ((0, "calls/s", 1, 0), (1, "p99 ms", 1000, 1),
                                            (2, "server CPU ms/call", 1000, 2)):  # fmt: skip
            values = [[sample[index] for sample in results[name, clients]] for name in names]
            ours, base, peer = (median(v) for v in values)
            target = "-"
            if index == 0 and clients == max(CONCURRENCY):
                target = verdict(ours / base, TARGET, at_most=False)
                SUMMARY.append((f"HTTP calls/s, {clients} clients", ours, base, peer, "/s", TARGET, False))
            row = [f"{clients} · {label}"]
            for value, samples in zip((ours, base, peer), values, strict=True):
                row += [f"{value * scale:.{digits}f}", spread(samples, scale, digits)]
            table.rows.append([*row, ratio(ours, base), target, ratio(ours, peer)])
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="one run of 512 calls per cell, not three of 1,024"
    )
    print_tables(run(parser.parse_args().quick))
