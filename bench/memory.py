"""Memory: resident set of our server and the baseline, idle after the handshake and at peak after the load.

The samples come from the load benchmarks (stdio_calls, http_throughput), which read VmRSS right after the
server is up and VmHWM (the peak resident set) from /proc/PID/status once their load is done. Run alone, this
script runs those two loads in --quick form first.
"""

from __future__ import annotations

import argparse

from common import BASELINE, MEMORY, Table, print_tables, ratio


def run(quick: bool = False) -> list[Table]:
    if not MEMORY:
        import http_throughput
        import stdio_calls

        stdio_calls.run(quick=True)
        http_throughput.run(quick=True)
    table = Table(
        "Memory: resident set size, MiB",
        ["transport", "server", "calls served", "idle RSS", "peak RSS after the load", "peak vs bare SDK"],
        notes=["idle = VmRSS right after start (stdio: after the handshake); peak = VmHWM after the load."],
    )
    peaks = {(transport, server): peak for transport, server, _, peak, _ in MEMORY}
    for transport, server, idle, peak, calls in MEMORY:
        base = peaks.get((transport, BASELINE), 0)
        table.rows.append(
            [transport, server, f"{calls:,}", f"{idle / 1024:.1f}", f"{peak / 1024:.1f}",
             ratio(peak, base)]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    print_tables(run())
