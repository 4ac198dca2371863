#!/usr/bin/env bash
# Install uv (and its uvx) from PyPI into the git-ignored .cache/uv, for the test that runs the
# README's checkout form `uvx --from PATH cancel-job-mcp` (tests/test_readme.py).
# Idempotent: when the pinned version is already there it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=.cache/uv
UV_VERSION=0.13.9

if [ -x "$PREFIX/bin/uvx" ] && [[ "$("$PREFIX/bin/uv" --version 2>/dev/null)" == "uv $UV_VERSION "* ]]; then
    echo "install-uv: uv $UV_VERSION already installed in $PREFIX"
    exit 0
fi
python3 -m venv "$PREFIX"
"$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
echo "install-uv: $("$PREFIX/bin/uv" --version) in $PREFIX"
