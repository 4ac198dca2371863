"""server.json, the MCP Registry entry: valid against the registry's schema and in step with the package."""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

import cancel_job_mcp
from cancel_job_mcp.backends import registry
from cancel_job_mcp.config import HTTP_TOKENS_ENV

pytestmark = pytest.mark.xdist_group(__name__)

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "tests" / "fixtures" / "mcp-registry" / "server.schema.2025-12-11.json"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
SERVER_NAME = "io.github.cancel-job-mcp/cancel-job-mcp"

# Every environment variable a backend reads; the secrets among them.
# Every variable the server reads: its own two, and each backend kind's token and address variables.
SECRETS = {entry.token_env for entry in registry.ENTRIES.values() if entry.token_env}
ENV_VARS = {
    "CANCEL_JOB_MCP_HOME",
    "CANCEL_JOB_MCP_CONFIG",
    *SECRETS,
    *(entry.address_env for entry in registry.ENTRIES.values() if entry.address_env),
}


@pytest.fixture(scope="module")
def server_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "server.json").read_text())
    return document


@pytest.fixture(scope="module")
def project_version() -> str:
    """The version the wheel gets: hatchling reads it from the package (pyproject says so)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/cancel_job_mcp/__init__.py"
    assert importlib.metadata.version("cancel-job-mcp") == cancel_job_mcp.__version__, "reinstall the package"
    return cancel_job_mcp.__version__


def test_valid_against_the_registry_schema(server_json: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft7Validator.check_schema(schema)
    errors = sorted(Draft7Validator(schema).iter_errors(server_json), key=lambda error: list(error.path))
    problems = [f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}" for error in errors]
    assert not problems, "\n".join(problems)


def test_current_schema_name_and_description(server_json: dict[str, Any]) -> None:
    # mcp-publisher validate rejects any $schema but the current one ("deprecated schema detected").
    assert server_json["$schema"] == SCHEMA_URL
    assert server_json["name"] == SERVER_NAME
    assert 1 <= len(server_json["description"]) <= 100


def test_versions_match_pyproject(server_json: dict[str, Any], project_version: str) -> None:
    assert server_json["version"] == project_version
    assert server_json["packages"], "server.json lists no packages"
    for package in server_json["packages"]:
        assert package["version"] == project_version, package["transport"]


def test_pypi_packages_stdio_and_streamable_http(server_json: dict[str, Any]) -> None:
    packages = {package["transport"]["type"]: package for package in server_json["packages"]}
    assert set(packages) == {"stdio", "streamable-http"}
    for package in packages.values():
        assert package["registryType"] == "pypi"
        assert package["identifier"] == "cancel-job-mcp"
        assert package["runtimeHint"] == "uvx"

    http = packages["streamable-http"]
    assert http["transport"]["url"] == "http://127.0.0.1:{port}/mcp"
    arguments = http["packageArguments"]
    assert arguments[0] == {"type": "positional", "value": "serve", "valueHint": "command"}
    named = {argument["name"]: argument for argument in arguments if argument["type"] == "named"}
    assert named["--transport"]["value"] == "http"
    # {port} in the URL is resolved from the --port argument's valueHint.
    assert named["--port"]["valueHint"] == "port"
    for variable in re.findall(r"\{(\w+)\}", http["transport"]["url"]):
        assert variable in {argument.get("valueHint") for argument in arguments}, variable


def named_default(package: dict[str, Any], name: str) -> str:
    arguments = package["packageArguments"]
    value: str = next(argument["default"] for argument in arguments if argument.get("name") == name)
    return value


def test_http_package_arguments_match_the_cli(server_json: dict[str, Any]) -> None:
    from cancel_job_mcp.cli import build_parser

    http = next(package for package in server_json["packages"] if package["transport"]["type"] != "stdio")
    argv: list[str] = []
    for argument in http["packageArguments"]:
        if argument["type"] == "named":
            argv += [argument["name"], str(argument.get("value", argument.get("default")))]
        else:
            argv.append(argument["value"])
    args = build_parser().parse_args(argv)
    assert (args.command, args.transport, args.port) == ("serve", "http", int(named_default(http, "--port")))


def test_environment_variables(server_json: dict[str, Any]) -> None:
    for package in server_json["packages"]:
        variables = {variable["name"]: variable for variable in package["environmentVariables"]}
        http = package["transport"]["type"] == "streamable-http"
        assert set(variables) == ENV_VARS | ({HTTP_TOKENS_ENV} if http else set()), package["transport"]
        for name, variable in variables.items():
            assert variable.get("isRequired", False) is False, name
            assert variable.get("isSecret", False) is (name in SECRETS | {HTTP_TOKENS_ENV}), name
            assert variable.get("description"), name


def test_readme_names_the_server_for_pypi_ownership() -> None:
    # The registry proves PyPI ownership by finding this line in the package description (the README).
    lines = (REPO / "README.md").read_text().splitlines()
    assert any(
        re.search(rf"(^|\s|<!--)\s*mcp-name: {re.escape(SERVER_NAME)}(\s|-->|$)", line) for line in lines
    ), f"README.md has no line 'mcp-name: {SERVER_NAME}'"
