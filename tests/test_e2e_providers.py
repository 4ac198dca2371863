"""End to end, for every hosted backend: a real MCP client, the server as a stdio subprocess configured
by a TOML file, and the provider's fake HTTP API on 127.0.0.1 (issue #3: "must show").

Each case drives one server through `cancel_job`, `get_job` and `list_jobs` in one MCP session, both
routing forms (a glob in `projects` and an explicit `NAME:REF`) and both protocol eras ("auto" is
2026-07-28, "legacy" is 2025-11-25). The token reaches the server only through the environment
variable named by `token_env` (a non-standard name, so the provider default cannot be what worked),
and it must appear in no result.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

from .conftest import client, stdio_server
from .fakes import (
    CANARY_TOKEN,
    FakeDigitalOcean,
    FakeIonworks,
    FakeProvider,
    FakeTalonic,
    FakeVeryfront,
    Fault,
)

pytestmark = pytest.mark.anyio

RECORD = Draft7Validator(load_schema("get_job.output"))
PAGE = Draft7Validator(load_schema("list_jobs.output"))
CANCELED = Draft7Validator(load_schema("cancel_job.output"))

# The protocol version each client mode negotiates with this server.
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
DO_APP = "4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf"
DO_OTHER_APP = "9a1b2c3d-0000-4000-8000-00000000beef"


@dataclass(frozen=True)
class Case:
    """How one provider's fake is seeded and how its backend is configured."""

    kind: str
    fake: Callable[[str], FakeProvider]
    # add(fake, project, state, created_at) -> job id; state is "active" or "finished".
    add: Callable[[Any, str, str, str], str]
    # The job's current status on the fake, in the provider's words.
    provider_status: Callable[[Any, str], str]
    project: str
    pattern: str  # a glob in `projects` that matches `project`
    other_project: str
    # True when the backend itself refuses another project's job (no cancel request is sent at all);
    # False when the project is part of the provider's URL and the provider answers 404.
    scoped_here: bool
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.kind


def _veryfront(fake: FakeVeryfront, project: str, state: str, created: str) -> str:
    if state == "active":
        return fake.add_job(project, "working", created_at=created)
    return fake.add_job(project, "completed", created_at=created, completed_at=created)


def _digitalocean(fake: FakeDigitalOcean, project: str, state: str, created: str) -> str:
    if state == "active":
        return fake.add_invocation(project, "RUNNING", created_at=created)
    return fake.add_invocation(project, "SUCCEEDED", created_at=created, completed_at=created)


def _ionworks(fake: FakeIonworks, project: str, state: str, created: str) -> str:
    return fake.add_job(project, "processing" if state == "active" else "completed", created_at=created)


def _talonic(fake: FakeTalonic, project: str, state: str, created: str) -> str:
    # Talonic has no projects: the key's organization holds every job.
    if state == "active":
        return fake.add_job("processing", created_at=created)
    return fake.add_job("complete", created_at=created, completed_at=created)


CASES = [
    Case(
        kind="veryfront",
        fake=FakeVeryfront,
        add=_veryfront,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="proj-a",
        pattern="proj-*",
        other_project="proj-b",
        scoped_here=False,
    ),
    Case(
        kind="digitalocean",
        fake=FakeDigitalOcean,
        add=_digitalocean,
        provider_status=lambda fake, job_id: fake.invocations[job_id]["invocation"]["phase"],
        project=DO_APP,
        pattern="4f6c71e2-*",
        other_project=DO_OTHER_APP,
        scoped_here=False,
    ),
    Case(
        kind="ionworks",
        fake=FakeIonworks,
        add=_ionworks,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="proj-a",
        pattern="proj-?",
        other_project="proj-b",
        scoped_here=True,
    ),
    Case(
        kind="talonic",
        fake=FakeTalonic,
        add=_talonic,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="acme-extract",
        pattern="acme-*",
        other_project="acme-other",  # matches the glob too: another Talonic account's name
        scoped_here=True,
        options={"account": "acme-extract"},
    ),
]


@dataclass
class Seeded:
    fake: Any
    ids: list[str]  # every job of the project, newest first
    finished: list[str]  # the completed ones, newest first
    active: list[str]  # the working ones, newest first
    foreign: str  # an active job of another project (or, for Talonic, reached through another account)


def seed(case: Case, fake: Any) -> Seeded:
    """Seven jobs of the project (four finished, three active), interleaved with other projects' jobs."""
    states = ["finished", "active", "finished", "finished", "active", "finished", "active"]
    ids, finished, active = [], [], []
    foreign = ""
    for second, state in enumerate(states):
        job_id = case.add(fake, case.project, state, f"2026-01-01T00:00:{second * 2:02d}Z")
        ids.append(job_id)
        (finished if state == "finished" else active).append(job_id)
        if case.kind != "talonic" and second % 3 == 0:
            foreign = case.add(fake, case.other_project, "active", f"2026-01-01T00:00:{second * 2 + 1:02d}Z")
    if case.kind == "talonic":
        foreign = active[0]  # a real job of this key, asked for under another account's name
    return Seeded(fake, ids[::-1], finished[::-1], active[::-1], foreign)


def write_config(tmp_path: Path, case: Case, base_url: str, token_env: str) -> Path:
    options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in case.options.items())
    path = tmp_path / f"{case.kind}.toml"
    path.write_text(
        f"[backends.{case.kind}-e2e]\n"
        f'kind = "{case.kind}"\n'
        f'base_url = "{base_url}"\n'
        f'token_env = "{token_env}"\n'
        f'projects = ["{case.pattern}"]\n'
        "connect_timeout = 2\n"
        "read_timeout = 5\n"
        "settle_timeout = 2\n"
        "max_retries = 0\n"
        f"{options}"
    )
    return path


class Session:
    """An MCP client session that keeps every result, to check afterwards that none leaks the token."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.texts: list[str] = []

    async def call(self, tool: str, **arguments: Any) -> Any:
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

    async def all_pages(self, reference: str, limit: int, status: str | None = None) -> tuple[list[str], int]:
        """Every job id of the listing, following next_cursor to the end; returns (ids, pages)."""
        arguments: dict[str, Any] = {"project_reference": reference, "limit": limit}
        if status is not None:
            arguments["status"] = status
        ids: list[str] = []
        pages = 0
        cursor = None
        while True:
            page = await self.ok("list_jobs", **arguments, **({"cursor": cursor} if cursor else {}))
            PAGE.validate(page)
            pages += 1
            assert len(page["jobs"]) <= limit
            for job in page["jobs"]:
                RECORD.validate(job)
                if status is not None:
                    assert job["status"] == status, job
            ids += [job["id"] for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids, pages
            assert pages < 50, "the listing never ends"


def tampered(cursor: str) -> str:
    """The cursor with one character of its signed payload changed."""
    swap = "B" if cursor[2] != "B" else "C"
    return cursor[:2] + swap + cursor[3:]


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    value: Case = request.param
    return value


@pytest.fixture
def fake(case: Case) -> Iterator[Any]:
    server = case.fake(CANARY_TOKEN)
    yield server
    server.close()


@pytest.mark.parametrize("mode", list(ERAS))
async def test_every_tool_through_mcp(case: Case, fake: Any, mode: str, home: Path, tmp_path: Path) -> None:
    seeded = seed(case, fake)
    token_env = f"E2E_{case.kind.upper()}_SECRET"
    config = write_config(tmp_path, case, fake.url, token_env)
    name = f"{case.kind}-e2e"
    by_glob, by_name = case.project, f"{name}:{case.project}"
    target = stdio_server(home, "--config", str(config), **{token_env: CANARY_TOKEN})

    async with client(target, mode) as raw:
        assert raw.protocol_version == ERAS[mode]
        mcp = Session(raw)

        # list_jobs: newest first across at least three pages, no repeats, only this project's jobs.
        for reference in (by_glob, by_name):
            ids, pages = await mcp.all_pages(reference, limit=3)
            assert ids == seeded.ids
            assert len(set(ids)) == len(ids)
            assert pages >= 3
        done, pages = await mcp.all_pages(by_glob, limit=2, status="completed")
        assert done == seeded.finished
        assert pages >= 2
        working, _ = await mcp.all_pages(by_name, limit=2, status="working")
        assert working == seeded.active

        # A cursor that was edited, or replayed with another status, is refused.
        first = await mcp.ok("list_jobs", project_reference=by_glob, limit=3)
        assert first["next_cursor"] is not None
        for bad, status in ((tampered(first["next_cursor"]), None), (first["next_cursor"], "completed")):
            arguments = {"project_reference": by_glob, "limit": 3, "cursor": bad}
            text = await mcp.error("list_jobs", **arguments, **({"status": status} if status else {}))
            assert text.startswith("invalid_argument: cursor"), text
        # The untouched cursor still works, and continues where the first page stopped.
        second = await mcp.ok("list_jobs", project_reference=by_glob, limit=3, cursor=first["next_cursor"])
        # (A backend that filters pages itself may return fewer than `limit` jobs per page.)
        resumed = [job["id"] for job in first["jobs"] + second["jobs"]]
        assert len(resumed) > len(first["jobs"])
        assert resumed == seeded.ids[: len(resumed)]

        # cancel_job on an active job, named explicitly: a valid record, canceled, and the fake agrees.
        victim = seeded.active[1]
        posts_before = len(fake.requests_to("POST"))
        canceled = await mcp.ok("cancel_job", project_reference=by_name, job_id=victim)
        CANCELED.validate(canceled)
        assert (canceled["id"], canceled["status"]) == (victim, "canceled")
        assert canceled["completed_at"] is not None
        assert case.provider_status(fake, victim).lower() in ("canceled", "cancelled", "failed")
        cancels = fake.requests_to("POST")[posts_before:]
        assert len(cancels) == 1, cancels
        assert cancels[0].path.endswith(f"{victim}/cancel")

        # get_job (through the glob) reads the same job, canceled; the others are untouched.
        record = await mcp.ok("get_job", project_reference=by_glob, job_id=victim)
        RECORD.validate(record)
        assert (record["id"], record["status"]) == (victim, "canceled")
        untouched = await mcp.ok("get_job", project_reference=by_name, job_id=seeded.active[0])
        assert untouched["status"] == "working"
        finished = await mcp.ok("get_job", project_reference=by_glob, job_id=seeded.finished[0])
        assert finished["status"] == "completed"
        working, _ = await mcp.all_pages(by_glob, limit=2, status="working")
        assert working == [job for job in seeded.active if job != victim]
        canceled_list, _ = await mcp.all_pages(by_glob, limit=2, status="canceled")
        assert canceled_list == [victim]

        # An unknown id is not_found, for both tools and both routing forms.
        unknown = str(uuid.uuid4())
        for tool, reference in (("get_job", by_glob), ("cancel_job", by_name)):
            text = await mcp.error(tool, project_reference=reference, job_id=unknown)
            assert text.startswith("not_found: "), text

        # A job of another project is not_found, and nothing is sent that could cancel it.
        before = case.provider_status(fake, seeded.foreign)
        posts_before = len(fake.requests_to("POST"))
        asking = case.project if case.kind != "talonic" else case.other_project
        for tool, reference in (
            ("cancel_job", f"{name}:{asking}"),
            ("get_job", asking),
            ("cancel_job", asking),
        ):
            text = await mcp.error(tool, project_reference=reference, job_id=seeded.foreign)
            assert text.startswith("not_found: "), text
        assert case.provider_status(fake, seeded.foreign) == before
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

        # Provider errors that repeat the request's headers (token included) reach the client without it.
        fake.echo_headers = True
        for fault, code in (
            (Fault.BAD_REQUEST, "invalid_argument"),
            (Fault.UNAUTHORIZED, "unauthorized"),
            (Fault.SERVER_ERROR, "upstream_unavailable"),
            (Fault.NOT_JSON, "upstream_error"),
        ):
            fake.fail(fault, method="GET")
            text = await mcp.error("get_job", project_reference=by_glob, job_id=seeded.active[0])
            assert text.startswith(f"{code}: "), (fault, text)
        fake.echo_headers = False

    # Every request carried the token; no result ever showed it.
    assert fake.requests, "the fake was never called"
    assert all(CANARY_TOKEN in json.dumps(r.headers) for r in fake.requests)
    assert len(mcp.texts) > 20
    for text in mcp.texts:
        assert CANARY_TOKEN not in text


async def test_a_missing_token_variable_stops_the_server_before_any_request(
    home: Path, tmp_path: Path
) -> None:
    """token_env names a variable the server does not have: it refuses to start, the fake sees nothing."""
    import sys

    import anyio

    from .conftest import env_for

    with FakeVeryfront(CANARY_TOKEN) as fake:
        config = write_config(tmp_path, CASES[0], fake.url, "E2E_UNSET_SECRET_VARIABLE")
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
