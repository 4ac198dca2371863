"""The README's commands, run as written: the walk-through on a fresh state directory (the Inspector
step included), and the checkout form of the client snippets (`uvx --from PATH cancel-job-mcp`).

The commands are read from README.md itself, so the README cannot drift from what works. Only two
things are provided around them: `npx @modelcontextprotocol/inspector@VERSION` runs the Inspector
that .ci/install-node-tools.sh installed (the same pinned version), and `.venv/bin/cancel-job-mcp`
is this interpreter's installation.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cancel_job_mcp.server import tool_specs

from .conftest import REPO, client, process_group_alive
from .node_tools import INSPECTOR, NODE, NODE_MODULES

pytestmark = pytest.mark.slow
README = (REPO / "README.md").read_text(encoding="utf-8")
HOME_LINE = re.compile(r"^export CANCEL_JOB_MCP_HOME=(\S+)", re.MULTILINE)
UVX = REPO / ".cache" / "uv" / "bin" / "uvx"
CHECKOUT = "/path/to/cancel-job-mcp"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def inspector_version() -> str:
    manifest = (NODE_MODULES / "@modelcontextprotocol" / "inspector" / "package.json").read_text()
    match = re.search(r'"version": "([^"]+)"', manifest)
    assert match is not None
    return match[1]


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    if not (NODE.is_file() and INSPECTOR.is_file()):
        pytest.skip("the Inspector is not installed: run `bash .ci/install-node-tools.sh`")
    (walk_through,) = shell_blocks(section("A 60-second walk-through"))
    assert HOME_LINE.search(walk_through), "the walk-through starts by choosing its state directory"
    home = tmp_path / "demo-home"
    workdir = tmp_path / "checkout"
    launcher = workdir / ".venv" / "bin" / "cancel-job-mcp"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cancel_job_mcp "$@"\n')
    launcher.chmod(0o755)
    package = f"@modelcontextprotocol/inspector@{inspector_version()}"
    npx = (
        "npx() {\n"
        f'  [ "$1" = "{package}" ] || {{ echo "npx $1?" >&2; return 97; }}\n'
        f'  shift; {shlex.quote(str(NODE))} {shlex.quote(str(INSPECTOR))} "$@"\n'
        "}\n"
    )
    script = npx + HOME_LINE.sub(f"export CANCEL_JOB_MCP_HOME={home}", walk_through)

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        env={**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^id +project_id +status +name +created_at +exit_code$", out, re.MULTILINE)
    assert re.search(r"^job_\S+ +demo +(submitted|working) +nap ", out, re.MULTILINE)
    assert '"isError": false' in out
    assert '"truncated": false' in out, "the Inspector read the job's logs"
    assert "napping for ten minutes" in out, "`logs` printed what the job printed"
    assert out.count('"status": "canceled"') >= 2, "the Inspector's result and `show` both say canceled"
    assert out.rstrip().endswith("stopped")
    job_pid = int((home / "nap.pid").read_text())
    assert not process_group_alive(job_pid), "the job's process is gone"


def test_the_checkout_form_of_the_client_snippets_serves(tmp_path: Path) -> None:
    """`uvx --from PATH cancel-job-mcp`, beside each `uvx cancel-job-mcp`, builds and serves this checkout."""
    uvx_snippets = README.count('"args": ["cancel-job-mcp"]') + README.count("-- uvx cancel-job-mcp")
    checkout_forms = README.count(f'"args": ["--from", "{CHECKOUT}", "cancel-job-mcp"]') + README.count(
        f"uvx --from {CHECKOUT} cancel-job-mcp"
    )
    assert uvx_snippets >= 3
    assert checkout_forms >= uvx_snippets, "each uvx snippet has its checkout form beside it"
    if not UVX.is_file():
        pytest.skip(f"uv is not installed ({UVX} is absent): run `bash .ci/install-uv.sh`")

    import anyio
    from mcp import StdioServerParameters

    home = tmp_path / "home"
    server = StdioServerParameters(
        command=str(UVX),
        args=["--from", str(REPO), "cancel-job-mcp"],
        env={**os.environ, "CANCEL_JOB_MCP_HOME": str(home)},
        cwd=str(tmp_path),
    )

    async def list_and_call() -> tuple[list[str], str]:
        with anyio.fail_after(170):  # the first run builds the package and fetches its dependencies
            async with client(server) as session:
                tools = [tool.name for tool in (await session.list_tools()).tools]
                result = await session.call_tool(
                    "get_job", {"project_reference": "demo", "job_id": "job_none"}
                )
        return tools, result.content[0].text

    tools, text = anyio.run(list_and_call)
    assert tools == list(tool_specs())
    assert text.startswith("not_found: ")
