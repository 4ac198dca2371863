"""End to end, for every hosted backend: a real MCP client, the server as a stdio subprocess configured
by a TOML file, and the provider's fake HTTP API on 127.0.0.1 (issue #3: "must show").

Each protocol era ("auto" is 2026-07-28, "legacy" is 2025-11-25) has one server configured for all four
providers (each with fakes and jobs of its own) and one MCP session that the module's tests share (the
`eras` fixture); each case drives it through `cancel_job`, `get_job` and `list_jobs` in both routing forms
(a glob in `projects` and an explicit `NAME:REF`). Each token reaches the server only through the
environment variable named by its `token_env` (a non-standard name, so the provider default cannot be
what worked), and it must appear in no result.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from ...conftest import client, stdio_server
from ...fakes import CANARY_TOKEN, PROVIDERS, FakeVeryfront, Fault, ProviderCase
from ...listing import all_pages

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group(__name__)]

RECORD = Draft7Validator(load_schema("get_job.output"))
CANCELED = Draft7Validator(load_schema("cancel_job.output"))

# The protocol version each client mode negotiates with this server.
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
# One server routes to every provider, so their globs must not overlap: Ionworks' projects (proj-a, by
# proj-?) would also match Veryfront's proj-*, so here they are named apart.
CASES = [
    replace(case, project="ion-a", pattern="ion-?", other_project="ion-b")
    if case.kind == "ionworks"
    else case
    for case in PROVIDERS
]


@dataclass
class Seeded:
    fake: Any
    ids: list[str]  # every job of the project, newest first
    finished: list[str]  # the completed ones, newest first
    active: list[str]  # the working ones, newest first
    foreign: str | None  # an active job of another project (None: the provider has no projects)


def seed(case: ProviderCase, fake: Any) -> Seeded:
    """Seven jobs of the project (four finished, three active), interleaved with other projects' jobs."""
    states = ["finished", "active", "finished", "finished", "active", "finished", "active"]
    ids, finished, active = [], [], []
    foreign = None
    for second, state in enumerate(states):
        job_id = case.add(fake, case.project, state, f"2026-01-01T00:00:{second * 2:02d}Z")
        ids.append(job_id)
        (finished if state == "finished" else active).append(job_id)
        if case.other_project is not None and second % 3 == 0:
            foreign = case.add(fake, case.other_project, "active", f"2026-01-01T00:00:{second * 2 + 1:02d}Z")
    return Seeded(fake, ids[::-1], finished[::-1], active[::-1], foreign)


def backend_table(case: ProviderCase, base_url: str, token_env: str) -> str:
    return (
        f"[backends.{case.kind}-e2e]\n"
        f'kind = "{case.kind}"\n'
        f'base_url = "{base_url}"\n'
        f'token_env = "{token_env}"\n'
        f'projects = ["{case.pattern}"]\n'
        "connect_timeout = 2\n"
        "read_timeout = 5\n"
        "settle_timeout = 2\n"
        "max_retries = 0\n"
    )


def token_env(case: ProviderCase) -> str:
    return f"E2E_{case.kind.upper()}_SECRET"


class Session:
    """An MCP client session that keeps every result, to check afterwards that none leaks the token."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.texts: list[str] = []

    async def call(self, tool: str, **arguments: Any) -> Any:
        return await self.call_tool(tool, arguments)

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        result = await self.session.call_tool(tool, arguments)
        self.texts.append(json.dumps(result.model_dump(mode="json")))
        return result

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.call(tool, **arguments)
        assert not result.is_error, result.content[0].text
        value: dict[str, Any] = result.structured_content
        assert json.loads(result.content[0].text) == value, "text and structured content disagree"
        return value

    async def error(self, tool: str, **arguments: Any) -> str:
        result = await self.call(tool, **arguments)
        assert result.is_error, f"{tool}({arguments}) succeeded: {result.structured_content}"
        text: str = result.content[0].text
        return text


def tampered(cursor: str) -> str:
    """The cursor with one character of its signed payload changed."""
    swap = "B" if cursor[2] != "B" else "C"
    return cursor[:2] + swap + cursor[3:]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so that one MCP session can serve every test of an era


@pytest.fixture(scope="module", params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> ProviderCase:
    value: ProviderCase = request.param
    return value


@pytest.fixture(scope="module", params=list(ERAS))
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@dataclass
class Era:
    """One server configured for every provider, its MCP session, and each provider's seeded fake."""

    mcp: Session
    fakes: dict[str, Any]
    seeded: dict[str, Seeded]
    canceled: dict[str, list[str]]  # the jobs the tests here canceled, by provider


@pytest.fixture(scope="module")
async def eras(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Era]]:
    """Both eras' servers, shared by the module's tests; at the end, every request each fake saw carried
    its token and no result showed it."""
    eras: dict[str, Era] = {}
    async with AsyncExitStack() as stack:
        for mode in ERAS:
            tmp_path = tmp_path_factory.mktemp(mode)
            home = tmp_path / "home"
            home.mkdir()
            fakes = {case.kind: stack.enter_context(case.fake(CANARY_TOKEN)) for case in CASES}
            config = tmp_path / "config.toml"
            config.write_text(
                "\n".join(backend_table(case, fakes[case.kind].url, token_env(case)) for case in CASES)
            )
            tokens = {token_env(case): CANARY_TOKEN for case in CASES}
            raw = await stack.enter_async_context(
                client(stdio_server(home, "--config", str(config), **tokens), mode)
            )
            assert raw.protocol_version == ERAS[mode]
            seeded = {case.kind: seed(case, fakes[case.kind]) for case in CASES}
            eras[mode] = Era(Session(raw), fakes, seeded, {case.kind: [] for case in CASES})
        yield eras
    for mode, era in eras.items():
        for kind, fake in era.fakes.items():
            assert fake.requests, f"the {kind} fake was never called ({mode})"
            assert all(CANARY_TOKEN in json.dumps(r.headers) for r in fake.requests)
        assert era.mcp.texts
        for text in era.mcp.texts:
            assert CANARY_TOKEN not in text


@dataclass
class Served:
    """One provider's seeded fake and the MCP session of an era's server."""

    case: ProviderCase
    fake: Any
    seeded: Seeded
    mcp: Session
    name: str  # the backend's name in the configuration
    canceled: list[str]  # the jobs a test here canceled

    @property
    def by_glob(self) -> str:
        return self.case.project

    @property
    def by_name(self) -> str:
        return f"{self.name}:{self.case.project}"

    @property
    def active(self) -> list[str]:
        return [job for job in self.seeded.active if job not in self.canceled]


@pytest.fixture
def served(case: ProviderCase, mode: str, eras: dict[str, Era]) -> Served:
    era = eras[mode]
    kind = case.kind
    return Served(case, era.fakes[kind], era.seeded[kind], era.mcp, f"{kind}-e2e", era.canceled[kind])


async def test_list_jobs_pages_newest_first_in_both_routing_forms(served: Served) -> None:
    """Newest first across at least three pages, no repeats, only this project's jobs."""
    for reference in (served.by_glob, served.by_name):
        ids, pages = await all_pages(served.mcp, reference, limit=3)
        assert ids == served.seeded.ids
        assert len(set(ids)) == len(ids)
        assert pages >= 3


async def test_list_jobs_filters_by_status(served: Served) -> None:
    done, pages = await all_pages(served.mcp, served.by_glob, limit=2, status="completed")
    assert done == served.seeded.finished
    assert pages >= 2
    working, _ = await all_pages(served.mcp, served.by_name, limit=2, status="working")
    assert working == served.active


async def test_a_tampered_or_replayed_cursor_is_refused_and_the_untouched_one_resumes(
    served: Served,
) -> None:
    mcp, by_glob = served.mcp, served.by_glob
    first = await mcp.ok("list_jobs", project_reference=by_glob, limit=3)
    assert first["next_cursor"] is not None
    for bad, status in ((tampered(first["next_cursor"]), None), (first["next_cursor"], "completed")):
        arguments = {"project_reference": by_glob, "limit": 3, "cursor": bad}
        text = await mcp.error("list_jobs", **arguments, **({"status": status} if status else {}))
        assert text.startswith("invalid_argument: cursor"), text
    second = await mcp.ok("list_jobs", project_reference=by_glob, limit=3, cursor=first["next_cursor"])
    # (A backend that filters pages itself may return fewer than `limit` jobs per page.)
    resumed = [job["id"] for job in first["jobs"] + second["jobs"]]
    assert len(resumed) > len(first["jobs"])
    assert resumed == served.seeded.ids[: len(resumed)]


async def test_cancel_job_cancels_the_named_job_and_only_it(served: Served) -> None:
    """Named explicitly: a valid record, canceled, and the fake agrees; get_job (through the glob)
    reads it canceled; the others are untouched."""
    mcp, fake, case = served.mcp, served.fake, served.case
    victim = served.active[1]
    posts_before = len(fake.requests_to("POST"))
    served.canceled.append(victim)
    canceled = await mcp.ok("cancel_job", project_reference=served.by_name, job_id=victim)
    CANCELED.validate(canceled)
    assert (canceled["id"], canceled["status"], canceled["project_id"]) == (victim, "canceled", case.project)
    assert canceled["completed_at"] is not None
    assert case.provider_status(fake, victim).lower() in ("canceled", "cancelled", "failed")
    cancels = fake.requests_to("POST")[posts_before:]
    assert len(cancels) == 1, cancels
    assert cancels[0].path.endswith(f"{victim}/cancel")

    record = await mcp.ok("get_job", project_reference=served.by_glob, job_id=victim)
    RECORD.validate(record)
    assert (record["id"], record["status"], record["project_id"]) == (victim, "canceled", case.project)
    untouched = await mcp.ok("get_job", project_reference=served.by_name, job_id=served.active[0])
    assert untouched["status"] == "working"
    finished = await mcp.ok("get_job", project_reference=served.by_glob, job_id=served.seeded.finished[0])
    assert finished["status"] == "completed"
    working, _ = await all_pages(mcp, served.by_glob, limit=2, status="working")
    assert working == served.active
    canceled_list, _ = await all_pages(mcp, served.by_glob, limit=2, status="canceled")
    assert canceled_list == [victim]


async def test_an_unknown_id_is_not_found_in_both_routing_forms(served: Served) -> None:
    unknown = str(uuid.uuid4())
    for tool, reference in (("get_job", served.by_glob), ("cancel_job", served.by_name)):
        text = await served.mcp.error(tool, project_reference=reference, job_id=unknown)
        assert text.startswith("not_found: "), text


async def test_another_projects_job_is_not_found_and_nothing_could_cancel_it(served: Served) -> None:
    if served.seeded.foreign is None:
        pytest.skip(f"{served.case.kind} has no projects")
    await check_other_project(served.mcp, served.case, served.fake, served.name, served.seeded.foreign)


async def test_provider_errors_echoing_the_token_reach_the_client_without_it(served: Served) -> None:
    """Provider errors that repeat the request's headers (token included): the code is right, and the
    module's fixture checks at its end that no result showed the token."""
    fake = served.fake
    fake.echo_headers = True
    try:
        for fault, code in (
            (Fault.BAD_REQUEST, "invalid_argument"),
            (Fault.UNAUTHORIZED, "unauthorized"),
            (Fault.SERVER_ERROR, "upstream_unavailable"),
            (Fault.NOT_JSON, "upstream_error"),
        ):
            fake.fail(fault, method="GET")
            text = await served.mcp.error(
                "get_job", project_reference=served.by_glob, job_id=served.active[0]
            )
            assert text.startswith(f"{code}: "), (fault, text)
            assert CANARY_TOKEN not in text
    finally:
        fake.echo_headers = False
        fake.clear_faults()


async def check_other_project(mcp: Session, case: ProviderCase, fake: Any, name: str, foreign: str) -> None:
    """A job of another project is not_found, and nothing is sent that could cancel it."""
    assert case.other_project is not None
    before = case.provider_status(fake, foreign)
    posts_before = len(fake.requests_to("POST"))
    for tool, reference in (
        ("cancel_job", f"{name}:{case.project}"),
        ("get_job", case.project),
        ("cancel_job", case.project),
    ):
        text = await mcp.error(tool, project_reference=reference, job_id=foreign)
        assert text.startswith("not_found: "), text
    assert case.provider_status(fake, foreign) == before
    posts = fake.requests_to("POST")[posts_before:]
    if case.scoped_here:
        assert posts == [], "the backend must refuse another project's job before any cancel request"
    else:
        # The provider scopes by URL: the only cancel requests named the project asked for.
        assert len(posts) == 2
        assert all(case.project in r.path and case.other_project not in r.path for r in posts)
    assert not any(r.method == "POST" and case.other_project in r.path for r in fake.requests), (
        "a cancel request was sent to the other project"
    )


async def test_a_missing_token_variable_stops_the_server_before_any_request(
    home: Path, tmp_path: Path
) -> None:
    """token_env names a variable the server does not have: it refuses to start, the fake sees nothing."""
    import sys

    import anyio

    from ...conftest import env_for

    with FakeVeryfront(CANARY_TOKEN) as fake:
        config = tmp_path / "config.toml"
        config.write_text(backend_table(PROVIDERS[0], fake.url, "E2E_UNSET_SECRET_VARIABLE"))
        env = env_for(home)
        env.pop("E2E_UNSET_SECRET_VARIABLE", None)
        with anyio.fail_after(30):
            done = await anyio.run_process(
                [sys.executable, "-m", "cancel_job_mcp", "--config", str(config), "serve"],
                env=env,
                check=False,
            )
        assert done.returncode != 0
        assert b"E2E_UNSET_SECRET_VARIABLE" in done.stderr
        assert done.stdout == b""
        assert fake.requests == []
