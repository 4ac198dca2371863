"""Build the job panel's single HTML document from its sources (panel.html, panel.css, panel.js).

The stylesheet and the script are inlined, so the document needs no network under the MCP Apps
default content security policy. The result is a packaged file of the wheel, which therefore
builds without Node: run `python ui/build.py` after editing a source (tests/test_panel.py holds
the packaged file equal to a fresh build).
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
OUTPUT = SOURCES.parent / "src" / "cancel_job_mcp" / "ui" / "panel.html"
STYLESHEET_LINK = '<link rel="stylesheet" href="panel.css">'
SCRIPT_TAG = '<script src="panel.js"></script>'
BANNER = "<!-- Built by ui/build.py from ui/panel.html, panel.css and panel.js: edit those, then rebuild. -->\n"


def build() -> str:
    page = (SOURCES / "panel.html").read_text(encoding="utf-8")
    style = (SOURCES / "panel.css").read_text(encoding="utf-8")
    script = (SOURCES / "panel.js").read_text(encoding="utf-8")
    if "</style" in style.lower() or "</script" in script.lower():
        raise ValueError("a source closes its own inline element early")
    for tag in (STYLESHEET_LINK, SCRIPT_TAG):
        if page.count(tag) != 1:
            raise ValueError(f"panel.html must hold {tag} exactly once")
    page = page.replace(STYLESHEET_LINK, f"<style>\n{style}</style>")
    page = page.replace(SCRIPT_TAG, f"<script>\n{script}</script>")
    head, _, rest = page.partition("\n")  # the doctype stays first
    return f"{head}\n{BANNER}{rest}"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(build(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(SOURCES.parent)} ({OUTPUT.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
