"""Cold start over raw stdio pipes: from spawning the server to reading its first answer.

The first request is what a client sends first: `server/discover` in the 2026-07-28 era, `initialize` in
2025-11-25. No SDK client is involved (bench/wire.py), so the time is the server's: the interpreter's start,
the imports and the first answer. Runs are interleaved across the servers, after one warm-up spawn each.
Our modules are byte-compiled first, as installing the wheel does.

A control runs alongside: the bare SDK server with Python's cyclic collector off from the start, as ours
pauses it while it imports the SDK and builds its server (app.start_up). Ours against it is what our own
code costs at start-up; ours against the bare server as written is what a client waits.
"""

from __future__ import annotations

import argparse

from common import (
    BASELINE,
    FASTMCP,
    KINDS,
    OURS,
    PYTHON,
    SUMMARY,
    ServerKind,
    Table,
    byte_compile_ours,
    canceled_jobs,
    median,
    print_tables,
    ratio,
    server_env,
    spread,
    verdict,
)
from wire import discover, initialize, spawn_to_first_answer

FIRST_REQUESTS = {"2026-07-28 (server/discover)": discover(), "2025-11-25 (initialize)": initialize()}
TARGET = 1.03
KIND_NAMES = (OURS, BASELINE, FASTMCP)
CONTROL = ServerKind(
    "bare SDK, collector off",
    stdio=(
        PYTHON,
        "-c",
        "import gc, runpy, sys; gc.disable(); sys.argv = sys.argv[1:];"
        " runpy.run_path(sys.argv[0], run_name='__main__')",
        KINDS[1].stdio[1],
    ),
    http=KINDS[1].http,
)


def measure(quick: bool) -> dict[tuple[str, str], list[tuple[float, float]]]:
    repetitions = 3 if quick else 15
    env = server_env(canceled_jobs()[0])
    byte_compile_ours()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    kinds = (*KINDS, CONTROL)
    for kind in kinds:  # warm-up: the page cache, not measured
        spawn_to_first_answer(kind.stdio, env, discover())
    for _ in range(repetitions):
        for era, first in FIRST_REQUESTS.items():
            for kind in kinds:  # interleaved, so drift on a shared machine hits all alike
                samples.setdefault((kind.name, era), []).append(spawn_to_first_answer(kind.stdio, env, first))
    return samples


def run(quick: bool = False) -> list[Table]:
    samples = measure(quick)
    count = len(next(iter(samples.values())))
    tables = []
    for index, what in enumerate(("wall time", "server CPU time")):
        table = Table(
            f"Cold start over raw stdio pipes (spawn → first answer), {what}, ms",
            ["era (first request)", OURS, "spread", BASELINE, "spread", FASTMCP, "spread",
             "ours / bare", f"target <= {TARGET}x", "ours / FastMCP"],
            notes=[f"{count} runs each, interleaved, after one warm-up spawn; medians, spread = min-max."
                   + (" CPU = all the server's threads, from /proc/PID/task/*/schedstat, read when the"
                      " answer arrives: it does not grow when other processes load the machine."
                      if index else "")],
        )  # fmt: skip
        for era in FIRST_REQUESTS:
            ours, base, peer = ([sample[index] for sample in samples[name, era]] for name in KIND_NAMES)
            table.rows.append(
                [era, f"{median(ours) * 1000:.0f}", spread(ours, 1000, 0), f"{median(base) * 1000:.0f}",
                 spread(base, 1000, 0), f"{median(peer) * 1000:.0f}", spread(peer, 1000, 0),
                 ratio(median(ours), median(base)), verdict(median(ours) / median(base), TARGET),
                 ratio(median(ours), median(peer))]
            )  # fmt: skip
        tables.append(table)
    control = Table(
        "Cold start control: the bare SDK server with the cyclic collector off, as ours runs its start-up,"
        " wall time, ms",
        ["era (first request)", OURS, CONTROL.name, "spread", "ours / control"],
        notes=["Same runs as above. The difference is what our own modules and server build cost at start."],
    )
    for era in FIRST_REQUESTS:
        ours, bare_off = ([sample[0] for sample in samples[name, era]] for name in (OURS, CONTROL.name))
        control.rows.append(
            [era, f"{median(ours) * 1000:.0f}", f"{median(bare_off) * 1000:.0f}", spread(bare_off, 1000, 0),
             ratio(median(ours), median(bare_off))]
        )  # fmt: skip
    tables.append(control)
    era = next(iter(FIRST_REQUESTS))
    ours, base, peer = (median([wall for wall, _ in samples[name, era]]) * 1000 for name in KIND_NAMES)
    SUMMARY.append(("cold start, spawn to first answer (wall)", ours, base, peer, "ms", TARGET, True))
    return tables


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    print_tables(run(parser.parse_args().quick))
