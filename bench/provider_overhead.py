"""Provider overhead: what cancel-job-mcp adds to a provider call.

The Veryfront fake from tests/fakes (a real HTTP server on 127.0.0.1) serves one job. Three ways to
read it, each `CALLS` times in a row, several repetitions:
  bare httpx       an `httpx.AsyncClient` GET of the job's URL (the floor: the provider round trip);
  backend          `VeryfrontBackend.get_job` in process (path checks, auth, mapping to the record);
  MCP over stdio   `get_job` through the server subprocess configured to use the fake.
and `cancel_job` through MCP on an already-canceled job: the fake answers 409, so this is the hosted
backends' 409 -> follow-up GET path, two provider round trips (compare with twice the bare GET).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import anyio
import httpx
from common import REPO, Table, client, median, percentile, print_tables, spread, state_home

sys.path.insert(0, str(REPO))
from cancel_job_mcp.backends.veryfront import VeryfrontBackend
from tests.fakes import CANARY_TOKEN, FakeVeryfront, backend_settings

PROJECT = "bench-project"
TOKEN_ENV = "BENCH_VF_TOKEN"
CALLS = 300


async def timed(call: Any, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)
    return latencies


async def measure(
    fake: FakeVeryfront, job_id: str, canceled_id: str, calls: int, home: Any
) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {CANARY_TOKEN}"}
    path = f"/projects/{PROJECT}/jobs/{job_id}"
    async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:

        async def bare() -> None:
            (await http.get(path)).raise_for_status()

        results = {"bare httpx GET": await timed(bare, calls)}

    os.environ[TOKEN_ENV] = CANARY_TOKEN
    backend = VeryfrontBackend(backend_settings("veryfront", fake.url, read_timeout=5.0, token_env=TOKEN_ENV))
    try:
        results["backend.get_job (in process)"] = await timed(lambda: backend.get_job(PROJECT, job_id), calls)
    finally:
        await backend.aclose()

    config = home / "config.toml"
    config.write_text(
        f'[backends.vf]\nkind = "veryfront"\nbase_url = "{fake.url}"\nprojects = ["{PROJECT}"]\n'
        f'token_env = "{TOKEN_ENV}"\nsettle_timeout = 0\n'
    )
    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cancel_job_mcp", "--config", str(config)],
        env={**os.environ, "CANCEL_JOB_MCP_HOME": str(home)},
    )
    arguments = {"project_reference": PROJECT, "job_id": job_id}
    canceled = {"project_reference": PROJECT, "job_id": canceled_id}
    async with client(params) as session:
        await session.call_tool("get_job", arguments)  # warm-up: backend created, connection open
        results["MCP get_job over stdio"] = await timed(
            lambda: session.call_tool("get_job", arguments), calls
        )
        results["MCP cancel_job over stdio (already canceled)"] = await timed(
            lambda: session.call_tool("cancel_job", canceled), calls
        )
    return results


def run(quick: bool = False) -> list[Table]:
    repetitions, calls = (1, 200) if quick else (3, CALLS)
    runs: dict[str, list[dict[str, float]]] = {}
    with FakeVeryfront(CANARY_TOKEN) as fake:
        job_id = fake.add_job(PROJECT, status="working")
        canceled_id = fake.add_job(PROJECT, status="canceled")
        for _ in range(repetitions):
            with state_home() as home:
                results = anyio.run(measure, fake, job_id, canceled_id, calls, home)
            for name, latencies in results.items():
                runs.setdefault(name, []).append(
                    {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}
                )
    floor = median([run["p50"] for run in runs["bare httpx GET"]])
    table = Table(
        title="Provider overhead: reading a job from a fake Veryfront on 127.0.0.1, ms",
        header=["path", "p50", "p50 spread", "p99", "added to the bare GET (p50)"],
    )
    for name, values in runs.items():
        p50s = [value["p50"] for value in values]
        p50 = median(p50s)
        table.rows.append(
            [
                name,
                f"{p50 * 1000:.2f}",
                spread(p50s, scale=1000, digits=2),
                f"{median([value['p99'] for value in values]) * 1000:.2f}",
                f"{(p50 - floor) * 1000:+.2f}",
            ]
        )
    table.notes.append(
        f"{repetitions} run(s) of {calls} sequential calls each; medians across runs, spread = min-max."
        " The MCP rows include the SDK client's own cost (about 1 ms a call, see the stdio table)."
    )
    return [table]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print_tables(run(parser.parse_args().quick))
