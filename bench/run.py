"""Run every benchmark, ours next to the baseline, and print one markdown block ready for the README.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]

Benchmarks (each also runs alone: `python bench/NAME.py [--quick]`):
  cold_start       spawn → first response over stdio, 2026-07-28 (mode=auto) and 2025-11-25 (mode=legacy)
  stdio_calls      per-call latency over stdio, 1,000 calls per run: p50 / p99
  http_throughput  1, 8, 32 concurrent clients over Streamable HTTP: calls/s, p99, server CPU per call
  http_workers     --workers scaling at 32 clients
  cancel_stop      cancel_job → process group gone, SIGTERM path and the grace-period (SIGKILL) path
  provider_overhead  what we add to a hosted provider's round trip (a fake Veryfront on loopback)
  memory           idle and peak RSS after the stdio and HTTP loads
  importtime       what each server imports at start (python -X importtime)
Progress goes to stderr; the markdown goes to stdout. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from common import machine

ORDER = (
    "cold_start",
    "stdio_calls",
    "http_throughput",
    "http_workers",
    "cancel_stop",
    "provider_overhead",
    "memory",
    "importtime",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and calls (about 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=ORDER, help="run only these benchmarks")
    args = parser.parse_args()
    chosen = [name for name in ORDER if not args.only or name in args.only]

    started = time.perf_counter()
    blocks = []
    for name in chosen:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        tables = importlib.import_module(name).run(quick=args.quick)
        print(f"[bench] {name} done in {time.perf_counter() - begun:.0f} s", file=sys.stderr, flush=True)
        blocks += [table.markdown() for table in tables]

    command = (
        "bench/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(args.only)}" if args.only else "")
    )
    print(f"Measured with `{command}` in {time.perf_counter() - started:.0f} s on {machine()}.")
    print("Each row runs cancel-job-mcp and the baseline (bench/baseline_server.py: a bare low-level")
    print("`mcp.server.Server` with one trivial tool, served the same way) side by side in the same run.\n")
    print("\n\n".join(blocks))


if __name__ == "__main__":
    main()
