"""docs/architecture.md's module map lists every module of src/, once, and nothing else; no module is
longer than a reader can hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "cancel_job_mcp"
MAX_LINES = 450


def test_the_module_map_lists_every_module_once() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = re.findall(r"^- `([\w/]+\.py)`: ", text, flags=re.MULTILINE)
    modules = sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py"))
    assert sorted(listed) == modules, "add (or remove) the module's line in docs/architecture.md"
    assert len(listed) == len(set(listed))


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules (at most {MAX_LINES} lines each)"
