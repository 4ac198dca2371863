"""get_job_logs' reader on a 200,000-line local log: time and peak Python memory of a tail, a byte-bound
tail and a filter that scans the whole file, against the file's size.

    .venv/bin/python bench/job_logs.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from cancel_job_mcp.backends.logs import LogQuery, select_file

LINES = 200_000
RUNS = 20


def measure(path: Path, query: LogQuery) -> tuple[float, int, int]:
    """(median milliseconds, peak bytes allocated, lines returned)."""
    times = []
    for _ in range(RUNS):
        fd = os.open(path, os.O_RDONLY)
        started = time.perf_counter()
        selection, _ = select_file(fd, query)
        times.append((time.perf_counter() - started) * 1000)
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    tracemalloc.start()
    selection, _ = select_file(fd, query)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    os.close(fd)
    return statistics.median(times), peak, len(selection.lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.log"
        path.write_bytes(
            b"".join(b"2026-12-07T03:00:00Z worker line %d of the job\n" % i for i in range(LINES))
        )
        print(f"log: {LINES:,} lines, {path.stat().st_size:,} bytes")
        cases = {
            "tail 10": LogQuery(tail_lines=10),
            "tail 5000, max_bytes 256 KiB": LogQuery(tail_lines=5000, max_bytes=262144),
            "contains (one line matches: it scans it all)": LogQuery(tail_lines=5000, contains="LINE 12345 "),
        }
        for name, query in cases.items():
            median, peak, lines = measure(path, query)
            print(f"{name:45} {median:8.2f} ms  peak {peak / 1024:8.0f} KiB  {lines} lines")


if __name__ == "__main__":
    main()
