"""The identifier rules every backend shares, checked once by the service for every caller.

The published input schema mirrors the documented contract word for word, so the rules that keep
identifiers safe to route and to put in a provider's URL path live here, not in the schema. The server
checks a call's arguments against the schema (`arguments`); the service checks the identifiers, for
the tools and the CLI alike; each provider checks only its own formats.
"""

from __future__ import annotations

import re

from .errors import invalid_argument

_IDENTIFIER = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}"
_BACKEND_PREFIX = r"[A-Za-z0-9_-]{1,64}:"
_RULES = {
    "project_reference": (
        re.compile(rf"(?:{_BACKEND_PREFIX})?{_IDENTIFIER}"),
        "must be a project id or slug of 1-128 letters, digits, '_', '-' or '.', not starting with '.',"
        " optionally prefixed by a backend name and ':' (as in 'local:my-project')",
    ),
    "job_id": (
        re.compile(rf"{_IDENTIFIER}|[0-9]{{1,10}}_\[[0-9,:-]{{1,200}}\]"),
        "must be a job id of 1-128 letters, digits, '_', '-' or '.', not starting with '.' (or a Slurm"
        " array's tasks, as in 1234_[1-3,7])",
    ),
}


def is_identifier(field: str, value: object) -> bool:
    return isinstance(value, str) and _RULES[field][0].fullmatch(value) is not None


def check_identifier(field: str, value: str) -> None:
    pattern, rule = _RULES[field]
    if pattern.fullmatch(value) is None:
        raise invalid_argument(field, f"{rule}; got {preview(value)}")


def preview(value: str) -> str:
    """A value as an error quotes it: in full when short, else its start and length."""
    if value == "":
        return "an empty string"
    if len(value) > 40:
        return f"{value[:20]!r}... ({len(value)} characters)"
    return repr(value)
