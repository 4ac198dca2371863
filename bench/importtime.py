"""What the server imports at start: `python -X importtime`, ours next to the baseline.

Each server is started over stdio with stdin at EOF, so it imports everything serving needs, answers nothing
and exits. The self times (µs, from -X importtime) are summed per top-level package; medians over the runs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import defaultdict

from common import (
    BASELINE,
    BASELINE_KIND,
    OURS,
    OURS_KIND,
    PYTHON,
    Table,
    median,
    print_tables,
    ratio,
    state_home,
)

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def one_run(command: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int], int]:
    """(self µs per top-level package, cumulative µs per module, number of modules)."""
    if command[0] != PYTHON:  # a console script: run its module under the same interpreter
        command = (PYTHON, "-m", "cancel_job_mcp", *command[1:])
    with state_home() as home:
        done = subprocess.run(
            [PYTHON, "-X", "importtime", *command[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env={"CANCEL_JOB_MCP_HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
    per_package: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = {}
    count = 0
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, _, module = int(match[1]), int(match[2]), match[3], match[4]
        per_package[module.split(".")[0]] += self_us
        cumulative[module] = max(cumulative.get(module, 0), cumulative_us)
        count += 1
    return per_package, cumulative, count


def measure(quick: bool) -> dict[str, list[tuple[dict[str, int], dict[str, int], int]]]:
    runs = 3 if quick else 7
    results: dict[str, list[tuple[dict[str, int], dict[str, int], int]]] = {OURS: [], BASELINE: []}
    for kind in (OURS_KIND, BASELINE_KIND):
        one_run(kind.stdio)  # warm the byte-code cache
    for _ in range(runs):
        for kind in (OURS_KIND, BASELINE_KIND):
            results[kind.name].append(one_run(kind.stdio))
    return results


def run(quick: bool = False, top: int = 12) -> list[Table]:
    results = measure(quick)

    def package_medians(name: str) -> dict[str, float]:
        packages = {package for per_package, _, _ in results[name] for package in per_package}
        return {p: median([per_package.get(p, 0) for per_package, _, _ in results[name]]) for p in packages}

    ours, base = package_medians(OURS), package_medians(BASELINE)
    total_ours, total_base = sum(ours.values()), sum(base.values())
    modules_ours = median([count for _, _, count in results[OURS]])
    modules_base = median([count for _, _, count in results[BASELINE]])
    packages = Table(
        "Start-up imports by top-level package (sum of -X importtime self times), ms",
        ["package", OURS, BASELINE, "difference"],
        notes=[
            f"{len(results[OURS])} runs each, medians. All imports: {OURS} {total_ours / 1000:.0f} ms"
            f" in {modules_ours:.0f} modules, {BASELINE} {total_base / 1000:.0f} ms in {modules_base:.0f}"
            " modules"
            f" ({ratio(total_ours, total_base)})."
        ],
    )
    for package in sorted(ours, key=lambda p: -ours[p])[:top]:
        packages.rows.append(
            [package, f"{ours[package] / 1000:.1f}", f"{base.get(package, 0) / 1000:.1f}",
             f"{(ours[package] - base.get(package, 0)) / 1000:+.1f}"]
        )  # fmt: skip

    only_ours = Table(
        f"Modules only {OURS} imports at start, by cumulative time (top {top}), ms",
        ["module", "cumulative"],
        notes=["cumulative = the module and everything it imported first; nested entries overlap."],
    )
    base_modules = {module for _, cumulative, _ in results[BASELINE] for module in cumulative}
    extra: dict[str, float] = {}
    for module in {m for _, cumulative, _ in results[OURS] for m in cumulative} - base_modules:
        extra[module] = median([cumulative.get(module, 0) for _, cumulative, _ in results[OURS]])
    for module in sorted(extra, key=lambda m: -extra[m])[:top]:
        only_ours.rows.append([module, f"{extra[module] / 1000:.1f}"])
    return [packages, only_ours]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    print_tables(run(parser.parse_args().quick))
