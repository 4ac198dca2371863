"""The tools' argument rules: the published JSON Schema, and the identifier rules every backend shares.

The published input schema mirrors the documented contract word for word, so the rules that keep
identifiers safe to route and to put in a provider's URL path live here, not in the schema. The server
checks a call's arguments against the schema; the service checks the identifiers, once, for every
caller (the tools and the CLI); each provider checks only its own formats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from jsonschema import Draft7Validator, ValidationError

from .errors import ErrorCode, ToolError, invalid_argument

_MAX_REPORTED = 5
_IDENTIFIER = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}"
_BACKEND_PREFIX = r"[A-Za-z0-9_-]{1,64}:"
_RULES = {
    "project_reference": (
        re.compile(rf"(?:{_BACKEND_PREFIX})?{_IDENTIFIER}"),
        "must be a project id or slug of 1-128 letters, digits, '_', '-' or '.', not starting with '.',"
        " optionally prefixed by a backend name and ':' (as in 'local:my-project')",
    ),
    "job_id": (
        re.compile(_IDENTIFIER),
        "must be a job id of 1-128 letters, digits, '_', '-' or '.', not starting with '.'",
    ),
}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def check_identifier(field: str, value: str) -> None:
    pattern, rule = _RULES[field]
    if pattern.fullmatch(value) is None:
        raise invalid_argument(field, f"{rule}; got {_preview(value)}")


def validate_arguments(validator: Draft7Validator, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check tool arguments against the tool's input schema, naming each problem's field and rule."""
    values = dict(arguments or {})
    errors = list(validator.iter_errors(values))
    if errors:
        errors.sort(key=lambda error: list(error.absolute_path))
        accepted = list(cast(Mapping[str, Any], validator.schema).get("properties", {}))
        # dict.fromkeys: one `required` error per missing field names them all; say each once.
        problems = dict.fromkeys(problem for error in errors for problem in _problems(error, accepted))
        raise ToolError(ErrorCode.INVALID_ARGUMENT, "; ".join(list(problems)[:_MAX_REPORTED]))
    return values


def _problems(error: ValidationError, accepted: list[str]) -> list[str]:
    """ "field: rule" for each problem one schema violation reports, never echoing a long value back."""
    field = "/".join(str(part) for part in error.absolute_path) or "arguments"
    fields = ", ".join(accepted)
    instance = cast(dict[str, Any], error.instance)
    if error.validator == "required":
        missing = [name for name in cast(list[str], error.validator_value) if name not in instance]
        return [f"{name}: is required (the tool takes: {fields})" for name in missing]
    if error.validator == "additionalProperties":
        extra = sorted(set(instance) - set(accepted))
        return [
            f"{_preview(name)}: is not an accepted field (the tool takes only: {fields})" for name in extra
        ]
    if error.validator == "type":
        return [f"{field}: must be of type {error.validator_value}, got {_json_type(error.instance)}"]
    return [f"{field}: {_truncate(error.message)}"]


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _preview(value: str) -> str:
    if value == "":
        return "an empty string"
    if len(value) > 40:
        return f"{value[:20]!r}... ({len(value)} characters)"
    return repr(value)


def _truncate(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
