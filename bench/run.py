"""Run every benchmark and print one markdown block ready for the README: the targets first, then each table.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]

About 4 minutes on a quiet 2-CPU machine (--quick: about 1.5). Three servers run side by side in each
benchmark: cancel-job-mcp, the bare SDK server (bench/baseline_server.py: a low-level `mcp.server.Server`
with one trivial tool) and the FastMCP peer (bench/fastmcp_peer.py: our three tools written the popular
way; needs the `bench` extra: pip install -e '.[bench]'). Each benchmark also runs alone:
`python bench/NAME.py [--quick]`.

  phases             where one cancel_job call's time goes, phase by phase, and its thread hops
  cold_start         spawn -> first answer over raw stdio pipes, both protocol eras
  instructions       the same start in instructions executed (valgrind), which do not drift as times do
  stdio_calls        cancel_job p50 / p99 / server CPU over raw stdio pipes
  http_throughput    1 and 32 concurrent HTTP clients: calls/s, p99, server CPU per call
  http_workers       --workers scaling, with the CPU split across worker processes
  importtime         what is imported before the first answer, beyond the SDK
  cancel_stop        cancel_job -> process group gone (local runtime)
  provider_overhead  what we add to a hosted provider's round trip (a fake Veryfront on loopback)
  memory             idle and peak RSS after the stdio and HTTP loads
Progress goes to stderr; the markdown goes to stdout. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from common import SUMMARY, machine, summary_table

ORDER = (
    "phases",
    "cold_start",
    "instructions",
    "stdio_calls",
    "http_throughput",
    "http_workers",
    "importtime",
    "cancel_stop",
    "provider_overhead",
    "memory",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and calls")
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
    if SUMMARY:
        blocks.insert(0, summary_table().markdown())

    command = (
        "bench/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(args.only)}" if args.only else "")
    )
    print(f"Measured with `{command}` in {time.perf_counter() - started:.0f} s on {machine()}.\n")
    print("\n\n".join(blocks))


if __name__ == "__main__":
    main()
