"""list_jobs page time on the local runtime as a project grows: 1,000, 100,000 and 300,000 jobs.

Each size gets a fresh state directory holding that many jobs of one project (a third each completed,
failed and canceled, all settled, so no read wakes anything) and, beside them, as many again in another
project. A page is `LocalBackend.list_jobs(project, status, 20, cursor)`, awaited on an event loop as a
tool call's is (worker thread and SQLite query included): the first page, and a page from the middle
of the listing through its keyset cursor, with and without a status filter. The pages of all sizes
take turns (one of each per round, after two warm-up rounds); each figure is the median of `--rounds`
pages, with the spread (min-max). Target: a page at 300,000 jobs within 2x the same page at 1,000.
`--old-indexes` drops the indexes schema 3 added, to show the pages as they were before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from cancel_job_mcp.backends.local import store
from cancel_job_mcp.backends.local.runtime import LocalBackend
from cancel_job_mcp.record import make_record

PROJECT = "bench-pages"
SIZES = (1_000, 100_000, 300_000)
STATUSES = ("completed", "failed", "canceled")
STAMP = "2026-01-01T00:00:00.000Z"


def fill(home: Path, jobs: int, old_indexes: bool) -> None:
    """`jobs` settled jobs in PROJECT, interleaved with as many in another project, in one transaction."""
    with store.connect(store.database_path(home)) as conn:
        conn.execute("BEGIN")
        for number in range(jobs):
            for project in (PROJECT, "another-project"):
                record = make_record(
                    id=f"job_{project[:1]}{number:09}", project_id=project, name="bench",
                    status=STATUSES[number % 3], target="true", config={"command": ["true"], "cwd": "/"},
                    created_at=STAMP, updated_at=STAMP, completed_at=STAMP, exit_code=0,
                )  # fmt: skip
                store.insert(conn, record, 5.0, 1024, "0:1:bench")
        conn.execute("COMMIT")
        if old_indexes:  # the indexes of schema 2 only: the pages as they were before schema 3
            conn.execute("DROP INDEX jobs_by_project_newest")
            conn.execute("DROP INDEX jobs_by_status_newest")


async def middle_cursor(backend: LocalBackend, status: str | None, jobs: int) -> str:
    """The cursor of the page halfway through the listing, found by walking pages of up to 1,000 jobs."""
    half = jobs // (3 if status else 1) // 2
    step = min(1000, half)
    cursor = None
    for _ in range(half // step):
        page = await backend.list_jobs(PROJECT, status, step, cursor)
        cursor = page["next_cursor"]
        assert cursor is not None
    return cursor


async def measure(homes: dict[int, Path], rounds: int) -> dict[int, dict[str, list[float]]]:
    """Every page of every size once per round, interleaved, so a slower moment of the machine falls
    on all of them alike."""
    backends = {jobs: LocalBackend(home) for jobs, home in homes.items()}
    try:
        pages = {}
        for jobs, backend in backends.items():
            for status in (None, "failed"):
                label = f"status={status}" if status else "no status"
                pages[jobs, f"first page, {label}"] = (status, None)
                pages[jobs, f"middle page, {label}"] = (status, await middle_cursor(backend, status, jobs))
        times: dict[int, dict[str, list[float]]] = {jobs: {} for jobs in homes}
        for round_ in range(rounds + 2):
            for (jobs, label), (status, cursor) in pages.items():
                started = time.perf_counter()
                page = await backends[jobs].list_jobs(PROJECT, status, 20, cursor)
                elapsed = (time.perf_counter() - started) * 1000
                assert len(page["jobs"]) == 20
                if round_ >= 2:  # two warm-up rounds
                    times[jobs].setdefault(label, []).append(elapsed)
        return times
    finally:
        for backend in backends.values():
            await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--old-indexes", action="store_true", help="schema 2's indexes only (the 'before')")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="list-pages-") as directory:
        homes = {jobs: Path(directory) / f"home-{jobs}" for jobs in SIZES}
        for jobs, home in homes.items():
            started = time.perf_counter()
            fill(home, jobs, args.old_indexes)
            written = time.perf_counter() - started
            print(f"{jobs:>7,} jobs (+{jobs:,} in another project) written in {written:.1f} s")
        by_size = anyio.run(measure, homes, args.rounds)
    print(f"\nlist_jobs page of 20 (ms: median of {args.rounds}, and min-max)")
    print(f"{'page':<30}" + "".join(f"{jobs:>27,}" for jobs in SIZES) + f"{'300k/1k':>9}")
    for row in by_size[SIZES[0]]:
        cells = []
        for jobs in SIZES:
            times = by_size[jobs][row]
            cells.append(f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})")
        ratio = statistics.median(by_size[SIZES[-1]][row]) / statistics.median(by_size[SIZES[0]][row])
        print(f"{row:<30}" + "".join(f"{cell:>27}" for cell in cells) + f"{ratio:>8.2f}x")


if __name__ == "__main__":
    main()
