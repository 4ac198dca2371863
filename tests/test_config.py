"""The configuration: the TOML file's tables as models of their kind, env-only setup, and every refusal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cancel_job_mcp.backends import registry
from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.config import Config, ConfigError, load_config, parse_config
from cancel_job_mcp.config_models import table_model

from .conftest import REPO, run_cli

SOURCE = Path("/etc/cjm.toml")
HOME = Path("/tmp/home")
KINDS = "local, veryfront, digitalocean, ionworks, talonic, ray, slurm, temporal"
TOKENS = {"VERYFRONT_API_TOKEN": "vf-token", "TALONIC_API_KEY": "tl-token", "DIGITALOCEAN_TOKEN": "do"}


def parse(text: str, environ: dict[str, str] = TOKENS) -> Config:
    return parse_config(text, SOURCE, HOME, environ)


def backends(text: str, environ: dict[str, str] = TOKENS) -> dict[str, BackendSettings]:
    return {settings.name: settings for settings in parse(text, environ).backends}


def refusal(text: str, environ: dict[str, str] = TOKENS) -> list[str]:
    """The lines of the refusal; each must name the file."""
    with pytest.raises(ConfigError) as raised:
        parse(text, environ)
    lines = str(raised.value).splitlines()
    assert all(line.startswith(f"{SOURCE}: ") for line in lines), lines
    return lines


# --- local keeps its catch-all ---------------------------------------------------------------------------


def test_with_no_local_table_local_serves_every_other_project_last() -> None:
    config = parse('[backends.vf]\nkind = "veryfront"\nprojects = ["web-*"]\n')
    assert [(settings.name, settings.projects) for settings in config.backends] == [
        ("vf", ("web-*",)),
        ("local", ("*",)),
    ]
    assert config.backends[1].options == {"home": str(HOME)}


def test_a_local_table_that_only_sets_home_keeps_the_catch_all_and_comes_last() -> None:
    config = parse(
        '[backends.local]\nhome = "~/jobs"\n\n[backends.vf]\nkind = "veryfront"\nprojects = ["web-*"]\n'
    )
    assert [settings.name for settings in config.backends] == ["vf", "local"], "the catch-all is tried last"
    local = config.backends[1]
    assert local.projects == ("*",)
    assert local.options == {"home": str(Path("~/jobs").expanduser())}


def test_a_local_table_that_sets_projects_serves_only_those() -> None:
    assert backends('[backends.local]\nprojects = ["scratch-*"]\n')["local"].projects == ("scratch-*",)
    assert backends("[backends.local]\nprojects = []\n")["local"].projects == (), "only as local:REF"


def test_another_local_table_serves_only_its_name_and_shares_nothing_with_local() -> None:
    found = backends('[backends.scratch]\nkind = "local"\nhome = "/srv/scratch"\n')
    assert found["scratch"].projects == ()
    assert found["scratch"].options == {"home": "/srv/scratch"}
    assert found["local"].projects == ("*",)


def test_a_disabled_local_removes_the_catch_all() -> None:
    assert "local" not in backends("[backends.local]\nenabled = false\n")


# --- each kind's keys -------------------------------------------------------------------------------------


def test_a_hosted_table_becomes_its_settings_and_options() -> None:
    text = """
[backends.cluster]
kind = "ray"
base_url = "http://ray-head.internal:8265/"
token_env = "RAY_PROXY_TOKEN"
projects = ["cluster"]
connect_timeout = 2
read_timeout = 7.5
settle_timeout = 0
max_retries = 0
retry_backoff = 0.01
auth_header = "X-Proxy-Token"
auth_scheme = ""
"""
    settings = backends(text, {"RAY_PROXY_TOKEN": "secret"})["cluster"]
    assert settings == BackendSettings(
        name="cluster",
        kind="ray",
        base_url="http://ray-head.internal:8265",
        token_env="RAY_PROXY_TOKEN",
        connect_timeout=2.0,
        read_timeout=7.5,
        settle_timeout=0.0,
        projects=("cluster",),
        options={"max_retries": 0, "retry_backoff": 0.01, "auth_header": "X-Proxy-Token", "auth_scheme": ""},
    )


def test_a_slurm_table_on_a_unix_socket() -> None:
    text = '[backends.hpc]\nkind = "slurm"\nbase_url = "unix:/run/slurmrestd.sock"\nscope = "partition"\n'
    settings = backends(text + 'api_version = "v0.0.41"\nuser_name = "ada"\n')["hpc"]
    assert settings.base_url == "unix:/run/slurmrestd.sock"
    assert settings.options == {"scope": "partition", "api_version": "v0.0.41", "user_name": "ada"}
    [line] = refusal('[backends.vf]\nkind = "veryfront"\nbase_url = "unix:/run/slurmrestd.sock"\n')
    assert "base_url must be an http:// or https:// URL" in line
    [line] = refusal('[backends.hpc]\nkind = "slurm"\nscope = ["account"]\n')
    assert line.endswith('[backends.hpc]: scope must be "account", "partition" or "user" (got a list).')


def test_bad_slurm_scope_and_api_version_are_named_with_every_other_problem_at_once() -> None:
    lines = refusal(
        '[backends.hpc]\nkind = "slurm"\nbase_url = "http://127.0.0.1:6820"\nscope = "cluster"\n'
        'api_version = "v0.0.37"\n[backends.hpc2]\nkind = "slurm"\napi_version = "latest"\n'
        "[backends.ray]\nread_timeout = -1\n"
    )
    assert [line.removeprefix(f"{SOURCE}: ") for line in lines] == [
        '[backends.hpc]: scope must be "account", "partition" or "user".',
        "[backends.hpc]: api_version must be a slurmrestd API version from v0.0.38 on, such as v0.0.41.",
        "[backends.hpc2]: api_version must be a slurmrestd API version from v0.0.38 on, such as v0.0.41.",
        "[backends.ray]: read_timeout must be a number of seconds, 0 or more (got -1).",
    ]


def test_a_bad_slurm_scope_stops_the_server_before_it_serves(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[backends.hpc]\nkind = "slurm"\nbase_url = "http://127.0.0.1:6820"\nscope = "cluster"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "cancel_job_mcp", "--config", str(config), "serve"],
        input="", capture_output=True, text=True, timeout=60,
        env={**os.environ, "CANCEL_JOB_MCP_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert 'scope must be "account", "partition" or "user"' in done.stderr


def test_unset_keys_keep_the_defaults_and_the_kind_defaults_to_the_name() -> None:
    settings = backends("[backends.veryfront]\n")["veryfront"]
    assert settings == BackendSettings(name="veryfront", kind="veryfront")


@pytest.mark.parametrize(
    ("kind", "key", "value", "takers"),
    [
        (
            "local",
            "base_url",
            '"http://x"',
            "veryfront, digitalocean, ionworks, talonic, ray, slurm and temporal",
        ),
        (
            "local",
            "settle_timeout",
            "5",
            "veryfront, digitalocean, ionworks, talonic, ray, slurm and temporal",
        ),
        ("local", "token_env", '"X"', "veryfront, digitalocean, ionworks, talonic, ray, slurm and temporal"),
        ("veryfront", "auth_header", '"X-Key"', "ray"),
        ("veryfront", "home", '"/tmp"', "local"),
        ("ray", "scope", '"account"', "slurm"),
        ("slurm", "auth_scheme", '""', "ray"),
    ],
)
def test_a_key_of_another_kind_is_refused_naming_the_kinds_that_take_it(
    kind: str, key: str, value: str, takers: str
) -> None:
    [line] = refusal(f'[backends.b]\nkind = "{kind}"\n{key} = {value}\n')
    assert (
        line
        == f"{SOURCE}: [backends.b]: {key!r} is not a key of a {kind} table; only {takers} tables take it."
    )


def test_an_unknown_key_is_refused_listing_the_keys_the_kind_takes() -> None:
    [line] = refusal('[backends.local]\nproject = ["a"]\n')
    assert line.endswith(
        "[backends.local]: unknown key 'project'; a local table takes: enabled, home, kind, projects."
    )


def test_account_is_no_key_of_any_table() -> None:
    [line] = refusal('[backends.vf]\nkind = "veryfront"\naccount = "acme"\n')
    assert "unknown key 'account'; a veryfront table takes: base_url, connect_timeout, enabled" in line


# --- strict values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('enabled = "no"', "enabled must be true or false (got 'no')"),
        ("enabled = 0", "enabled must be true or false (got 0)"),
        ('read_timeout = "30"', "read_timeout must be a number of seconds, 0 or more (got a string)"),
        ("read_timeout = true", "read_timeout must be a number of seconds, 0 or more (got True)"),
        ("connect_timeout = -1", "connect_timeout must be a number of seconds, 0 or more (got -1)"),
        ("settle_timeout = nan", "settle_timeout must be a number of seconds, 0 or more (got nan)"),
        ("settle_timeout = inf", "settle_timeout must be a number of seconds, 0 or more (got inf)"),
        ("max_retries = 1.5", "max_retries must be a whole number, 0 or more (got 1.5)"),
        ("max_retries = true", "max_retries must be a whole number, 0 or more (got True)"),
        ("max_retry_wait = [1]", "max_retry_wait must be a number of seconds, 0 or more (got a list)"),
        ('projects = "web-*"', "projects must be a list of project references or glob patterns"),
        ('projects = ["../*"]', "(got '../*')"),
        ('base_url = "ftp://x"', "base_url must be an http:// or https:// URL with no user:password@, query"),
        ('base_url = "https://x/?q=1"', "base_url must be an http:// or https:// URL"),
    ],
)
def test_a_value_of_the_wrong_type_or_range_is_refused_naming_the_key_and_the_rule(
    setting: str, expected: str
) -> None:
    [line] = refusal(f'[backends.vf]\nkind = "veryfront"\n{setting}\n')
    assert line.startswith(f"{SOURCE}: [backends.vf]: ")
    assert expected in line


def test_a_request_with_no_time_at_all_is_refused_at_start_up() -> None:
    # Unset, a request's total deadline is connect_timeout + read_timeout: both 0 would give it none.
    [line] = refusal('[backends.vf]\nkind = "veryfront"\nconnect_timeout = 0\nread_timeout = 0\n')
    assert line == (
        f"{SOURCE}: [backends.vf]: total_timeout must be set, more than 0, when connect_timeout and"
        " read_timeout are both 0 (the total deadline of a request is otherwise their sum)."
    )
    text = '[backends.vf]\nkind = "veryfront"\nconnect_timeout = 0\nread_timeout = 0\ntotal_timeout = 3\n'
    assert backends(text)["vf"].options == {"total_timeout": 3.0}
    assert backends('[backends.vf]\nkind = "veryfront"\nread_timeout = 0\n')["vf"].connect_timeout > 0


def test_read_only_must_be_a_boolean() -> None:
    assert parse("read_only = true\n").read_only is True
    assert refusal('read_only = "yes"\n') == [f"{SOURCE}: read_only must be true or false."]


def test_a_secret_written_where_a_name_or_url_goes_is_never_echoed() -> None:
    text = '[backends.vf]\nkind = "veryfront"\ntoken_env = "vf_live abc123"\nbase_url = "vf_live abc123"\n'
    lines = refusal(text)
    assert len(lines) == 2
    assert "token_env must name the environment variable that holds the token (" in lines[1]
    assert "not hold the token itself" in lines[1]
    assert not any("abc123" in line for line in lines), lines


# --- the environment --------------------------------------------------------------------------------------


def test_every_missing_token_variable_is_reported_at_once() -> None:
    text = """
[backends.vf]
kind = "veryfront"
[backends.do]
kind = "digitalocean"
[backends.ion]
kind = "ionworks"
token_env = "LAB_KEY"
[backends.cluster]
kind = "ray"
token_env = "RAY_PROXY_TOKEN"
[backends.off]
kind = "talonic"
enabled = false
"""
    assert refusal(text, {"DIGITALOCEAN_TOKEN": "do", "LAB_KEY": "  "}) == [
        f"{SOURCE}: [backends.vf]: the environment variable VERYFRONT_API_TOKEN is not set; export it with"
        " the token.",
        f"{SOURCE}: [backends.ion]: the environment variable LAB_KEY is not set; export it with the token.",
        f"{SOURCE}: [backends.cluster]: the environment variable RAY_PROXY_TOKEN is not set; export it with"
        " the token.",
    ]


def test_a_ray_table_needs_no_token_unless_it_names_one() -> None:
    assert backends('[backends.cluster]\nkind = "ray"\n', {})["cluster"].token_env is None


def test_problems_in_several_tables_are_reported_together_in_file_order() -> None:
    text = (
        '[backends.a]\nkind = "kubernetes"\n[backends.b]\n[backends.vf]\nkind = "veryfront"\nenabled = "no"\n'
    )
    assert refusal(text, {}) == [
        f"{SOURCE}: [backends.a]: set kind to one of {KINDS} (got 'kubernetes').",
        f"{SOURCE}: [backends.b]: set kind to one of {KINDS} ('b' is not a kind).",
        f"{SOURCE}: [backends.vf]: enabled must be true or false (got 'no').",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[backends.x\n", f"{SOURCE}: not valid TOML ("),
        (
            "colour = 1\n",
            f"{SOURCE}: unknown top-level key 'colour'; use 'backends', 'read_only', 'http' and 'confirm'.",
        ),
        ("backends = 3\n", f"{SOURCE}: backends must be tables, as in [backends.NAME]."),
        ('[backends."a b"]\n', f"{SOURCE}: [backends.a b]: a backend name must be 1-64 letters, digits"),
        ("[backends]\nlocal = 1\n", f"{SOURCE}: [backends.local]: must be a table of settings"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_file(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert str(raised.value).startswith(expected)


# --- finding the file, and no file --------------------------------------------------------------------------


def test_with_no_file_a_standard_env_var_enables_its_provider(tmp_path: Path) -> None:
    config = load_config(None, tmp_path, {"DIGITALOCEAN_TOKEN": "x", "RAY_ADDRESS": "http://127.0.0.1:8265"})
    assert [(settings.name, settings.kind, settings.projects) for settings in config.backends] == [
        ("digitalocean", "digitalocean", ()),
        ("ray", "ray", ()),
        ("local", "local", ("*",)),
    ]
    assert config.source is None


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


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=f"^{missing}: cannot read the configuration file"):
        load_config(missing, tmp_path, {})


def test_a_bad_configuration_stops_the_server_at_start(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[backends.vf]\nkind = "veryfront"\nenabled = "no"\n')
    done = run_cli(home, "--config", str(config), "serve", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"configuration error: {config}: [backends.vf]: enabled must be true or false" in done.stderr
    assert "Traceback" not in done.stderr


# --- the README's configuration section -------------------------------------------------------------------


def readme_configuration() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Configuration\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_key_table_matches_the_models() -> None:
    groups = {"all": list(registry.KINDS), "remote": [kind for kind in registry.KINDS if kind != "local"]}
    documented: dict[str, set[str]] = {kind: set() for kind in registry.KINDS}
    rows = re.findall(r"^\| (`[^|]+`) \| ([a-z, ]+) \|", readme_configuration(), re.MULTILINE)
    for keys, kinds in rows:
        for kind in groups.get(kinds, [kinds] if kinds in registry.KINDS else []):
            documented[kind] |= set(re.findall(r"`(\w+)`", keys))
    assert documented == {kind: set(table_model(kind).model_fields) for kind in registry.KINDS}


def test_every_readme_example_is_a_valid_configuration() -> None:
    examples = re.findall(r"```toml\n(.*?)```", readme_configuration(), re.DOTALL)
    assert len(examples) >= 3, "the providers', Slurm's and Slurm-on-a-socket examples"
    for example in examples:
        config = parse(example, {**TOKENS, "IONWORKS_API_KEY": "x", "SLURM_JWT": "x"})
        assert config.backends[-1].name == "local", example
