#!/usr/bin/env bash
# Install Ray into its own git-ignored venv, .cache/ray-venv, for tests/backends/test_ray.py, which starts a real
# Ray head node from it. The project venv never gets Ray: the server talks to Ray's REST API with httpx.
#   ray[default]==2.60.0   ([default] brings the dashboard, which serves the Jobs REST API)
# Idempotent: when the pinned version is already there it only checks and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.cache/ray-venv
RAY_VERSION=2.60.0

ray_version() {  # prints the Ray version installed in VENV, or nothing
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
from importlib.metadata import version
print(version("ray"))
EOF
}

ray_ok() {  # the `ray` script itself runs: a venv moved from another path keeps a dead #! line
    [ "$(ray_version)" = "$RAY_VERSION" ] && "$VENV/bin/ray" --version >/dev/null 2>&1 \
        && "$VENV/bin/python" -c "import ray.dashboard, aiohttp" >/dev/null 2>&1
}

if ray_ok; then
    echo "install-ray: ray $RAY_VERSION already installed in $VENV"
    exit 0
fi

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-ray: $PYTHON not found; skipping (tests/backends/test_ray.py will skip)" >&2
    exit 0
fi

mkdir -p .cache
rm -rf "$VENV"  # whatever is there does not work (see ray_ok): start again
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ray[default]==$RAY_VERSION"

ray_ok || { echo "install-ray: ray $RAY_VERSION did not install into $VENV" >&2; exit 1; }
echo "install-ray: ray $(ray_version) in $VENV"
