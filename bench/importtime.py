"""What the server imports before its first answer: `python -X importtime`, ours next to the bare SDK server.

Each server is started over stdio, sent `server/discover` (what a 2026-07-28 client sends first) and killed
as soon as it has answered, so the log holds exactly what a client waits for. The self times (µs, from
-X importtime) are summed per top-level package; medians over the runs. The second table lists every module
ours imports that the bare SDK server does not: what we add to the SDK before the first answer.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from common import (
    BASELINE,
    BASELINE_KIND,
    OURS,
    OURS_KIND,
    PYTHON,
    Table,
    byte_compile_ours,
    canceled_jobs,
    median,
    print_tables,
    ratio,
)
from wire import discover

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def one_run(command: tuple[str, ...], home: Path) -> dict[str, int]:
    """Self µs per module imported up to the first answer."""
    if command[0] != PYTHON:  # a console script: run the script itself under the same interpreter
        command = (PYTHON, *command)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [PYTHON, "-X", "importtime", *command[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={"CANCEL_JOB_MCP_HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(discover() + b"\n")
        process.stdin.flush()
        if not process.stdout.readline():
            raise RuntimeError(f"{command} did not answer")
        process.kill()  # what it would import after its first answer is not start-up
        process.wait()
        process.stdin.close()
        process.stdout.close()
        log.seek(0)
        text = log.read().decode(errors="replace")
    self_times: dict[str, int] = {}
    for line in text.splitlines():
        if match := LINE.match(line):
            self_times[match[4]] = self_times.get(match[4], 0) + int(match[1])
    return self_times


def measure(quick: bool) -> dict[str, list[dict[str, int]]]:
    runs = 3 if quick else 5
    home = canceled_jobs()[0]
    byte_compile_ours()  # as installing the wheel does: the self times below are imports, not compiling
    results: dict[str, list[dict[str, int]]] = {OURS: [], BASELINE: []}
    for kind in (OURS_KIND, BASELINE_KIND):
        one_run(kind.stdio, home)  # warm the page cache
    for _ in range(runs):
        for kind in (OURS_KIND, BASELINE_KIND):
            results[kind.name].append(one_run(kind.stdio, home))
    return results


def by_package(runs: list[dict[str, int]], modules: set[str] | None = None) -> dict[str, tuple[float, int]]:
    """Top-level package -> (median summed self ms, number of modules), over `modules` (default all)."""
    packages: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for self_times in runs:
        totals: dict[str, int] = defaultdict(int)
        for module, micros in self_times.items():
            if modules is None or module in modules:
                totals[module.split(".")[0]] += micros
        for package, micros in totals.items():
            packages[package].append(micros / 1000)
    for module in modules if modules is not None else set().union(*runs):
        counts[module.split(".")[0]] += 1
    return {package: (median(values + [0.0] * (len(runs) - len(values))), counts[package])
            for package, values in packages.items()}  # fmt: skip


def run(quick: bool = False, top: int = 12) -> list[Table]:
    results = measure(quick)
    ours, base = by_package(results[OURS]), by_package(results[BASELINE])
    total_ours, total_base = (sum(v for v, _ in packages.values()) for packages in (ours, base))
    count_ours, count_base = (len(set().union(*results[name])) for name in (OURS, BASELINE))
    packages = Table(
        "Imports before the first answer, by top-level package (sum of -X importtime self times), ms",
        ["package", OURS, BASELINE, "difference"],
        notes=[
            f"{len(results[OURS])} runs each, medians. All imports: {OURS} {total_ours:.0f} ms in"
            f" {count_ours} modules, {BASELINE} {total_base:.0f} ms in {count_base} modules"
            f" ({ratio(total_ours, total_base)})."
        ],
    )
    for package in sorted(ours, key=lambda p: -ours[p][0])[:top]:
        mine, theirs = ours[package][0], base.get(package, (0.0, 0))[0]
        packages.rows.append([package, f"{mine:.1f}", f"{theirs:.1f}", f"{mine - theirs:+.1f}"])

    extra_modules = set().union(*results[OURS]) - set().union(*results[BASELINE])
    extra = by_package(results[OURS], extra_modules)
    only_ours = Table(
        f"Beyond the SDK: modules {OURS} imports before its first answer that the bare SDK server does not",
        ["package", "modules", "self time, ms"],
        notes=[f"{len(extra_modules)} modules in all: " + ", ".join(sorted(extra_modules)) if extra_modules
               else "none"],
    )  # fmt: skip
    for package in sorted(extra, key=lambda p: -extra[p][0]):
        only_ours.rows.append([package, str(extra[package][1]), f"{extra[package][0]:.1f}"])
    return [packages, only_ours]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    print_tables(run(parser.parse_args().quick))
