"""The tool contracts, loaded from the JSON files packaged with the code (the single source of truth)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def load_schema(name: str) -> dict[str, Any]:
    """`load_schema("cancel_job.input")` reads schemas/cancel_job.input.json from the package."""
    text = files("cancel_job_mcp").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
