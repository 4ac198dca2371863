"""A person confirms each cancel (`--confirm ask`), asked through real MCP clients: the Python SDK client
and the TypeScript SDK client, each with an elicitation handler that accepts or declines, over stdio,
HTTP with sessions, stateless HTTP and --workers, in both protocol eras. A declined or dismissed cancel
changes nothing (`declined`); a client that cannot ask gets the fallback; a forged, moved or replayed
confirmation state is refused. Every attempt has its audit row."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError, types
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.audit import AuditLog
from cancel_job_mcp.backends.local.runtime import submit_job
from cancel_job_mcp.config import ConfigError, ConfirmPolicy, parse_config
from cancel_job_mcp.confirm import REFUSED_STATE

from .conftest import HttpServer, client, run_cli, stdio_server
from .node_tools import NODE, NODE_MODULES, TS_SDK_CLIENT

pytestmark = pytest.mark.xdist_group(__name__)

ASK = ("--confirm", "ask")
SERVE_ASKING = ("serve", *ASK)  # stdio: the confirmation flags are serve's
PROJECT = "confirmed"
ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
TOKENS = f"alice:{ALICE},bob:{BOB}"


class Person:
    """An elicitation handler: answers each question as `answer` says, and keeps the questions."""

    def __init__(self) -> None:
        self.answer = "decline"
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        self.asked.append(params.message)
        if self.answer == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action=self.answer)  # type: ignore[arg-type]


def sleeper(home: Path, project: str = PROJECT) -> str:
    return submit_job(home, project, ["sleep", "600"], name="sleeper")["id"]


def status(home: Path, job_id: str) -> str:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        found: str = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    return found


def audit_of(home: Path, job_id: str) -> list[tuple[Any, ...]]:
    log = AuditLog(home)
    try:
        return [
            (row["principal"], row["confirmation"], row["outcome"])
            for row in log.entries()
            if row["job_id"] == job_id
        ]
    finally:
        log.close()


def stop(home: Path, *job_ids: str) -> None:
    for job_id in job_ids:
        run_cli(home, "cancel", PROJECT, job_id, check=False)


def http_client(server: HttpServer, mode: str, token: str | None = None, **options: Any) -> Any:
    import httpx2

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=120)  # a server busy starting is not a failure
    return http, client(streamable_http_client(server.url, http_client=http), mode, **options)


async def accept_then_decline(session: Any, person: Person, home: Path, principal: str | None) -> None:
    """One job canceled after a yes, another kept after a no; both answers in the audit trail."""
    kept, canceled = sleeper(home), sleeper(home)
    person.answer = "accept"
    done = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": canceled})
    assert not done.is_error, done.content[0].text
    assert done.structured_content["status"] == "canceled"
    assert canceled in person.asked[-1]
    assert "Cancel this job in project 'confirmed'?" in person.asked[-1]
    person.answer = "decline"
    refused = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": kept})
    assert refused.is_error
    assert refused.content[0].text.startswith("declined: ")
    assert "Nothing was changed." in refused.content[0].text
    assert kept in person.asked[-1]
    assert status(home, kept) in ("submitted", "working")
    assert audit_of(home, canceled) == [(principal, "accepted", "ok")]
    assert audit_of(home, kept) == [(principal, "declined", "declined")]
    stop(home, kept)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def servers(module_http_servers: Callable[..., HttpServer]) -> dict[str, HttpServer]:
    """HTTP with sessions, and stateless, both asking; with named tokens."""
    return {
        "sessions": module_http_servers(*ASK, CANCEL_JOB_MCP_HTTP_TOKENS=TOKENS),
        "stateless": module_http_servers(*ASK, "--stateless", CANCEL_JOB_MCP_HTTP_TOKENS=TOKENS),
    }


def test_the_policy_matches_a_reference_with_or_without_its_backend_prefix() -> None:
    policy = ConfirmPolicy("ask", ("prod-*",))
    assert policy.applies_to("prod-web")
    assert policy.applies_to("vf:prod-web"), "a NAME: prefix must not escape the rule"
    assert not policy.applies_to("dev-web")
    assert not ConfirmPolicy("never", ("*",)).applies_to("prod-web")


def test_the_confirm_table_is_checked_and_the_flags_win(tmp_path: Path) -> None:
    good = parse_config('[confirm]\ncancel = "ask"\nprojects = ["prod-*"]\n', tmp_path / "c.toml", tmp_path)
    assert good.confirm == ConfirmPolicy("ask", ("prod-*",), "deny")
    assert parse_config("", tmp_path / "c.toml", tmp_path).confirm == ConfirmPolicy()
    with pytest.raises(ConfigError) as bad:
        parse_config('[confirm]\ncancel = "maybe"\nfallback = true\nask = 1\n', tmp_path / "c.toml", tmp_path)
    lines = str(bad.value).splitlines()
    assert any('[confirm]: cancel must be "never" or "ask" (got \'maybe\')' in line for line in lines)
    assert any('[confirm]: fallback must be "deny" or "allow" (got True)' in line for line in lines)
    assert any(
        "[confirm]: unknown key 'ask'; [confirm] takes: cancel, projects, fallback" in line for line in lines
    )
    home = tmp_path / "home"
    (home / "config.toml").parent.mkdir()
    (home / "config.toml").write_text('[confirm]\ncancel = "ask"\nfallback = "allow"\n')
    refused = run_cli(home, "serve", "--confirm-project", "a b", check=False)
    assert refused.returncode == 2
    assert "--confirm-project: must be a project reference or glob pattern" in refused.stderr


@pytest.mark.slow  # a server per era
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_python_client_over_stdio(home: Path, mode: str) -> None:
    person = Person()
    async with client(stdio_server(home, *SERVE_ASKING), mode, elicitation_callback=person) as session:
        assert session.protocol_version == ERAS[mode]
        await accept_then_decline(session, person, home, _user())


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("kind", ["sessions", "stateless"])
async def test_python_client_over_http(servers: dict[str, HttpServer], kind: str, mode: str) -> None:
    server = servers[kind]
    person = Person()
    http, connection = http_client(server, mode, ALICE, elicitation_callback=person)
    async with http, connection as session:
        assert session.protocol_version == ERAS[mode]
        if (kind, mode) != ("stateless", "legacy"):
            await accept_then_decline(session, person, server.home, "alice")
            return
        # 2025-11-25 over stateless HTTP: no way back to the client, so nobody can be asked.
        job = sleeper(server.home)
        refused = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": job})
    assert refused.content[0].text.startswith("declined: Canceling job ")
    assert "this client cannot ask for one" in refused.content[0].text
    assert person.asked == []
    assert audit_of(server.home, job) == [("alice", "fallback_deny", "declined")]
    stop(server.home, job)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("fallback", "allowed"), [("deny", False), ("allow", True)])
async def test_a_client_without_elicitation_gets_the_fallback(
    home: Path, fallback: str, allowed: bool
) -> None:
    job = sleeper(home)
    server = stdio_server(home, *SERVE_ASKING, "--confirm-fallback", fallback)
    async with client(server, "legacy") as session:
        result = await session.call_tool("cancel_job", {"project_reference": PROJECT, "job_id": job})
    text = result.content[0].text
    if allowed:
        assert not result.is_error, text
        assert result.structured_content["status"] == "canceled"
        assert audit_of(home, job) == [(_user(), "fallback_allow", "ok")]
        return
    assert result.is_error
    assert text.startswith("declined: Canceling job ")
    assert "Nothing was changed." in text
    assert 'fallback = "allow"' in text
    assert "--confirm-fallback allow" in text
    assert status(home, job) in ("submitted", "working")
    assert audit_of(home, job) == [(_user(), "fallback_deny", "declined")]
    stop(home, job)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_forged_moved_or_replayed_confirmation_is_refused(servers: dict[str, HttpServer]) -> None:
    server = servers["stateless"]
    home = server.home
    job, other = sleeper(home), sleeper(home)
    arguments = {"project_reference": PROJECT, "job_id": job}
    yes: dict[str, Any] = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}
    http, connection = http_client(server, "auto", ALICE, elicitation_callback=Person())
    async with http, connection as session:
        question = await session.session.call_tool("cancel_job", arguments, allow_input_required=True)
        assert isinstance(question, types.InputRequiredResult)
        assert question.request_state is not None
        sealed = question.request_state
        assert job not in sealed, "the state is encrypted, not only signed"
        forged = [
            sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB"),  # edited
            json.dumps({"nonce": "n", "expires": 9e9, "subject": job}),  # minted by the client
        ]
        for state in forged:
            with pytest.raises(MCPError) as refused:
                await session.session.call_tool(
                    "cancel_job", arguments, input_responses=yes, request_state=state
                )
            assert refused.value.message == REFUSED_STATE
        moved = {"project_reference": PROJECT, "job_id": other}  # a yes for one job, sent for another
        with pytest.raises(MCPError, match=REFUSED_STATE):
            await session.session.call_tool("cancel_job", moved, input_responses=yes, request_state=sealed)
        assert {status(home, job), status(home, other)} <= {"submitted", "working"}
        done = await session.session.call_tool(
            "cancel_job", arguments, input_responses=yes, request_state=sealed
        )
        assert done.structured_content["status"] == "canceled"
        with pytest.raises(MCPError, match=REFUSED_STATE):  # the same yes, again
            await session.session.call_tool(
                "cancel_job", arguments, input_responses=yes, request_state=sealed
            )
        second = await session.session.call_tool("cancel_job", moved, allow_input_required=True)
        assert isinstance(second, types.InputRequiredResult)
    http, connection = http_client(server, "auto", BOB)
    async with http, connection as session:  # alice's yes, presented by bob
        with pytest.raises(MCPError, match=REFUSED_STATE):
            await session.session.call_tool(
                "cancel_job", moved, input_responses=yes, request_state=second.request_state
            )
    assert status(home, other) in ("submitted", "working")
    assert audit_of(home, job) == [("alice", "accepted", "ok")]
    assert audit_of(home, other) == []
    stop(home, other)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_cancel_jobs_asks_once_for_the_whole_set(servers: dict[str, HttpServer], mode: str) -> None:
    server = servers["sessions"]
    project = f"bulk-{mode}"
    jobs = [sleeper(server.home, project) for _ in range(3)]
    person = Person()
    arguments = {"project_reference": project, "max": 10, "dry_run": False}
    http, connection = http_client(server, mode, ALICE, elicitation_callback=person)
    async with http, connection as session:
        person.answer = "cancel"  # dismissed
        refused = await session.call_tool("cancel_jobs", arguments)
        assert refused.content[0].text.startswith("declined: ")
        assert "closed the question without answering" in refused.content[0].text
        assert all(status(server.home, job) in ("submitted", "working") for job in jobs)
        person.answer = "accept"
        done = await session.call_tool("cancel_jobs", arguments)
    assert not done.is_error, done.content[0].text
    assert {entry["job_id"] for entry in done.structured_content["jobs"]} == set(jobs)
    assert len(person.asked) == 2
    assert person.asked[-1].startswith(f"Cancel these 3 jobs in project '{project}'?")
    assert all(job in person.asked[-1] for job in jobs)
    for job in jobs:
        assert audit_of(server.home, job) == [("alice", "dismissed", "declined"), ("alice", "accepted", "ok")]


@pytest.mark.slow  # two worker processes
@pytest.mark.anyio
async def test_the_round_trip_across_http_workers(module_http_servers: Callable[..., HttpServer]) -> None:
    server = module_http_servers(*ASK, "--workers", "2")
    person = Person()
    for _ in range(2):  # a connection each: the kernel may hand each to another worker
        http, connection = http_client(server, "auto", None, elicitation_callback=person)
        async with http, connection as session:
            await accept_then_decline(session, person, server.home, None)


@pytest.fixture
def node_workdir(tmp_path: Path) -> Path:
    if not (NODE.is_file() and TS_SDK_CLIENT.is_file()):
        pytest.skip("the TypeScript SDK client is not installed: run `bash .ci/install-node-tools.sh`")
    workdir = tmp_path / "node"
    workdir.mkdir()
    (workdir / "node_modules").symlink_to(NODE_MODULES)
    shutil.copy(Path(__file__).parent / "node" / "ts_sdk_confirm.mjs", workdir)
    return workdir


def run_ts_client(workdir: Path, mode: str, target: dict[str, Any], calls: list[dict[str, str]]) -> list[Any]:
    request = {"mode": mode, "project": PROJECT, "calls": calls, **target}
    done = subprocess.run(
        [str(NODE), str(workdir / "ts_sdk_confirm.mjs"), json.dumps(request)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("transport", ["stdio", "sessions", "stateless"])
def test_typescript_client_accepts_and_declines(
    servers: dict[str, HttpServer], node_workdir: Path, home: Path, transport: str, mode: str
) -> None:
    if transport == "stdio":
        env = {"CANCEL_JOB_MCP_HOME": str(home), "PATH": os.environ.get("PATH", "")}
        target: dict[str, Any] = {
            "stdio": {"command": sys.executable, "args": ["-m", "cancel_job_mcp", *SERVE_ASKING], "env": env}
        }
        state, principal = home, _user()
    else:
        server = servers[transport]
        target, state, principal = {"url": server.url, "token": BOB}, server.home, "bob"
    canceled, kept = sleeper(state), sleeper(state)
    answers = run_ts_client(
        node_workdir,
        mode,
        target,
        [{"jobId": canceled, "answer": "accept"}, {"jobId": kept, "answer": "decline"}],
    )
    if (transport, mode) == ("stateless", "legacy"):  # no way back to the client: the fallback
        assert [(a["isError"], a["asked"]) for a in answers] == [(True, [])] * 2
        assert all("this client cannot ask for one" in a["text"] for a in answers)
        stop(state, canceled, kept)
        return
    assert {a["protocolVersion"] for a in answers} == {ERAS[mode]}
    yes, no = answers
    assert (yes["isError"], yes["status"], len(yes["asked"])) == (False, "canceled", 1)
    assert canceled in yes["asked"][0]
    assert (no["isError"], len(no["asked"])) == (True, 1)
    assert no["text"].startswith("declined: ")
    assert status(state, kept) in ("submitted", "working")
    assert audit_of(state, canceled) == [(principal, "accepted", "ok")]
    assert audit_of(state, kept) == [(principal, "declined", "declined")]
    stop(state, kept)


def _user() -> str:
    from cancel_job_mcp.caller import os_user

    return os_user()
