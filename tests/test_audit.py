"""The audit trail: a row for every cancel attempt, whoever makes it and however, and never a secret."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.audit import AUDIT_FILE
from cancel_job_mcp.config import HTTP_TOKENS_ENV
from cancel_job_mcp.http_values import NamedToken
from cancel_job_mcp.transports import ServeError, load_tokens

from .conftest import client, run_cli, start_http_server, stdio_server, stop_http_server, submit

ALICE = "alice-canary-9f3c1e7a5b2d4c6e8f0a"  # a token: it must never reach the audit trail
PLAIN = "plain-canary-1a2b3c4d5e6f7a8b9c0d"


def audit_rows(home: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run_cli(home, "audit", "--json", *args).stdout)
    return rows


def audit_files(home: Path) -> list[Path]:
    """The audit database and its write-ahead log and shared memory files."""
    return list(home.glob(f"{AUDIT_FILE}*"))


def audit_bytes(home: Path) -> bytes:
    return b"".join(path.read_bytes() for path in audit_files(home))


def token_client(url: str, token: str) -> Any:
    import httpx2

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    return http, client(streamable_http_client(url, http_client=http), "legacy")


@pytest.mark.anyio
async def test_a_stdio_cancel_is_recorded_with_the_os_user_and_the_client(home: Path) -> None:
    job = submit(home, "audited", "sleep", "600")
    async with client(stdio_server(home), "legacy") as session:
        done = await session.call_tool("cancel_job", {"project_reference": "audited", "job_id": job["id"]})
        missing = await session.call_tool("cancel_job", {"project_reference": "audited", "job_id": "nope"})
        unknown = await session.call_tool("cancel_job", {"project_reference": "x:y", "job_id": job["id"]})
        odd = await session.call_tool("cancel_job", {"project_reference": "a b", "job_id": "/etc/passwd"})
    assert not done.is_error
    assert missing.is_error
    assert unknown.is_error
    assert odd.is_error
    rows = audit_rows(home)
    assert [row["outcome"] for row in rows] == ["ok", "not_found", "unknown_project", "invalid_argument"]
    first = rows[0]
    assert first["tool"] == "cancel_job"
    assert first["transport"] == "stdio"
    assert first["principal"] == getpass.getuser()
    assert first["client_name"] == "mcp"  # the Python SDK's client names itself so in its handshake
    assert first["client_version"]
    assert (first["project"], first["job_id"], first["backend"]) == ("audited", job["id"], "local")
    assert (first["confirmation"], first["status"]) == ("not_required", "canceled")
    assert (rows[2]["project"], rows[2]["backend"]) == ("x:y", None)
    # A value that breaks the identifier rules is not kept: it could be anything.
    assert (rows[3]["project"], rows[3]["job_id"]) == (None, None)
    modes = {path.name: stat.S_IMODE(os.stat(path).st_mode) for path in audit_files(home)}
    assert modes == {name: 0o600 for name in modes}
    assert AUDIT_FILE in modes


@pytest.mark.slow
def test_a_cli_cancel_is_recorded_and_the_audit_command_filters(home: Path) -> None:
    first = submit(home, "cli-a", "sleep", "600")
    second = submit(home, "cli-b", "sleep", "600")
    run_cli(home, "cancel", "cli-a", first["id"])
    run_cli(home, "cancel", "local:cli-b", second["id"])
    rows = audit_rows(home)
    assert [(row["transport"], row["tool"], row["principal"]) for row in rows] == [
        ("cli", "cancel", getpass.getuser())
    ] * 2
    assert [row["job_id"] for row in audit_rows(home, "--project", "cli-b")] == [second["id"]]
    assert [row["job_id"] for row in audit_rows(home, "--project", "local:cli-b")] == [second["id"]]
    assert audit_rows(home, "--project", "cli-c") == []
    assert len(audit_rows(home, "--since", "1")) == 2
    table = run_cli(home, "audit").stdout.splitlines()
    assert table[0].split()[:3] == ["at", "transport", "principal"]
    assert len(table) == 3
    assert first["id"] in table[1]
    bad = run_cli(home, "audit", "--since", "-1", check=False)
    assert bad.returncode == 2
    assert "--since: must be a number of days from 0 to 36500" in bad.stderr


def test_prune_removes_old_audit_rows_only(home: Path) -> None:
    job = submit(home, "pruned", "sleep", "600")
    run_cli(home, "cancel", "pruned", job["id"])
    with sqlite3.connect(home / AUDIT_FILE) as conn:
        conn.execute(
            "INSERT INTO attempts (at, tool, transport, confirmation, outcome)"
            " VALUES ('2020-01-01T00:00:00.000Z', 'cancel_job', 'stdio', 'not_required', 'ok')"
        )
    assert len(audit_rows(home)) == 2
    done = run_cli(home, "prune", "--older-than", "30")
    assert "Removed 1 audit row(s) recorded more than 30 day(s) ago." in done.stdout
    assert [row["job_id"] for row in audit_rows(home)] == [job["id"]]


def test_no_cancel_without_its_audit_row(home: Path) -> None:
    job = submit(home, "unaudited", "sleep", "600")
    (home / AUDIT_FILE).mkdir()  # the audit database cannot be opened
    refused = run_cli(home, "cancel", "unaudited", job["id"], check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("backend_misconfigured: The audit trail ")
    assert "nothing was canceled" in refused.stderr
    shown = json.loads(run_cli(home, "show", "unaudited", job["id"]).stdout)
    assert shown["status"] in ("submitted", "working")
    (home / AUDIT_FILE).rmdir()
    run_cli(home, "cancel", "unaudited", job["id"])


@pytest.mark.slow  # an HTTP server of its own
@pytest.mark.anyio
async def test_http_rows_name_the_token_never_hold_it(home: Path) -> None:
    jobs = [submit(home, "web", "sleep", "600") for _ in range(2)]
    server = start_http_server(home, CANCEL_JOB_MCP_HTTP_TOKENS=f"alice:{ALICE},{PLAIN}")
    try:
        for token, job in zip((ALICE, PLAIN), jobs, strict=True):
            http, connection = token_client(server.url, token)
            async with http, connection as session:
                result = await session.call_tool(
                    "cancel_job", {"project_reference": "web", "job_id": job["id"]}
                )
                assert not result.is_error, result.content[0].text
    finally:
        assert stop_http_server(server) == ""
    rows = audit_rows(home)
    assert [(row["transport"], row["principal"], row["outcome"]) for row in rows] == [
        ("http", "alice", "ok"),
        ("http", "token-2", "ok"),
    ]
    printed = run_cli(home, "audit").stdout + run_cli(home, "audit", "--json").stdout
    for canary in (ALICE, PLAIN):
        assert canary not in printed
        assert canary.encode() not in audit_bytes(home)
        assert canary[:8].encode() not in audit_bytes(home)


def test_tokens_take_names_and_plain_ones_keep_working() -> None:
    environ = {HTTP_TOKENS_ENV: f"alice:{ALICE}, {PLAIN} ,ci.bot-2:{PLAIN}x"}
    assert load_tokens(None, environ) == [
        NamedToken("alice", ALICE),
        NamedToken("token-2", PLAIN),
        NamedToken("ci.bot-2", PLAIN + "x"),
    ]
    with pytest.raises(ServeError, match=r"given twice: alice$"):
        load_tokens(None, {HTTP_TOKENS_ENV: f"alice:{ALICE},alice:{PLAIN}"})
    with pytest.raises(ServeError, match="at least 16 characters") as short:
        load_tokens(None, {HTTP_TOKENS_ENV: "bob:short-secret"})
    assert "short-secret" not in str(short.value)
