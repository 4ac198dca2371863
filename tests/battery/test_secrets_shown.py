"""No secret printed (issue 20): each case is checked with a canary value across what a real server
process shows, its tool results and errors, and its log at debug level.

- a token pasted into `token_env` (DigitalOcean's `dop_v1_...` looks like a variable name; AWS key ids
  and generated secrets are upper-case) is refused without being echoed;
- user information in a URL (`RAY_ADDRESS=http://admin:PASSWORD@host`, a `base_url`) is never shown;
- a bearer token sent as `?access_token=` is not written to the access log.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from cancel_job_mcp.redact import without_url_secrets

from ..battery_support import RawStdioServer, error_code, tool_result
from ..conftest import CLI, env_for, start_http_server
from ..fakes import FakeRay
from ..mcp_wire import MCP_HEADERS, PING

# The adversarial battery: CI runs it in full; the inner loop (`-m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

CANARY = "Cj5Secret0Canary7Value9Q"  # 24 characters; its pieces are searched for too
CANARY_UPPER = "CJ5SECRET0CANARY7VALUE9Q"


def pieces(secret: str) -> list[str]:
    return [secret[index : index + 8] for index in range(len(secret) - 7)]


def assert_unseen(secret: str, *texts: str) -> None:
    for text in texts:
        assert not any(piece.lower() in text.lower() for piece in pieces(secret)), text


@pytest.mark.parametrize(
    "value",
    [f"dop_v1_{CANARY.lower()}", f"AKIA{CANARY_UPPER[:16]}", CANARY_UPPER, f"sk-{CANARY}"],
    ids=["digitalocean", "aws-key-id", "upper-case-secret", "lower-case-secret"],
)
@pytest.mark.parametrize("command", [["serve"], ["show", "do:app", "job-1"]], ids=["serve", "show"])
def test_a_token_pasted_into_token_env_is_refused_unechoed(
    home: Path, tmp_path: Path, value: str, command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[backends.do]\nkind = "digitalocean"\ntoken_env = "{value}"\n')
    done = subprocess.run(
        [*CLI, "--log-level", "debug", "--config", str(config), *command],
        env=env_for(home),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2
    assert "token_env must name the environment variable that holds the token" in done.stderr
    assert_unseen(value.split("_")[-1] if "_" in value else value, done.stdout, done.stderr)


@pytest.mark.parametrize("kind", ["veryfront", "slurm", "ray"])
def test_a_base_url_with_a_password_is_refused_unechoed(home: Path, tmp_path: Path, kind: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.b]\nkind = "{kind}"\nbase_url = "https://admin:{CANARY}@example.com"\ntoken_env = "T"\n'
    )
    done = subprocess.run(
        [*CLI, "--log-level", "debug", "--config", str(config), "show", "b:p", "job-1"],
        env=env_for(home, T="token"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "base_url must be an http:// or https:// URL with no user:password@" in done.stderr
    assert_unseen(CANARY, done.stdout, done.stderr)


def test_a_password_in_ray_address_is_shown_nowhere(home: Path, tmp_path: Path) -> None:
    with FakeRay("unused-token") as fake:
        job_id = fake.add_job()
        address = f"http://admin:{CANARY}@127.0.0.1:{fake.port}"
        server = RawStdioServer(
            home, "--log-level", "debug", stderr_path=tmp_path / "stderr.txt", env={"RAY_ADDRESS": address}
        )
        try:
            server.initialize()
            texts = []
            for tool, arguments in (
                ("get_job", {"project_reference": "ray:cluster", "job_id": job_id}),
                ("list_jobs", {"project_reference": "ray:cluster"}),
                ("cancel_job", {"project_reference": "ray:cluster", "job_id": job_id}),
            ):
                result = tool_result(server.call_tool(tool, arguments))
                assert error_code(result) == "backend_misconfigured"
                texts.append(result["content"][0]["text"])
            assert "RAY_ADDRESS holds a user name or password" in texts[0]
        finally:
            stderr = server.close()
        assert not fake.requests, "nothing was sent to the cluster"
    assert "DEBUG" in stderr
    assert_unseen(CANARY, *texts, stderr)


def test_a_token_in_the_query_string_is_not_written_to_the_access_log(home: Path) -> None:
    token = f"{CANARY}-http-token"
    server = start_http_server(home, "--log-level", "debug", CANCEL_JOB_MCP_HTTP_TOKENS=token)
    try:
        for query in (f"access_token={token}", f"x=1&token={token}&api_key={token}"):
            answer = httpx.post(f"{server.url}?{query}", json=PING, headers=MCP_HEADERS, timeout=30)
            assert answer.status_code == 401  # a token in the URL is not accepted either
            authorized = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
            answer = httpx.post(f"{server.url}?{query}", json=PING, headers=authorized, timeout=30)
            assert answer.status_code in (200, 400)
    finally:
        server.process.terminate()
        _, stderr = server.process.communicate(timeout=30)
    assert "POST /mcp?access_token=[redacted]" in stderr
    assert_unseen(CANARY, stderr)


def test_url_secrets_are_removed_from_any_text() -> None:
    text = (
        f"see http://admin:{CANARY}@h:1/x and https://{CANARY}@h/?access_token={CANARY}&page=2"
        f" or /mcp?TOKEN={CANARY};key={CANARY}#f"
    )
    cleaned = without_url_secrets(text)
    assert_unseen(CANARY, cleaned)
    assert "http://h:1/x" in cleaned
    assert "page=2" in cleaned
