"""Cold start in instructions: what each server executes from spawn to its first answer (and exit).

Wall and CPU times on a VM drift by tens of percent between runs; the number of instructions a process
executes does not (to ±0.2 %). Each server is run once under valgrind's cachegrind (no cache simulation)
with one `server/discover` on stdin, answers it and exits at end of input. Counts are user-space
instructions only (no kernel time, no page faults), so this complements cold_start.py, it does not replace
it. Needs valgrind (`apt-get install valgrind`); skipped without it. About a minute.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from cold_start import CONTROL
from common import BASELINE, KINDS, OURS, Table, byte_compile_ours, canceled_jobs, print_tables, server_env
from wire import discover

REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")


def instructions(command: tuple[str, ...]) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *command],
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
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the same: one run each is exact enough")
    print_tables(run(parser.parse_args().quick))
