"""Cold start over stdio: from spawning the server to its first response, in both protocol eras.

mode="auto" (2026-07-28): the SDK client probes `server/discover`; mode="legacy" (2025-11-25): `initialize`.
The time ends when `Client.__aenter__` returns, i.e. the handshake answer has arrived.
"""

from __future__ import annotations

import argparse
import time

import anyio
from common import BASELINE, KINDS, OURS, Table, client, median, print_tables, ratio, spread, state_home

MODES = ("auto", "legacy")


async def measure(quick: bool) -> dict[tuple[str, str], list[float]]:
    repetitions = 3 if quick else 7
    samples: dict[tuple[str, str], list[float]] = {(kind.name, mode): [] for kind in KINDS for mode in MODES}
    with state_home() as home:
        for kind in KINDS:  # warm-up: byte-compile caches and the page cache, not measured
            async with client(kind.stdio_params(home)):
                pass
        for _ in range(repetitions):
            for mode in MODES:
                for kind in KINDS:  # interleaved, so drift on a shared machine hits both alike
                    start = time.perf_counter()
                    async with client(kind.stdio_params(home), mode):
                        samples[kind.name, mode].append(time.perf_counter() - start)
    return samples


def run(quick: bool = False) -> list[Table]:
    samples = anyio.run(measure, quick)
    count = len(samples[OURS, "auto"])
    table = Table(
        "Cold start over stdio (spawn → first response), ms",
        ["era (client mode)", f"{OURS} median", "spread", f"{BASELINE} median", "spread", "ratio"],
        notes=[f"{count} runs each, interleaved, after one warm-up spawn; spread = min-max."],
    )
    for mode in MODES:
        ours, base = samples[OURS, mode], samples[BASELINE, mode]
        era = "2026-07-28 (auto)" if mode == "auto" else "2025-11-25 (legacy)"
        table.rows.append(
            [era, f"{median(ours) * 1000:.0f}", spread(ours, 1000, 0), f"{median(base) * 1000:.0f}",
             spread(base, 1000, 0), ratio(median(ours), median(base))]
        )  # fmt: skip
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    print_tables(run(parser.parse_args().quick))
