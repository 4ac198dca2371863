"""Every problem named (issue 20): what used to end in a traceback or `internal_error` now gets a
documented code, or the CLI's usage error, and one sentence saying what to do; through real processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..battery_support import (
    RawStdioServer,
    db_row,
    error_code,
    structured,
    submit_here,
    tool_result,
    veryfront_config,
    wait_for_stop,
)
from ..conftest import CLI, env_for, wait_until
from ..fakes import CANARY_TOKEN, CASES, FakeRay
from ..mcp_wire import INITIALIZE

# The adversarial battery: CI runs it in full; the inner loop (`-m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow


def run(home: Path, *args: str | bytes, **extra: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args], env=env_for(home), capture_output=True, stdin=subprocess.DEVNULL, timeout=60, **extra
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["submit", "--project", "p", "--log-limit", "inf", "--", "true"],
            b"--log-limit: must be a number of MiB",
        ),
        (["submit", "--project", "p", "--log-limit", "1e300", "--", "true"], b"at most 1048576"),
        (["submit", "--project", "p", "--retries", "9" * 20, "--", "true"], b"--retries: must be an integer"),
        (["prune", "--older-than", "1000000"], b"--older-than: must be a number of days from 0 to 36500"),
        (["submit", "--project", "p", "--name", b"caf\xe9", "--", "true"], b"--name is not UTF-8 text"),
        (["submit", "--project", "p", "--", "echo", b"caf\xe9"], b"argument 1 of the command is not UTF-8"),
        (["serve", "--port", "18101"], b"options for --transport http given without it (--port)"),
        (["serve", "--stateless", "--max-sessions", "5"], b"(--stateless, --max-sessions)"),
    ],
    ids=["log-limit-inf", "log-limit-1e300", "retries-huge", "prune-huge", "name", "argument", "port", "two"],
)
def test_a_bad_command_line_is_named_without_a_traceback(home: Path, args: list[Any], named: bytes) -> None:
    done = run(home, *args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert b"Traceback" not in done.stderr
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"a = " + b"[" * 100_000, b"nest too deeply"),
        (b'read_only = "caf\xe9"\n', b"not UTF-8 text (byte 16)"),
    ],
    ids=["nested-100000-deep", "not-utf8"],
)
def test_a_config_file_that_cannot_be_read_is_named(
    home: Path, tmp_path: Path, content: bytes, named: bytes
) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    for command in (["jobs"], ["serve"]):
        done = run(home, "--config", str(config), *command)
        assert done.returncode == 2
        assert b"configuration error: " + str(config).encode() in done.stderr
        assert named in done.stderr
        assert b"Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("kind", "variable"),
    [("digitalocean", "DIGITALOCEAN_TOKEN"), ("veryfront", "VERYFRONT_API_TOKEN"), ("ray", "RAY_ADDRESS")],
)
def test_a_kind_that_is_off_says_which_variable_turns_it_on(home: Path, kind: str, variable: str) -> None:
    environment = {name: value for name, value in env_for(home).items() if name != variable}
    done = subprocess.run(
        [*CLI, "show", f"{kind}:app", "job-1"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"unknown_project: There is no backend named '{kind}'.")
    assert f"${variable} is set" in done.stderr


@pytest.fixture
def cursor(home: Path, tmp_path: Path) -> str:
    """A real next_cursor of the local backend, from a server that has since exited."""
    for _ in range(2):
        wait_for_stop(home, submit_here(home, "p", "true")["id"])
    server = RawStdioServer(home, stderr_path=tmp_path / "first.txt")
    try:
        server.initialize()
        page = structured(tool_result(server.call_tool("list_jobs", {"project_reference": "p", "limit": 1})))
    finally:
        server.close()
    next_cursor: str = page["next_cursor"]
    return next_cursor


@pytest.mark.parametrize("damage", ["directory", "dangling-symlink", "empty", "short"])
def test_an_unusable_cursor_key_is_named(home: Path, tmp_path: Path, cursor: str, damage: str) -> None:
    key = home / "cursor.key"
    key.unlink()
    if damage == "directory":
        key.mkdir()
    elif damage == "dangling-symlink":
        key.symlink_to(tmp_path / "gone")
    else:
        key.write_bytes(b"" if damage == "empty" else b"k" * 16)
    server = RawStdioServer(home, stderr_path=tmp_path / "stderr.txt")
    try:
        server.initialize()
        for arguments in ({"cursor": cursor}, {"limit": 1}):  # decoding one, and signing the next
            result = tool_result(server.call_tool("list_jobs", {"project_reference": "p", **arguments}))
            assert error_code(result) == "backend_misconfigured", result
            text = result["content"][0]["text"]
            assert f"The list cursor key {key} is unusable" in text
            assert "Remove it" in text
    finally:
        stderr = server.close()
    assert "Traceback" not in stderr


def test_a_state_directory_that_is_a_file_is_named(home: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    server = RawStdioServer(
        home, stderr_path=tmp_path / "stderr.txt", env={"CANCEL_JOB_MCP_HOME": str(a_file)}
    )
    try:
        server.initialize()
        job = {"project_reference": "p", "job_id": "job_x"}
        for tool, arguments in (
            ("get_job", job),
            ("list_jobs", {"project_reference": "p"}),
            ("cancel_job", job),
        ):
            result = tool_result(server.call_tool(tool, arguments))
            assert error_code(result) == "backend_misconfigured", result
            assert str(a_file) in result["content"][0]["text"]
    finally:
        server.close()


def test_a_row_whose_config_is_not_json_is_still_read_and_canceled(home: Path, tmp_path: Path) -> None:
    job = submit_here(home, "p", "sleep", "600")
    # Once it runs: a supervisor that reads the spoiled config before it starts the command fails the job.
    wait_until(lambda: db_row(home, job["id"])["status"] == "working")
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        conn.execute("UPDATE jobs SET config = '{not json' WHERE id = ?", (job["id"],))
    server = RawStdioServer(home, stderr_path=tmp_path / "stderr.txt")
    try:
        server.initialize()
        arguments = {"project_reference": "p", "job_id": job["id"]}
        assert structured(tool_result(server.call_tool("get_job", arguments)))["config"] == {
            "_unreadable": "{not json"
        }
        page = structured(tool_result(server.call_tool("list_jobs", {"project_reference": "p"})))
        assert [listed["id"] for listed in page["jobs"]] == [job["id"]]
        assert structured(tool_result(server.call_tool("cancel_job", arguments)))["status"] == "canceled"
    finally:
        server.close()


def test_a_ray_answer_about_another_job_is_refused(home: Path, tmp_path: Path) -> None:
    with FakeRay(CANARY_TOKEN) as fake:
        asked, other = fake.add_job(), fake.add_job()
        fake.jobs[asked] = dict(fake.jobs[other])  # the answer for `asked` describes `other`
        config = tmp_path / "config.toml"
        config.write_text(f'[backends.ray]\nbase_url = "{fake.url}"\ntoken_env = "RAY_TOKEN"\n')
        server = RawStdioServer(
            home,
            "--config",
            str(config),
            stderr_path=tmp_path / "stderr.txt",
            env={"RAY_TOKEN": CANARY_TOKEN},
        )
        try:
            server.initialize()
            arguments = {"project_reference": "ray:cluster", "job_id": asked}
            for tool in ("get_job", "cancel_job"):
                result = tool_result(server.call_tool(tool, arguments))
                assert error_code(result) == "upstream_error", result
                assert (
                    f"asked for job {asked!r}, it answered with job {other!r}" in result["content"][0]["text"]
                )
        finally:
            server.close()


@pytest.mark.parametrize("backend", ["local", "veryfront"])
def test_null_optional_arguments_and_an_integral_limit_are_one_rule_everywhere(
    home: Path, tmp_path: Path, backend: str
) -> None:
    case = CASES["veryfront"]
    fake = case.fake(CANARY_TOKEN)
    config = veryfront_config(tmp_path / "config.toml", fake)
    if backend == "local":
        project = "local:p"
        for _ in range(7):
            wait_for_stop(home, submit_here(home, "p", "true")["id"])
    else:
        project = case.project
        for _ in range(7):
            case.add_finished(fake)
    server = RawStdioServer(
        home, "--config", str(config), stderr_path=tmp_path / "stderr.txt", env={"VF_TOKEN": CANARY_TOKEN}
    )
    try:
        server.initialize()
        nulls = {"project_reference": project, "status": None, "limit": None, "cursor": None}
        assert len(structured(tool_result(server.call_tool("list_jobs", nulls)))["jobs"]) == 7
        five = {"project_reference": project, "limit": 5.0}
        assert len(structured(tool_result(server.call_tool("list_jobs", five)))["jobs"]) == 5
        for refused in ({"limit": 5.5}, {"limit": 0}, {"limit": True}):
            result = tool_result(server.call_tool("list_jobs", {"project_reference": project, **refused}))
            assert error_code(result) == "invalid_argument", (refused, result)
            assert result["content"][0]["text"].startswith("invalid_argument: limit: ")
        # cancel_job's schema is the documented contract: its arguments are required, null is refused.
        result = tool_result(server.call_tool("cancel_job", {"project_reference": project, "job_id": None}))
        assert error_code(result) == "invalid_argument"
    finally:
        server.close()
        fake.close()


def read_until(fd: int, wanted: bytes, timeout: float = 60) -> bytes:
    """What the pseudo-terminal printed, up to and including `wanted`."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"never printed {wanted!r}: {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child exited: EIO
                break
            seen += chunk
    return seen


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=5).status_code > 0
    except httpx.HTTPError:
        return False


def rest_and_status(fd: int, pid: int) -> tuple[bytes, int]:
    rest = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        rest += chunk
    _, status = os.waitpid(pid, 0)
    return rest, os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("transport", ["stdio", "http", "http-workers"])
def test_ctrl_c_through_a_terminal_stops_the_server_at_once_and_quietly(home: Path, transport: str) -> None:
    args = {
        "stdio": ["serve"],
        "http": ["serve", "--transport", "http", "--port", "0"],
        "http-workers": ["serve", "--transport", "http", "--port", "0", "--workers", "2"],
    }[transport]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the server, on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "cancel_job_mcp", *args], env_for(home))
    status: int | None = None
    try:
        if transport == "stdio":
            os.write(fd, json.dumps(INITIALIZE).encode() + b"\n")
            read_until(fd, b'"serverInfo"')
        else:
            announced = read_until(fd, b"/mcp ")
            port = int(announced.rsplit(b"/mcp ", 1)[0].rsplit(b":", 1)[1])
            # Every worker up (each answers on its own socket): a request is answered several times over.
            for _ in range(8):
                wait_until(lambda: answers(port), timeout=60)
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the server
        rest, status = rest_and_status(fd, pid)
    finally:
        if status is None:  # the test failed before the server was reaped
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status == 130, rest
    assert b"Traceback" not in rest
    assert rest.strip() in (b"", b"^C"), rest


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs of our own (mounting needs root: skipped otherwise), unmounted at the end."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_disk_that_fills_under_a_running_server_is_named(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    job = submit_here(home, "p", "sleep", "600")
    server = RawStdioServer(home, stderr_path=tmp_path / "stderr.txt")
    try:
        server.initialize()
        arguments = {"project_reference": "p", "job_id": job["id"]}
        structured(tool_result(server.call_tool("list_jobs", {"project_reference": "p", "limit": 1})))
        filler = small_disk / "filler"
        with filler.open("wb") as fill, contextlib.suppress(OSError):  # ENOSPC: the disk is full
            while True:
                fill.write(b"\0" * 65536)
                fill.flush()
        assert structured(tool_result(server.call_tool("get_job", arguments)))["status"] == "working"
        result = tool_result(server.call_tool("cancel_job", arguments))
        assert error_code(result) in ("backend_misconfigured", "upstream_unavailable"), result
        assert "full" in result["content"][0]["text"]
        filler.unlink()
        assert structured(tool_result(server.call_tool("cancel_job", arguments)))["status"] == "canceled"
    finally:
        stderr = server.close()
    assert "Traceback" not in stderr
    assert "internal_error" not in stderr
