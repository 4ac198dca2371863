"""Provider faults through the real server: each fake provider hangs, resets, fails, truncates, answers
HTML, or answers too late; every call ends in the right error code within the configured time, and
the next call on the same server works.

One stdio server subprocess for the module, configured with short timeouts (connect and read 0.5 s,
one retry) and pointed at the four fake providers and at a closed port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from ..battery_support import RawStdioServer, error_code, serving, structured
from ..conftest import free_port
from ..fakes import CANARY_TOKEN, PROVIDERS, FakeProvider, Fault, ProviderCase, provider_tables

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

READ_TIMEOUT = 0.5
MAX_RETRIES = 1
# Generous: the slowest case is one read timeout; the rest is process and event-loop overhead.
UPPER_BOUND = READ_TIMEOUT * (MAX_RETRIES + 1) + 2.5
RECORD = Draft7Validator(load_schema("cancel_job.output"))
EXPECTED = {
    Fault.HANG: "upstream_unavailable",
    Fault.SLOW: "upstream_unavailable",
    Fault.RESET: "upstream_unavailable",
    Fault.TRUNCATED: "upstream_unavailable",
    Fault.SERVER_ERROR: "upstream_unavailable",
    Fault.UNAVAILABLE: "upstream_unavailable",
    Fault.NOT_JSON: "upstream_error",
    Fault.MALFORMED_JSON: "upstream_error",
}
TIMED_OUT = (Fault.HANG, Fault.SLOW)
CASES = {case.kind: case for case in PROVIDERS}


@dataclass
class Rig:
    server: RawStdioServer
    fakes: dict[str, FakeProvider]
    faults_injected: int = 0
    calls: int = 0
    slowest: dict[str, float] = field(default_factory=dict)


def reference(case: ProviderCase) -> str:
    return f"{case.kind}:{case.project}"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("battery-faults")
    home = root / "home"
    home.mkdir()
    fakes = {case.kind: case.fake(CANARY_TOKEN) for case in PROVIDERS}
    for fake in fakes.values():
        fake.slow_seconds = READ_TIMEOUT * 4
    common = (
        f"connect_timeout = {READ_TIMEOUT}\nread_timeout = {READ_TIMEOUT}\nsettle_timeout = 1\n"
        f"max_retries = {MAX_RETRIES}\nretry_backoff = 0.01\nmax_retry_wait = 1\n"
    )
    text = provider_tables(fakes, "BATTERY", common)
    text += (
        f'[backends.gone]\nkind = "veryfront"\nbase_url = "http://127.0.0.1:{free_port()}"\n'
        f'token_env = "BATTERY_VERYFRONT"\n{common}'
    )
    config = root / "config.toml"
    config.write_text(text)
    env = {f"BATTERY_{kind.upper()}": CANARY_TOKEN for kind in fakes}
    with serving(home, config, env, "info", fakes.values()) as (server, ending):
        rig = Rig(server, fakes)
        yield rig
    alive, stderr = ending.alive, ending.stderr
    print(
        f"\n[battery-faults] {rig.faults_injected} faults injected, {rig.calls} tool calls,"
        f" slowest failing call per fault: { {k: round(v, 3) for k, v in sorted(rig.slowest.items())} }"
        f" (bound {UPPER_BOUND} s)"
    )
    assert alive, f"the server died:\n{stderr[-3000:]}"
    for bad in ("Traceback", "failed unexpectedly", "internal_error", CANARY_TOKEN):
        assert bad not in stderr, stderr[-3000:]


def call(rig: Rig, tool: str, project: str, job_id: str) -> tuple[dict[str, Any], float]:
    rig.calls += 1
    started = time.monotonic()
    answer = rig.server.call_tool(tool, {"project_reference": project, "job_id": job_id}, timeout=30)
    elapsed = time.monotonic() - started
    assert "error" not in answer, answer
    result: dict[str, Any] = answer["result"]
    return result, elapsed


@pytest.mark.parametrize("tool", ["get_job", "cancel_job"])
@pytest.mark.parametrize("fault", list(EXPECTED), ids=str)
@pytest.mark.parametrize("kind", list(CASES))
def test_fault_ends_in_the_right_code_in_time_and_the_next_call_works(
    rig: Rig, kind: str, fault: Fault, tool: str
) -> None:
    case = CASES[kind]
    fake = rig.fakes[kind]
    job_id = case.add_active(fake)
    method = "POST" if tool == "cancel_job" else "GET"
    times = MAX_RETRIES + 1 if fault is Fault.UNAVAILABLE else 1
    fake.clear_faults()
    before = len(fake.requests_to(method))
    fake.fail(fault, times=times, method=method)
    rig.faults_injected += times

    result, elapsed = call(rig, tool, reference(case), job_id)

    assert error_code(result) == EXPECTED[fault], result
    text = result["content"][0]["text"]
    assert CANARY_TOKEN not in text
    assert elapsed < UPPER_BOUND, f"{fault} took {elapsed:.2f} s"
    if fault in TIMED_OUT:
        assert elapsed >= READ_TIMEOUT * 0.8, "the read timeout was not what ended the call"
        assert "did not answer in time" in text
    rig.slowest[str(fault)] = max(rig.slowest.get(str(fault), 0.0), elapsed)
    assert len(fake.requests_to(method)) - before == times, "retried only 503, and only max_retries times"

    # The fault is used up: the same call on the same server now succeeds.
    result, elapsed = call(rig, tool, reference(case), job_id)
    record = structured(result)
    RECORD.validate(record)
    assert record["id"] == job_id
    assert record["status"] == ("canceled" if tool == "cancel_job" else record["status"])
    assert elapsed < UPPER_BOUND


@pytest.mark.parametrize("tool", ["get_job", "cancel_job", "list_jobs"])
def test_an_unreachable_provider_is_upstream_unavailable_and_fast(rig: Rig, tool: str) -> None:
    arguments: dict[str, Any] = {"project_reference": "gone:proj-a"}
    if tool != "list_jobs":
        arguments["job_id"] = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    rig.calls += 1
    rig.faults_injected += 1
    started = time.monotonic()
    result = rig.server.call_tool(tool, arguments)["result"]
    elapsed = time.monotonic() - started
    assert error_code(result) == "upstream_unavailable", result
    assert "could not be reached" in result["content"][0]["text"]
    assert elapsed < UPPER_BOUND


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.RESET, Fault.SERVER_ERROR, Fault.NOT_JSON], ids=str)
def test_list_jobs_faults(rig: Rig, fault: Fault) -> None:
    """Listing goes through the same machinery: one fault per provider, then a clean page."""
    for case in PROVIDERS:
        fake = rig.fakes[case.kind]
        case.add_active(fake)
        fake.clear_faults()
        fake.fail(fault, method="GET")
        rig.faults_injected += 1
        rig.calls += 2
        started = time.monotonic()
        result = rig.server.call_tool("list_jobs", {"project_reference": reference(case)})["result"]
        elapsed = time.monotonic() - started
        assert error_code(result) == EXPECTED[fault], (case.kind, result)
        assert elapsed < UPPER_BOUND
        page = structured(rig.server.call_tool("list_jobs", {"project_reference": reference(case)})["result"])
        assert page["jobs"], case.kind


def test_the_server_is_still_healthy(rig: Rig) -> None:
    assert rig.server.process.poll() is None
    answer = rig.server.request("tools/list", {})
    assert {tool["name"] for tool in answer["result"]["tools"]} >= {"cancel_job", "get_job", "list_jobs"}
