"""Secrets: a canary token for every backend never shows in a result, an error, a log line or an exception.

A stdio server at `--log-level debug` (stderr kept) is configured with a distinct canary token per
backend (the four providers, Ray and Temporal), through environment variables named in the config. Every
provider fake echoes the request headers (so the token) in its error bodies; some also put the token
in their own words, in an HTML page, or in a job's fields. Every answer and all of stderr are searched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..battery_support import RawStdioServer, error_code, serving
from ..fakes import (
    PROVIDERS,
    FakeProvider,
    FakeRay,
    FakeTemporal,
    FakeVeryfront,
    Fault,
    ProviderCase,
    provider_tables,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

TOKENS = {
    kind: f"cjm-CANARY-{kind}-5e1d7b93c0" for kind in ("veryfront", "digitalocean", "ionworks", "talonic")
}
TOKENS["ray"] = "cjm-CANARY-ray-0a4f62d8e1"
TOKENS["temporal"] = "cjm-CANARY-temporal-6c3b9e0f2a"
FAULTS = [
    Fault.BAD_REQUEST,
    Fault.UNAUTHORIZED,
    Fault.FORBIDDEN,
    Fault.NOT_FOUND,
    Fault.CONFLICT,
    Fault.RATE_LIMITED,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.MALFORMED_JSON,
    Fault.MISSING_FIELDS,
    Fault.NOT_JSON,
    Fault.TRUNCATED,
    Fault.RESET,
]


@dataclass
class Rig:
    server: RawStdioServer
    fakes: dict[str, FakeProvider]
    answers: list[dict[str, Any]] = field(default_factory=list)
    faults: int = 0
    echoed_bodies: int = 0


def tool_arguments(case: ProviderCase, tool: str, job_id: str) -> dict[str, Any]:
    arguments = {"project_reference": f"{case.kind}:{case.project}"}
    if tool != "list_jobs":
        arguments["job_id"] = job_id
    return arguments


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("battery-secrets")
    home = root / "home"
    home.mkdir()
    fakes: dict[str, FakeProvider] = {case.kind: case.fake(TOKENS[case.kind]) for case in PROVIDERS}
    fakes["ray"] = FakeRay(TOKENS["ray"])
    fakes["temporal"] = FakeTemporal(TOKENS["temporal"])
    for fake in fakes.values():
        fake.echo_headers = True
    settings = (
        "connect_timeout = 1\nread_timeout = 1\nsettle_timeout = 0.5\nmax_retries = 1\nretry_backoff = 0.01\n"
    )
    text = provider_tables(fakes, "BATTERY_SECRET", settings)
    config = root / "config.toml"
    config.write_text(text)
    env = {f"BATTERY_SECRET_{kind.upper()}": token for kind, token in TOKENS.items()}
    with serving(home, config, env, "debug", fakes.values()) as (server, ending):
        rig = Rig(server, fakes)
        yield rig
    alive, stderr = ending.alive, ending.stderr
    sent = sum(len(fake.requests) for fake in fakes.values())
    print(
        f"\n[battery-secrets] {len(rig.answers)} answers checked, {rig.faults} faults injected,"
        f" {sent} provider requests carried a canary, {rig.echoed_bodies} error bodies echoed it,"
        f" {len(stderr.splitlines())} debug log lines checked"
    )
    assert alive
    assert "DEBUG" in stderr, "the server did not log at debug level"
    for kind, token in TOKENS.items():
        assert token not in stderr, f"{kind}'s token is in the log:\n" + "\n".join(
            line for line in stderr.splitlines() if token in line
        )
    # The canaries were really in play: each fake received its token on every request.
    for kind, fake in fakes.items():
        for request in fake.requests:
            assert TOKENS[kind] in json.dumps(request.headers), kind


def check(rig: Rig, answer: dict[str, Any]) -> dict[str, Any]:
    rig.answers.append(answer)
    dumped = json.dumps(answer)
    for kind, token in TOKENS.items():
        assert token not in dumped, f"{kind}'s token in an answer: {dumped[:500]}"
    assert "error" not in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


@pytest.mark.parametrize("tool", ["get_job", "cancel_job", "list_jobs"])
@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("case", PROVIDERS, ids=str)
def test_echoed_headers_never_come_back(rig: Rig, case: ProviderCase, fault: Fault, tool: str) -> None:
    fake = rig.fakes[case.kind]
    job_id = case.add_active(fake)
    fake.clear_faults()
    fake.fail_always(fault)
    rig.faults += 1
    try:
        result = check(rig, rig.server.call_tool(tool, tool_arguments(case, tool, job_id)))
    finally:
        fake.clear_faults()
    assert result.get("isError"), result
    assert error_code(result) not in (None, "internal_error"), result


@pytest.mark.parametrize(
    "body",
    [
        "message-is-the-token",
        "detail-says-invalid-token",
        "token-in-every-field",
        "token-in-a-nested-object",
        "html-page",
    ],
)
@pytest.mark.parametrize("case", PROVIDERS, ids=str)
def test_provider_words_with_the_token(rig: Rig, case: ProviderCase, body: str) -> None:
    """Error bodies in the provider's own words that carry the token (no header name to spot)."""
    fake = rig.fakes[case.kind]
    token = TOKENS[case.kind]
    shapes: dict[str, Any] = {
        "message-is-the-token": {"message": token},
        "detail-says-invalid-token": {"detail": f"invalid key {token} for this organization"},
        "token-in-every-field": {key: f"bad {token}" for key in ("message", "detail", "error", "title")},
        "token-in-a-nested-object": {"error": {"message": token, "key": token}, "message": "denied"},
        "html-page": f"<html>{token}</html>",
    }
    original = fake.error_body
    fake.error_body = lambda status, code, message, path: shapes[body]  # type: ignore[method-assign]
    try:
        for fault in (Fault.BAD_REQUEST, Fault.UNAUTHORIZED, Fault.CONFLICT, Fault.SERVER_ERROR):
            fake.fail(fault)
            rig.faults += 1
            result = check(
                rig, rig.server.call_tool("get_job", tool_arguments(case, "get_job", case.add_active(fake)))
            )
            assert result.get("isError"), result
    finally:
        fake.error_body = original  # type: ignore[method-assign]
        fake.clear_faults()


@pytest.mark.parametrize("case", PROVIDERS, ids=str)
def test_successful_calls_carry_no_token(rig: Rig, case: ProviderCase) -> None:
    fake = rig.fakes[case.kind]
    job_id = case.add_active(fake)
    for tool in ("get_job", "list_jobs", "cancel_job", "cancel_job"):
        result = check(rig, rig.server.call_tool(tool, tool_arguments(case, tool, job_id)))
        assert not result.get("isError"), result


def test_ray_behind_a_token_proxy(rig: Rig) -> None:
    fake = rig.fakes["ray"]
    for tool, fault, code in (
        ("get_job", None, "not_found"),
        ("cancel_job", None, "not_found"),
        ("list_jobs", Fault.SERVER_ERROR, "upstream_unavailable"),
    ):
        arguments: dict[str, Any] = {"project_reference": "ray:cluster"}
        if tool != "list_jobs":
            arguments["job_id"] = "raysubmit_abc123"
        if fault is not None:
            fake.fail(fault)
        result = check(rig, rig.server.call_tool(tool, arguments))
        assert error_code(result) == code, result
    assert fake.requests


@pytest.mark.parametrize("tool", ["get_job", "cancel_job", "list_jobs"])
@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_temporal_with_an_api_key(rig: Rig, fault: Fault, tool: str) -> None:
    """Temporal Cloud's API key (sent as `Authorization: Bearer`) echoed back in every fault."""
    fake = rig.fakes["temporal"]
    arguments = {"project_reference": "temporal:default", "job_id": fake.add_workflow()}  # type: ignore[attr-defined]
    if tool == "list_jobs":
        del arguments["job_id"]
    fake.fail_always(fault)
    rig.faults += 1
    try:
        result = check(rig, rig.server.call_tool(tool, arguments))
    finally:
        fake.clear_faults()
    assert result.get("isError"), result
    assert error_code(result) not in (None, "internal_error"), result


def test_temporal_successful_calls_carry_no_token(rig: Rig) -> None:
    fake = rig.fakes["temporal"]
    arguments = {"project_reference": "temporal:default", "job_id": fake.add_workflow()}  # type: ignore[attr-defined]
    for tool in ("get_job", "cancel_job", "cancel_job"):
        assert not check(rig, rig.server.call_tool(tool, arguments)).get("isError")
    assert not check(rig, rig.server.call_tool("list_jobs", {"project_reference": "temporal:default"})).get(
        "isError"
    )


def test_the_fakes_did_echo_the_token(rig: Rig) -> None:
    """Guard against a vacuous pass: error bodies the server received really held the canary."""
    import httpx

    for kind, fake in rig.fakes.items():
        fake.fail(Fault.SERVER_ERROR)
        header = "x-api-key" if kind == "ionworks" else "authorization"
        value = TOKENS[kind] if kind == "ionworks" else f"Bearer {TOKENS[kind]}"
        path = "/api/jobs/x" if kind == "ray" else "/v1/jobs"
        response = httpx.get(f"{fake.url}{path}", headers={header: value})
        assert TOKENS[kind] in response.text, kind
        rig.echoed_bodies += 1
        fake.clear_faults()


def test_a_job_record_that_echoes_the_token(rig: Rig) -> None:
    """A provider that writes the request's headers into a job's own fields (as a debugging echo)."""
    # Found by this battery and fixed in 5fb5862: the backend redacts its token from provider answers.
    fake = rig.fakes["veryfront"]
    token = TOKENS["veryfront"]
    job_id = fake.add_job(  # type: ignore[attr-defined]
        "proj-a",
        "working",
        name=f"Bearer {token}",
        failed_reason=f"Authorization: Bearer {token}",
        config={"request_headers": {"authorization": f"Bearer {token}"}},
    )
    arguments = {"project_reference": "veryfront:proj-a", "job_id": job_id}
    check(rig, rig.server.call_tool("get_job", arguments))


def test_a_token_with_a_newline_never_reaches_the_debug_log(tmp_path: Path) -> None:
    """h11 refuses such a header and httpcore used to log the refusal, token included (fixed in 5fb5862)."""
    first, second = "cjm-CANARY-line-one-4b7e", "cjm-CANARY-line-two-91c3"
    fake = FakeVeryfront(f"{first}\n{second}")
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[backends.veryfront]\nbase_url = "{fake.url}"\ntoken_env = "BATTERY_MULTILINE"\n'
            "read_timeout = 1\nconnect_timeout = 1\n"
        )
        home = tmp_path / "home"
        home.mkdir()
        server = RawStdioServer(
            home,
            "--config",
            str(config),
            "--log-level",
            "debug",
            stderr_path=tmp_path / "stderr.txt",
            env={"BATTERY_MULTILINE": f"{first}\n{second}"},
        )
        try:
            server.initialize()
            answer = server.call_tool(
                "get_job",
                {"project_reference": "veryfront:proj-a", "job_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"},
            )
        finally:
            stderr = server.close()
    finally:
        fake.close()
    result = answer["result"]
    assert result.get("isError")
    assert error_code(result) != "internal_error"
    for part in (first, second):
        assert part not in json.dumps(answer)
        assert part not in stderr, [line for line in stderr.splitlines() if part in line]
