"""Cold start in instructions: what each server executes from spawn to its first answer (and exit).

Wall and CPU times on a VM drift by tens of percent between runs; the number of instructions a process
executes does not (to ±0.2 %). Each server is run once under valgrind's cachegrind (no cache simulation)
with one `server/discover` on stdin, answers it and exits at end of input. Counts are user-space
instructions only (no kernel time, no page faults), so this complements cold_start.py, it does not replace
it. A second table counts what one tool call costs: the same server answering `CALLS` calls one after the
other (each sent when the previous answer came), less its cold start, divided by `CALLS`: ours cancel_job
on an already-canceled local job, the bare server its no-op. Needs valgrind (`apt-get install valgrind`);
skipped without it. About two minutes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from cold_start import CONTROL
from common import (
    BASELINE,
    BASELINE_KIND,
    KINDS,
    OURS,
    OURS_KIND,
    ServerKind,
    Table,
    byte_compile_ours,
    cancel_calls,
    canceled_jobs,
    print_tables,
    server_env,
)
from wire import discover, tool_call

REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")
VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
CALLS = 200


def instructions(command: tuple[str, ...]) -> int:
    done = subprocess.run(
        [*VALGRIND, *command],
        input=discover() + b"\n",
        capture_output=True,
        env=server_env(canceled_jobs()[0]),
        timeout=600,
        check=True,
    )
    match = REFS.search(done.stderr)
    if match is None or b'"result"' not in done.stdout:
        raise RuntimeError(f"no count or no answer from {command}: {done.stderr[-300:]!r}")
    return int(match[1].replace(b",", b""))


def instructions_with_calls(kind: ServerKind, calls: int) -> int:
    """The server's instructions over discover and `calls` tool calls sent one at a time, then exit."""
    process = subprocess.Popen(
        [*VALGRIND, *kind.stdio],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(canceled_jobs()[0]),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    load = cancel_calls(kind)
    for request_id, message in enumerate(
        [discover()] + [tool_call(n, *load[n % len(load)]) for n in range(calls)]
    ):
        process.stdin.write(message + b"\n")
        process.stdin.flush()
        answer = process.stdout.readline()
        if request_id and b'"isError":false' not in answer:
            raise RuntimeError(f"call {request_id} of {kind.name} failed: {answer[:300]!r}")
    _, stderr = process.communicate(timeout=600)
    match = REFS.search(stderr)
    if match is None:
        raise RuntimeError(f"no count from {kind.name}: {stderr[-300:]!r}")
    return int(match[1].replace(b",", b""))


def run(quick: bool = False) -> list[Table]:
    if shutil.which("valgrind") is None:
        print("[bench] instructions: valgrind is not installed; skipped", file=sys.stderr)
        return []
    byte_compile_ours()
    kinds = {OURS: KINDS[0], BASELINE: KINDS[1], CONTROL.name: CONTROL}
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(kinds, pool.map(lambda kind: instructions(kind.stdio), kinds.values()), strict=True)
        )
    table = Table(
        "Cold start in instructions (spawn → answer to server/discover → exit), millions",
        ["server", "instructions", "vs bare SDK"],
        notes=[
            "One run each under valgrind --tool=cachegrind (user-space instructions, repeatable to ±0.2 %)."
            f" {CONTROL.name}: the bare server with Python's cyclic collector off from the start, as ours"
            " pauses it while it imports the SDK and builds its server."
        ],
    )
    for name, count in counts.items():
        table.rows.append([name, f"{count / 1e6:,.0f}", f"{count / counts[BASELINE]:.3f}x"])
    return [table, per_call_table()]


def per_call_table() -> Table:
    kinds = (OURS_KIND, BASELINE_KIND)
    with ThreadPoolExecutor(max_workers=2) as pool:
        cold = list(pool.map(lambda kind: instructions(kind.stdio), kinds))
        loaded = list(pool.map(lambda kind: instructions_with_calls(kind, CALLS), kinds))
    per_call = {
        kind.name: (load - start) / CALLS for kind, start, load in zip(kinds, cold, loaded, strict=True)
    }
    table = Table(
        "One tool call in instructions over stdio, thousands",
        ["server", "instructions per call", "vs bare SDK"],
        notes=[
            f"(discover + {CALLS} calls sent one at a time) less (discover alone), divided by {CALLS}: ours"
            " cancel_job on an already-canceled local job (its 18-field record), the bare server its no-op."
        ],
    )
    for name, count in per_call.items():
        table.rows.append([name, f"{count / 1e3:,.0f}", f"{count / per_call[BASELINE]:.2f}x"])
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the same: one run each is exact enough")
    print_tables(run(parser.parse_args().quick))
