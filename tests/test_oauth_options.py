"""The OAuth settings, from the command line and from the file's [http.oauth], checked before
anything listens."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import CLI, env_for


def serve_http(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "serve", "--transport", "http", "--port", "0", *args],
        env=env_for(home, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--oauth-issuer", "https://auth.example.com"], "--oauth-issuer and --oauth-resource go together"),
        (
            ["--oauth-issuer", "http://auth.example.com", "--oauth-resource", "https://mcp.example.com/mcp"],
            "the OAuth issuer must use https:// (plain http:// only on loopback)",
        ),
        (
            [
                "--oauth-issuer",
                "https://auth.example.com",
                "--oauth-resource",
                "https://mcp.example.com/mcp#x",
            ],
            "the OAuth resource must be an https:// URL with no query or fragment",
        ),
        (
            [
                "--oauth-issuer",
                "https://auth.example.com",
                "--oauth-resource",
                "https://mcp.example.com/mcp",
                "--oauth-introspection-endpoint",
                "https://auth.example.com/introspect",
            ],
            "set CANCEL_JOB_MCP_OAUTH_CLIENT_ID and CANCEL_JOB_MCP_OAUTH_CLIENT_SECRET",
        ),
    ],
)
def test_oauth_options_that_do_not_fit_are_refused_before_serving(
    home: Path, args: list[str], problem: str
) -> None:
    done = serve_http(home, *args)
    assert done.returncode == 2
    assert problem in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('[http.oauth]\nissuer = "https://a.example"', "[http.oauth]: resource is required."),
        (
            '[http.oauth]\nissuer = "https://a.example"\nresource = "https://m.example/mcp"\n'
            'client_secret = "x"',
            "[http.oauth]: unknown key 'client_secret'; [http.oauth] takes: issuer, resource,",
        ),
        (
            '[http.oauth]\nissuer = "https://a.example"\nresource = "https://m.example/mcp"\nleeway = 301',
            "[http.oauth]: leeway must be 0-300 seconds.",
        ),
        ('[http.tls]\ncert = "x"', "[http] takes only the table [http.oauth]."),
    ],
)
def test_the_oauth_table_is_checked_with_the_file(home: Path, table: str, problem: str) -> None:
    from cancel_job_mcp.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as raised:
        parse_config(table, home / "config.toml", home)
    assert problem in str(raised.value)
    assert '"x"' not in str(raised.value)
