"""The command line a person types: version, help, option checks at start, submit's refusals before
anything is recorded, and a `jobs` table that survives odd names and a closed pipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cancel_job_mcp import __version__
from cancel_job_mcp.cli import main

from .conftest import CLI, env_for, run_cli, submit


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, "--version") == (0, f"cancel-job-mcp {__version__}\n", "")


def test_top_level_help_says_that_no_command_serves_stdio(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "--help")
    assert status == 0
    assert out.startswith("usage: cancel-job-mcp [OPTIONS] [COMMAND [ARGS...]]")
    assert "With no COMMAND it serves MCP over stdio" in " ".join(out.split())


def test_serve_help_explains_the_transports_and_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "serve", "--help")
    text = " ".join(out.split())
    assert status == 0
    assert out.startswith("usage: cancel-job-mcp serve ")
    assert "stdio: one MCP client on stdin/stdout" in text
    assert "http: Streamable HTTP at http://HOST:PORT/mcp" in text
    for default in (
        "(default: 120)",
        "(default: 64)",
        "(default: 8000)",
        "(default: 1048576)",
        "(default: 1000)",
    ):
        assert default in text


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--port", "70000", "must be an integer from 0 to 65535; got '70000'"),
        ("--port", "-1", "must be an integer from 0 to 65535"),
        ("--max-body-bytes", "0", "must be an integer, 1024 or more; got '0'"),
        ("--call-timeout", "-1", "must be a number of seconds above 0; got '-1'"),
        ("--call-timeout", "0", "must be a number of seconds above 0; got '0'"),
        ("--call-timeout", "nan", "must be a number of seconds above 0; got 'nan'"),
        ("--call-timeout", "inf", "must be a number of seconds above 0"),
        ("--max-concurrent-calls", "0", "must be an integer, 1 or more; got '0'"),
        ("--workers", "0", "must be an integer from 1 to 64"),
        ("--max-sessions", "0", "must be an integer, 1 or more"),
        ("--session-idle-timeout", "0", "must be a number of seconds above 0"),
        ("--header-timeout", "-5", "must be a number of seconds above 0"),
        ("--allowed-host", "127.0.0.1:evil.com", "'127.0.0.1:evil.com' is not a host name or address"),
        ("--allowed-origin", "https://a.example/", "'https://a.example/' is not an origin like https://"),
    ],
)
def test_bad_serve_options_are_refused_at_start(
    capsys: pytest.CaptureFixture[str], home: Path, option: str, value: str, rule: str
) -> None:
    status, out, err = run_main(capsys, "--home", str(home), "serve", "--transport", "http", option, value)
    assert status == 2
    assert out == ""
    assert f"argument {option}: {rule}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (("--project", "../etc"), "--project must be a project id or slug"),
        (("--project", ""), "--project must be a project id or slug"),
        (("--project", "my project"), "--project must be a project id or slug"),
        (("--project", "ünïcode"), "--project must be a project id or slug"),
        (("--project", "demo", "--cwd", "/no/such/dir"), "--cwd '/no/such/dir' is not an existing directory"),
        (
            ("--project", "demo", "--timeout", "nan"),
            "argument --timeout: must be a number of seconds, 0 or more",
        ),
        (("--project", "demo", "--retries", "-1"), "argument --retries: must be an integer from 0 to 10000"),
    ],
)
def test_submit_refuses_what_the_tools_could_never_reach(
    capsys: pytest.CaptureFixture[str], home: Path, options: tuple[str, ...], problem: str
) -> None:
    status, out, err = run_main(capsys, "--home", str(home), "submit", *options, "--", "sleep", "1")
    assert status == 2
    assert out == ""
    assert problem in err
    assert not (home / "jobs.sqlite3").exists(), "nothing was recorded"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("no-such-command-xyz", "command not found: 'no-such-command-xyz' (looked on PATH)"),
        ("./missing.sh", "command not found: './missing.sh' (looked in "),
    ],
)
def test_submit_refuses_a_command_that_cannot_be_found(
    capsys: pytest.CaptureFixture[str], home: Path, command: str, problem: str
) -> None:
    status, _, err = run_main(capsys, "--home", str(home), "submit", "--project", "demo", "--", command)
    assert status == 2
    assert problem in err
    assert not (home / "jobs.sqlite3").exists()


@pytest.mark.slow
def test_a_name_with_a_newline_stays_on_its_row(home: Path) -> None:
    submit(home, "demo", "true", options=("--name", "two\nlines\x1b[31m"))
    lines = run_cli(home, "jobs").stdout.splitlines()
    assert len(lines) == 2
    assert "two\\nlines\\x1b[31m" in lines[1]


@pytest.mark.slow
def test_jobs_into_a_closed_pipe_ends_quietly(home: Path) -> None:
    for _ in range(3):
        submit(home, "demo", "true")
    process = subprocess.Popen(
        [*CLI, "jobs"], env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # like `| head` exiting before the table is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
