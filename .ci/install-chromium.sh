#!/usr/bin/env bash
# Install Debian's Chromium for the tests a person would look at (tests/test_panel_browser.py drives it
# headless through Playwright for Python; Playwright never downloads a browser of its own here).
# Idempotent. Needs root and apt-get; without them it explains and exits 0 (the browser tests then skip).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: not root; skipping (the browser tests will skip)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get on this system; skipping (the browser tests will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) installed"
