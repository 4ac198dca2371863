"""Bad input, property-based: arbitrary JSON and hostile identifiers through one real stdio server.

One server subprocess per module (a config routes projects to the four fake providers and to the
local runtime); hypothesis sends a few hundred examples per property through it as raw JSON-RPC.
Every answer must be a valid record (or page) or an `isError` result with a known code, never a
JSON-RPC internal error; an identifier that breaks the documented rule must be `invalid_argument`;
and the fake providers must only ever see requests on their documented paths, with the ids given.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from ..battery_support import INTERNAL_ERROR, KNOWN_CODES, RawStdioServer, error_code, structured
from ..conftest import run_cli, submit, wait_for_process_group
from ..fakes import (
    CANARY_TOKEN,
    FakeDigitalOcean,
    FakeIonworks,
    FakeProvider,
    FakeTalonic,
    FakeVeryfront,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
EXAMPLES = 250
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOOLS = ("cancel_job", "get_job", "list_jobs")
VALIDATORS = {
    "cancel_job": Draft7Validator(load_schema("cancel_job.output")),
    "get_job": Draft7Validator(load_schema("get_job.output")),
    "list_jobs": Draft7Validator(load_schema("list_jobs.output")),
}
# The identifier rule, written out again here (not imported) so the server is checked against the README.
IDENTIFIER = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
PREFIXED = re.compile(r"(?:[A-Za-z0-9_-]{1,64}:)?[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SEGMENT = r"[A-Za-z0-9_-]{1,128}"
# The documented paths of each provider (path only; the query is checked separately).
DOCUMENTED_PATHS = {
    "veryfront": re.compile(rf"/projects/{SEGMENT}/jobs(?:/{UUID}(?:/cancel)?)?"),
    "digitalocean": re.compile(rf"/v2/apps/{SEGMENT}/job-invocations(?:/{SEGMENT}(?:/cancel)?)?"),
    "ionworks": re.compile(rf"/jobs(?:/{SEGMENT}(?:/cancel)?)?"),
    "talonic": re.compile(rf"/v1/jobs(?:/{UUID}(?:/cancel)?)?"),
}
DOCUMENTED_QUERY = {
    "veryfront": {"limit", "cursor", "status"},
    "digitalocean": {"page", "per_page"},
    "ionworks": {"limit", "offset", "status"},
    "talonic": {"limit", "cursor", "status"},
}
NASTY = [
    "",
    " ",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "/",
    "a/b",
    "%2F",
    "a%2Fb",
    "..%2F..%2Fetc",
    "%252F",
    "%00",
    "\x00",
    "a\x00b",
    "a\nb",
    "job\r\n",
    "\t",
    "\x1b[31m",
    "\u202eevil",
    "\ufeffjob",
    "ü",
    "日本語",
    "😀",
    "a" * 128,
    "a" * 129,
    "x" * 10_000,
    "?x=1",
    "#frag",
    "a b",
    "a;b",
    "a:b",
    ":",
    "local:",
    ":demo",
    "local:../x",
    "veryfront:vf-main/../x",
    "C:\\Windows",
    "null",
    "-",
    "_",
    "job_.",
]
ID_ALPHABET = st.sampled_from("abcXYZ019_-.:/%\\ \x00\n\u00fc\u202e")


@dataclass
class Battery:
    server: RawStdioServer
    fakes: dict[str, FakeProvider]
    projects: list[str]
    job_ids: list[str]
    cursors: list[str]
    pairs: list[tuple[str, str]]
    seen: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    tool_errors: dict[str, int] = field(default_factory=dict)
    protocol_errors: int = 0
    records: int = 0


def config_text(fakes: dict[str, FakeProvider]) -> str:
    tables = {
        "veryfront": ("vf-*", ""),
        "digitalocean": ("do-*", ""),
        "ionworks": ("io-*", ""),
        "talonic": ("talonic*", ""),
    }
    text = ""
    for kind, (pattern, extra) in tables.items():
        text += (
            f"[backends.{kind}]\nkind = {kind!r}\nbase_url = {fakes[kind].url!r}\n"
            f'token_env = "BATTERY_{kind.upper()}_TOKEN"\nprojects = [{pattern!r}]\n'
            "connect_timeout = 2\nread_timeout = 5\nsettle_timeout = 1\nmax_retries = 0\n" + extra
        )
    return text


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    root = tmp_path_factory.mktemp("battery-input")
    home = root / "home"
    home.mkdir()
    fakes: dict[str, FakeProvider] = {
        "veryfront": FakeVeryfront(CANARY_TOKEN),
        "digitalocean": FakeDigitalOcean(CANARY_TOKEN),
        "ionworks": FakeIonworks(CANARY_TOKEN),
        "talonic": FakeTalonic(CANARY_TOKEN),
    }
    job_ids: list[str] = []
    for status in ("working", "working", "completed"):
        job_ids.append(fakes["veryfront"].add_job("vf-main", status))  # type: ignore[attr-defined]
    for phase in ("RUNNING", "RUNNING", "SUCCEEDED"):
        job_ids.append(fakes["digitalocean"].add_invocation("do-app", phase))  # type: ignore[attr-defined]
    for status in ("processing", "processing", "completed"):
        job_ids.append(fakes["ionworks"].add_job("io-proj", status))  # type: ignore[attr-defined]
    for status in ("processing", "processing", "complete"):
        job_ids.append(fakes["talonic"].add_job(status))  # type: ignore[attr-defined]
    local = [submit(home, "demo", sys.executable, "-c", "import time; time.sleep(600)") for _ in range(3)]
    for job in local:
        wait_for_process_group(home, job["id"])
    job_ids += [job["id"] for job in local]
    config = root / "config.toml"
    config.write_text(config_text(fakes))
    env = {f"BATTERY_{kind.upper()}_TOKEN": CANARY_TOKEN for kind in fakes}
    server = RawStdioServer(
        home, "--config", str(config), "--log-level", "info", stderr_path=root / "stderr.txt", env=env
    )
    try:
        server.initialize()
        cursors = []
        for project in ("demo", "vf-main", "do-app", "io-proj"):
            page = structured(
                server.call_tool("list_jobs", {"project_reference": project, "limit": 1})["result"]
            )
            assert page["next_cursor"], project
            cursors.append(page["next_cursor"])
        projects = [
            "demo",
            "local:demo",
            "vf-main",
            "veryfront:vf-main",
            "do-app",
            "digitalocean:do-app",
            "io-proj",
            "ionworks:io-proj",
            "talonic",
            "talonic:talonic",
            "nowhere:demo",
        ]
        owners = ["vf-main"] * 3 + ["do-app"] * 3 + ["io-proj"] * 3 + ["talonic"] * 3 + ["demo"] * 3
        pairs = list(zip(owners, job_ids, strict=True))
        yield Battery(server, fakes, projects, job_ids, cursors, pairs)
    finally:
        alive = server.process.poll() is None
        stderr = server.close()
        for fake in fakes.values():
            fake.close()
        for job in local:
            run_cli(home, "cancel", "demo", job["id"], check=False)
    assert alive, f"the server died:\n{stderr[-3000:]}"
    for bad in ("Traceback", "failed unexpectedly", "internal_error"):
        assert bad not in stderr, stderr[-3000:]


def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )


def identifiers(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from(NASTY),
        st.uuids().map(str),
        st.from_regex(IDENTIFIER, fullmatch=True),
        st.text(ID_ALPHABET, min_size=0, max_size=140),
        st.text(max_size=60),
        st.builds(lambda a, b: a + b, st.sampled_from(known), st.sampled_from(NASTY)),
    )


def project_references(known: list[str]) -> st.SearchStrategy[str]:
    prefixes = [
        "vf-",
        "do-",
        "io-",
        "talonic",
        "veryfront:",
        "digitalocean:",
        "ionworks:",
        "talonic:",
        "local:",
    ]
    return st.one_of(
        identifiers(known),
        st.builds(lambda a, b: a + b, st.sampled_from(prefixes), identifiers(known)),
    )


def check_answer(
    battery: Battery, tool: str, arguments: Any, answer: dict[str, Any]
) -> dict[str, Any] | None:
    """Assert the answer is acceptable; returns the result (None for a protocol-level refusal)."""
    battery.answers += 1
    if "error" in answer:
        assert answer["error"]["code"] != INTERNAL_ERROR, answer
        # Only arguments that are not a JSON object may be refused at the protocol level.
        assert arguments is not None, answer
        assert not isinstance(arguments, dict), (arguments, answer)
        battery.protocol_errors += 1
        return None
    result: dict[str, Any] = answer["result"]
    if result.get("isError"):
        code = error_code(result)
        assert code in KNOWN_CODES, result
        text = result["content"][0]["text"]
        assert len(text) < 2_000, text[:300]
        assert CANARY_TOKEN not in text
        battery.tool_errors[str(code)] = battery.tool_errors.get(str(code), 0) + 1
    else:
        VALIDATORS[tool].validate(structured(result))
        battery.records += 1
    return result


def check_provider_requests(battery: Battery, job_id: Any = None) -> None:
    """Every request any fake received since the last check is on a documented path and query."""
    for kind, fake in battery.fakes.items():
        requests = list(fake.requests)
        for request in requests[battery.seen.get(kind, 0) :]:
            assert DOCUMENTED_PATHS[kind].fullmatch(request.path), (kind, request.path)
            assert set(request.query) <= DOCUMENTED_QUERY[kind], (kind, request.query)
            segments = request.path.split("/")
            if isinstance(job_id, str) and segments[-1] not in ("jobs", "job-invocations"):
                assert job_id in segments, (kind, request.path, job_id)
        battery.seen[kind] = len(requests)


def expect_refused_identifiers(result: dict[str, Any] | None, arguments: dict[str, Any]) -> None:
    """An identifier that breaks the documented rule is invalid_argument, whatever else is wrong."""
    project = arguments.get("project_reference")
    job_id = arguments.get("job_id")
    bad = (isinstance(project, str) and not PREFIXED.fullmatch(project)) or (
        isinstance(job_id, str) and not IDENTIFIER.fullmatch(job_id)
    )
    if bad:
        assert result is not None, arguments
        assert error_code(result) == "invalid_argument", (arguments, result)


def report(battery: Battery, name: str) -> None:
    requests = sum(len(fake.requests) for fake in battery.fakes.values())
    print(
        f"\n[battery-input] {name}: {battery.answers} calls so far, {battery.records} valid results,"
        f" tool errors {dict(sorted(battery.tool_errors.items()))}, {battery.protocol_errors} protocol"
        f" refusals, {requests} requests reached the fake providers"
    )


@pytest.mark.parametrize("tool", ["cancel_job", "get_job"])
def test_hostile_identifiers(battery: Battery, tool: str) -> None:
    @SETTINGS
    @given(
        pair=st.sampled_from(battery.pairs)
        | st.tuples(
            st.sampled_from(battery.projects) | project_references(battery.projects),
            identifiers(battery.job_ids),
        )
    )
    def run(pair: tuple[str, str]) -> None:
        project, job_id = pair
        arguments = {"project_reference": project, "job_id": job_id}
        result = check_answer(battery, tool, arguments, battery.server.call_tool(tool, arguments))
        expect_refused_identifiers(result, arguments)
        check_provider_requests(battery, job_id)

    run()
    report(battery, f"hostile identifiers, {tool}")


@pytest.mark.parametrize("tool", TOOLS)
def test_arbitrary_json_arguments(battery: Battery, tool: str) -> None:
    fields = ["project_reference", "job_id", "status", "limit", "cursor"]
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=12))
    values = st.one_of(json_values(), identifiers(battery.job_ids), st.sampled_from(battery.projects))
    arguments_strategy = st.one_of(
        st.dictionaries(keys, values, max_size=6),
        st.fixed_dictionaries(
            {"project_reference": st.sampled_from(battery.projects) | json_values()},
            optional={"job_id": values, "status": values, "limit": values, "cursor": values},
        ),
        json_values(),
    )

    @SETTINGS
    @given(arguments=arguments_strategy)
    def run(arguments: Any) -> None:
        result = check_answer(battery, tool, arguments, battery.server.call_tool(tool, arguments))
        if isinstance(arguments, dict):
            expect_refused_identifiers(result, arguments)
        check_provider_requests(battery)

    run()
    report(battery, f"arbitrary JSON arguments, {tool}")


def mutate(cursor: str, position: int, replacement: str) -> str:
    position %= len(cursor) + 1
    return cursor[:position] + replacement + cursor[position + 1 :]


def test_list_jobs_arguments_and_tampered_cursors(battery: Battery) -> None:
    statuses = st.one_of(
        st.sampled_from(["submitted", "working", "completed", "failed", "canceled"]),
        st.sampled_from(NASTY),
        json_values(),
    )
    limits = st.one_of(st.integers(-5, 200), st.sampled_from([1.0, 2.5, 1e308, -0.0, True]), json_values())
    cursors = st.one_of(
        st.sampled_from(battery.cursors),
        st.builds(mutate, st.sampled_from(battery.cursors), st.integers(0, 200), st.text(max_size=3)),
        st.sampled_from(NASTY),
        st.text(max_size=100),
        json_values(),
    )

    @SETTINGS
    @given(
        project=st.one_of(st.sampled_from(battery.projects), project_references(battery.projects)),
        extras=st.fixed_dictionaries({}, optional={"status": statuses, "limit": limits, "cursor": cursors}),
    )
    def run(project: str, extras: dict[str, Any]) -> None:
        arguments = {"project_reference": project, **extras}
        result = check_answer(
            battery, "list_jobs", arguments, battery.server.call_tool("list_jobs", arguments)
        )
        expect_refused_identifiers(result, arguments)
        cursor = extras.get("cursor")
        if isinstance(cursor, str) and cursor not in battery.cursors:
            # A cursor this server did not issue (edited, truncated, invented) is never accepted.
            assert result is not None, arguments
            assert error_code(result) == "invalid_argument", (arguments, result)
        if result is not None and not result.get("isError"):
            page = result["structuredContent"]
            assert len(page["jobs"]) <= 100
            if isinstance(extras.get("status"), str):
                assert all(job["status"] == extras["status"] for job in page["jobs"])
        check_provider_requests(battery)

    run()
    report(battery, "list_jobs arguments and tampered cursors")


def test_the_server_still_serves_and_stopped_only_what_it_was_asked_to(battery: Battery) -> None:
    """After every battery above: the same server answers a plain call with a valid record."""
    answer = battery.server.call_tool(
        "get_job", {"project_reference": "vf-main", "job_id": battery.job_ids[0]}
    )
    record = structured(answer["result"])
    VALIDATORS["get_job"].validate(record)
    assert json.loads(json.dumps(record)) == record
    report(battery, "total")
    assert battery.server.process.poll() is None
