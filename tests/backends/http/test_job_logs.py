"""get_job_logs against fake providers on 127.0.0.1, through a real MCP client over stdio: DigitalOcean's
logs endpoint and the log URLs it hands out (a huge one and a never-ending one stay within the backend's
bounds, and none gets our token), and the providers that document no logs (not_supported, saying what
they offer instead)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from ...conftest import client, stdio_server
from ...fakes import CANARY_TOKEN, CASES

pytestmark = pytest.mark.xdist_group(__name__)

DO = CASES["digitalocean"]
TOTAL_TIMEOUT = 3  # the backend's bound on a whole answer: the never-ending log URL is cut there
MAX_BYTES = 1_000_000  # max_response_bytes: the huge log URL is cut there


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Rig:
    session: Any
    fakes: dict[str, Any]


def table(kind: str, url: str) -> str:
    case = CASES[kind]
    return (
        f'[backends.{kind}]\nkind = "{kind}"\nbase_url = "{url}"\ntoken_env = "LOGS_{kind.upper()}_SECRET"\n'
        f'projects = ["{case.pattern}"]\nconnect_timeout = 2\nread_timeout = 1\nmax_retries = 0\n'
        f"total_timeout = {TOTAL_TIMEOUT}\nmax_response_bytes = {MAX_BYTES}\n"
    )


@pytest.fixture(scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    home = tmp_path_factory.mktemp("home")
    async with AsyncExitStack() as stack:
        fakes = {kind: stack.enter_context(CASES[kind].fake(CANARY_TOKEN)) for kind in CASES}
        config = home / "config.toml"
        config.write_text("\n".join(table(kind, fake.url) for kind, fake in fakes.items()))
        tokens = {f"LOGS_{kind.upper()}_SECRET": CANARY_TOKEN for kind in CASES}
        session = await stack.enter_async_context(
            client(stdio_server(home, "--config", str(config), **tokens))
        )
        yield Rig(session, fakes)
    for fake in fakes.values():
        for request in fake.requests:
            if request.path.startswith("/files/"):
                assert "authorization" not in request.headers, "a log URL got our token"


async def logs(rig: Rig, job_id: str, **options: Any) -> Any:
    arguments = {"project_reference": f"digitalocean:{DO.project}", "job_id": job_id, **options}
    return await rig.session.call_tool("get_job_logs", arguments)


def answer(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    value: dict[str, Any] = result.structured_content
    assert CANARY_TOKEN not in json.dumps(value)
    return value


@pytest.mark.anyio
async def test_digitalocean_logs_follow_the_urls_it_hands_out(rig: Rig) -> None:
    fake = rig.fakes["digitalocean"]
    job_id = DO.add_active(fake)
    fake.files["part1"] = b"".join(b"old %d\n" % i for i in range(1000))
    fake.files["part2"] = b"new 1\nnew 2\n" + f"token {CANARY_TOKEN}\n".encode() + b"\xffbad\n"
    fake.logs_of[job_id] = ["part1", "part2"]
    got = answer(await logs(rig, job_id, tail_lines=4))
    assert got["lines"] == ["new 1", "new 2", "token [redacted]", "\ufffdbad"]
    assert got["truncated"] is False
    assert got["log_bytes"] == len(fake.files["part1"]) + len(fake.files["part2"])
    assert "2 log URL(s)" in got["source"]
    filtered = answer(await logs(rig, job_id, contains="OLD 99", tail_lines=5000))
    assert filtered["lines"] == ["old 99", *(f"old {990 + i}" for i in range(10))]


@pytest.mark.anyio
async def test_a_huge_log_url_is_read_only_up_to_the_size_bound(rig: Rig) -> None:
    fake = rig.fakes["digitalocean"]
    job_id = DO.add_active(fake)
    fake.logs_of[job_id] = ["huge"]
    got = answer(await logs(rig, job_id, max_bytes=1000))
    assert got["truncated"] is True
    assert got["log_bytes"] is None
    assert got["lines"]
    assert all(set(line) <= {"a", '"'} for line in got["lines"])


@pytest.mark.anyio
async def test_a_log_url_that_never_ends_is_cut_at_the_time_bound(rig: Rig) -> None:
    fake = rig.fakes["digitalocean"]
    job_id = DO.add_active(fake)
    fake.files["start"] = b"started\n"
    fake.logs_of[job_id] = ["start"]
    fake.live_file[job_id] = "endless"
    got = answer(await logs(rig, job_id))
    assert got["truncated"] is True
    assert got["lines"][0] == "started"


@pytest.mark.anyio
async def test_logs_of_another_apps_invocation_are_not_found(rig: Rig) -> None:
    fake = rig.fakes["digitalocean"]
    foreign = DO.add(fake, str(DO.other_project), "active", None)
    result = await logs(rig, foreign)
    assert result.is_error
    assert result.content[0].text.startswith("not_found: ")
    assert not [r for r in fake.requests if r.path.endswith("/logs") and foreign in r.path]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "offers"),
    [
        ("veryfront", "failed_reason carries Veryfront's failure detail"),
        ("ionworks", "failed_reason carries Ionworks' error and error code"),
        ("talonic", "its results endpoint (GET /v1/jobs/{id}/results)"),
    ],
)
async def test_providers_without_logs_say_what_they_offer_instead(rig: Rig, kind: str, offers: str) -> None:
    case = CASES[kind]
    job_id = case.add_active(rig.fakes[kind])
    result = await rig.session.call_tool(
        "get_job_logs", {"project_reference": f"{kind}:{case.project}", "job_id": job_id}
    )
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("not_supported: "), text
    assert offers in text
