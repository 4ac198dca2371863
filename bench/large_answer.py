"""Reading a large provider answer: what decoding, the JSON guards and redaction cost on ~4 MB.

A Slurm-like listing (the v0.0.42 job of tests/fixtures/slurm, repeated to ~4 MB) goes through the
hosted client's read of a 2xx answer (`HttpClient._decoded`: decode the JSON with its guards, then
redact our token) in process, no network:
  no token          a backend without a secret (nothing to redact);
  token, absent     a backend with a secret the answer does not hold (the common case);
  token, echoed     the same answer with the token echoed in one job's comment (every field is walked).
`json.loads` alone is the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from common import REPO, Table, median, print_tables, spread

sys.path.insert(0, str(REPO))
from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.backends.http.client import HttpClient
from cancel_job_mcp.backends.registry import ProviderSpec
from tests.fakes import CANARY_TOKEN

TOKEN_ENV = "BENCH_LARGE_ANSWER_TOKEN"
SIZE = 4 * 1024 * 1024 - 65536
SPEC = ProviderSpec(kind="slurm", display_name="Bench", default_base_url="http://127.0.0.1:9")


def listing(echo: bool) -> bytes:
    fixture = REPO / "tests" / "fixtures" / "slurm" / "v0.0.42-doc-get-job.json"
    job = json.loads(fixture.read_text())["jobs"][0]
    count = SIZE // len(json.dumps(job))
    jobs = [{**job, "job_id": 1000 + i, "name": f"train/{i}"} for i in range(count)]
    if echo:
        jobs[count // 2]["comment"] = f"launched with Bearer {CANARY_TOKEN}"
    return json.dumps({"jobs": jobs}).encode()


def client(token: bool) -> HttpClient:
    os.environ[TOKEN_ENV] = CANARY_TOKEN
    settings = BackendSettings(name="bench", kind="slurm", token_env=TOKEN_ENV if token else None)
    return HttpClient(settings, SPEC)


def timed(read: Callable[[], Any], repetitions: int) -> list[float]:
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return times


def run(quick: bool = False) -> list[Table]:
    repetitions = 3 if quick else 9
    plain, echoed = listing(echo=False), listing(echo=True)
    without, with_token = client(token=False), client(token=True)
    cases = {
        "json.loads alone (the floor)": lambda: json.loads(plain),
        "no token": lambda: without._decoded(plain),
        "token, absent from the answer": lambda: with_token._decoded(plain),
        "token, echoed in one field": lambda: with_token._decoded(echoed),
    }
    table = Table(
        title=f"Reading a {len(plain) / 1e6:.1f} MB provider answer (decode, guards, redaction), ms",
        header=["case", "median", "spread"],
    )
    for name, read in cases.items():
        times = timed(read, repetitions)
        table.rows.append([name, f"{median(times) * 1000:.0f}", spread(times, scale=1000, digits=0)])
    table.notes.append(f"{repetitions} reads each, in process; spread = min-max.")
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print_tables(run(parser.parse_args().quick))
