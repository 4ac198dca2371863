"""Configuration and routing: the TOML file, env-only setup, and how a reference finds its backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.config import ConfigError, load_config, parse_config
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.routing import Router

from .conftest import run_cli

HOME = Path("/tmp/home")
ENV = {"VERYFRONT_API_TOKEN": "vf-token", "TALONIC_API_KEY": "tl-token"}
TWO_PROVIDERS = """
[backends.vf]
kind = "veryfront"
projects = ["web-*", "docs"]

[backends.talonic]
projects = ["web-special", "invoices"]
token_env = "TALONIC_API_KEY"
"""


class FakeBackend:
    def __init__(self, settings: BackendSettings) -> None:
        self.name = settings.name
        self.kind = settings.kind


def router_for(text: str, environ: dict[str, str] = ENV) -> Router:
    return Router(parse_config(text, Path("cfg.toml"), HOME, environ).backends, factory=FakeBackend)


def route(router: Router, reference: str) -> tuple[str, str]:
    found = router.route(reference)
    return found.backend.name, found.project


def test_an_explicit_backend_name_wins() -> None:
    router = router_for(TWO_PROVIDERS)
    assert route(router, "talonic:web-1") == ("talonic", "web-1")
    assert route(router, "local:docs") == ("local", "docs")


def test_glob_patterns_in_file_order_then_local() -> None:
    router = router_for(TWO_PROVIDERS)
    assert route(router, "web-special") == ("vf", "web-special"), "the first matching table wins"
    assert route(router, "docs") == ("vf", "docs")
    assert route(router, "invoices") == ("talonic", "invoices")
    assert route(router, "anything-else") == ("local", "anything-else")


def test_an_unknown_project_names_the_backends_and_patterns() -> None:
    router = router_for(TWO_PROVIDERS + "\n[backends.local]\nenabled = false\n")
    with pytest.raises(ToolError) as raised:
        router.route("nobody-serves-this")
    assert raised.value.code == ErrorCode.UNKNOWN_PROJECT
    assert "vf (web-*, docs)" in raised.value.message
    assert "talonic (web-special, invoices)" in raised.value.message
    with pytest.raises(ToolError, match="There is no backend named 'local'"):
        router.route("local:x")


def test_with_no_file_a_standard_env_var_enables_its_provider(tmp_path: Path) -> None:
    config = load_config(
        None, tmp_path, {"DIGITALOCEAN_TOKEN": "dop_v1_x", "RAY_ADDRESS": "http://127.0.0.1:8265"}
    )
    router = Router(config.backends, factory=FakeBackend)
    assert route(router, "digitalocean:app-1") == ("digitalocean", "app-1")
    assert route(router, "ray:cluster") == ("ray", "cluster")
    assert route(router, "my-project") == ("local", "my-project")
    with pytest.raises(ToolError, match="no backend named 'talonic'"):
        router.route("talonic:acct")


def test_the_file_is_found_through_the_environment_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text('[backends.local]\nprojects = ["only-this"]\n')
    monkeypatch.delenv("CANCEL_JOB_MCP_CONFIG", raising=False)
    assert load_config(None, tmp_path, {}).backends[0].projects == ("only-this",)
    other = tmp_path / "other.toml"
    other.write_text("read_only = true\n")
    monkeypatch.setenv("CANCEL_JOB_MCP_CONFIG", str(other))
    assert load_config(None, tmp_path, {}).read_only is True


BAD_CONFIGS = {
    "bad TOML": ("[backends.x\n", "not valid TOML"),
    "unknown kind": (
        '[backends.x]\nkind = "kubernetes"\n',
        "[backends.x]: set kind to one of local, veryfront",
    ),
    "missing token": (
        '[backends.vf]\nkind = "veryfront"\n',
        "the environment variable VERYFRONT_API_TOKEN is not set",
    ),
    "secret in the file": (
        '[backends.vf]\nkind = "veryfront"\ntoken_env = "vf_abc def"\n',
        "must name an environment",
    ),
    "bad pattern": ('[backends.local]\nprojects = ["../*"]\n', "bad project pattern '../*'"),
    "unknown key": ('[backends.local]\nproject = ["a"]\n', "unknown key 'project'"),
    "bad timeout": ("[backends.local]\nread_timeout = -1\n", "read_timeout must be a number of seconds"),
    "bad url": ('[backends.r]\nkind = "ray"\nbase_url = "ftp://x"\n', "base_url must be an http"),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_a_bad_configuration_is_refused_with_the_file_table_and_fix(name: str) -> None:
    text, expected = BAD_CONFIGS[name]
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("/etc/cjm.toml"), HOME, {})
    assert str(raised.value).startswith("/etc/cjm.toml: ")
    assert expected in str(raised.value)


def test_a_bad_configuration_stops_the_server_at_start(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[backends.vf]\nkind = "veryfront"\n')
    done = run_cli(home, "--config", str(config), "serve", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"configuration error: {config}: [backends.vf]: the environment variable" in done.stderr


def test_a_setting_only_the_backend_can_check_is_a_clear_tool_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    config = load_config(None, tmp_path, {"RAY_ADDRESS": "ray://head:10001"})
    router = Router(config.backends)
    with pytest.raises(ToolError) as raised:
        router.route("ray:cluster")
    assert raised.value.code == ErrorCode.BACKEND_MISCONFIGURED
    assert raised.value.message.startswith("Backend 'ray' cannot start: ")
