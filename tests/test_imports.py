"""The package's modules import one another without a cycle (imports inside functions count too;
those under `if TYPE_CHECKING:` do not, as they never run)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from .mcp_wire import initialize

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cancel_job_mcp"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports (`from .x import y` counts `x.y` when y is a module)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports(path, modules) - {module_name(path)} for path in paths}


def test_the_graph_is_read_correctly() -> None:
    graph = import_graph()
    assert "cancel_job_mcp.config" in graph["cancel_job_mcp.routing"]
    assert "cancel_job_mcp.config_models" in graph["cancel_job_mcp.config"], "an import inside a function"
    assert "cancel_job_mcp.backends.registry" in graph["cancel_job_mcp.backends.local"], (
        "from ..base, in a package"
    )
    assert "cancel_job_mcp.app" in graph["cancel_job_mcp.cli"]


def test_no_module_imports_itself_through_others() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_backends_do_not_import_the_configuration() -> None:
    graph = import_graph()
    for module, imported in graph.items():
        if module.startswith("cancel_job_mcp.backends"):
            assert not {"cancel_job_mcp.config", "cancel_job_mcp.config_models"} & imported, module


def test_only_declared_dependencies_are_imported_by_name() -> None:
    """`mcp_types` comes with the SDK but is not ours to name: `from mcp import types` is the same."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] == "mcp_types" for name in names), path


# Runs the server as `python -m cancel_job_mcp` does, and names every module loaded when it exits
# (`-X importtime` and the "import" audit event miss modules loaded by importlib.import_module).
_SERVE_AND_LIST_MODULES = """
import atexit, runpy, sys
atexit.register(lambda: print(*(f"module: {name}" for name in sys.modules), sep="\\n", file=sys.stderr))
runpy.run_module("cancel_job_mcp", run_name="__main__", alter_sys=True)
"""


def test_a_start_with_no_configuration_file_imports_no_provider(tmp_path: Path) -> None:
    """A server with no configuration file answers without importing a provider module or httpx: the
    registry's `ENTRIES` tell which environment variables to read without importing any."""
    from cancel_job_mcp.backends import registry

    provider_variables = {
        variable
        for entry in registry.ENTRIES.values()
        for variable in (entry.token_env, entry.address_env)
        if variable
    }
    env = {key: value for key, value in os.environ.items() if key not in provider_variables}
    env.update({"CANCEL_JOB_MCP_HOME": str(tmp_path)})
    env.pop("CANCEL_JOB_MCP_CONFIG", None)
    with (tmp_path / "stderr").open("w+b") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVE_AND_LIST_MODULES],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        try:
            assert server.stdin is not None
            assert server.stdout is not None
            server.stdin.write(json.dumps(initialize(version="2025-06-18")).encode() + b"\n")
            server.stdin.flush()
            assert b'"result"' in server.stdout.readline()
            server.stdin.close()  # end of input: the server exits, and lists its modules
            server.wait(timeout=60)
        finally:
            server.kill()
            server.wait()
        stderr.seek(0)
        loaded = set(re.findall(r"^module: (\S+)$", stderr.read().decode(), re.MULTILINE))
    assert "cancel_job_mcp.server" in loaded, "the list is read correctly"
    providers = {entry.module for kind, entry in registry.ENTRIES.items() if kind != "local"}
    assert not providers & loaded
    assert "httpx" not in loaded
