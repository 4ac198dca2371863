"""The composition root: one typed options object builds the service and the server; the CLI and
the transports depend on it and not on each other."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from cancel_job_mcp.app import AppOptions, build_mcp_server
from cancel_job_mcp.config import Config, env_only_config
from cancel_job_mcp.transports import HttpOptions, worker_app

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cancel_job_mcp"


def imported_modules(module: str) -> set[str]:
    """Every package module `module` imports, at the top or inside a function."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cancel_job_mcp."):
            names.add(str(node.module).split(".")[1])
    return names


def test_the_cli_and_the_transports_do_not_import_each_other() -> None:
    assert "cli" not in imported_modules("transports")
    assert {"cli", "transports"}.isdisjoint(imported_modules("app"))
    assert "app" in imported_modules("cli")
    assert "app" in imported_modules("transports")


def options(home: Path, config: Config | None = None, read_only: bool = False) -> AppOptions:
    return AppOptions(home=home, config=config or env_only_config(home, {}), read_only=read_only)


@pytest.mark.parametrize(
    ("flag", "configured", "tools"),
    [
        (False, False, ["cancel_job", "cancel_jobs", "get_job", "list_jobs", "get_job_logs", "wait_job"]),
        (True, False, ["get_job", "list_jobs", "get_job_logs", "wait_job"]),
        (False, True, ["get_job", "list_jobs", "get_job_logs", "wait_job"]),
    ],
)
@pytest.mark.anyio
async def test_read_only_comes_from_the_flag_or_the_configuration(
    home: Path, flag: bool, configured: bool, tools: list[str]
) -> None:
    from .conftest import client

    base = env_only_config(home, {})
    config = Config(backends=base.backends, read_only=configured)
    server, service = build_mcp_server(options(home, config, flag))
    try:
        async with client(server) as session:
            assert [tool.name for tool in (await session.list_tools()).tools] == tools
    finally:
        await service.aclose()


def test_an_http_worker_gets_typed_options_that_survive_pickling(home: Path) -> None:
    """Worker processes are spawned: what they receive is pickled, never an untyped dict in the env."""
    app_options, http = options(home, read_only=True), HttpOptions(stateless=True, workers=2)
    assert pickle.loads(pickle.dumps((app_options, http))) == (app_options, http)
    assert callable(worker_app(app_options, http, ()))


def test_a_command_loads_the_configuration_once(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cancel_job_mcp import cli

    loads: list[Path] = []

    def counting_load(explicit: Path | None, state_home: Path) -> Config:
        loads.append(state_home)
        return env_only_config(state_home, {})

    monkeypatch.setattr(cli, "load_config", counting_load)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--home", str(home), "show", "demo", "job_none"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith("not_found: ")
    assert loads == [home]


START_UP = """
import gc
from cancel_job_mcp.app import start_up

with start_up():
    during = gc.isenabled()
print(during, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_start_up_pauses_the_collector_then_freezes_what_it_built_and_resumes_it() -> None:
    # In a fresh interpreter: freezing is process-wide.
    done = subprocess.run([sys.executable, "-c", START_UP], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True", "True"], done.stderr
