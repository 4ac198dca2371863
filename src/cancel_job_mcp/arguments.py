"""The tools' argument rules: each call's arguments checked against the tool's published JSON Schema,
every problem named with its field and rule (the identifier rules are `identifiers`')."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .errors import invalid_arguments, missing_field, not_a_member, unaccepted_field, wrong_type
from .identifiers import preview

if TYPE_CHECKING:
    from jsonschema import Draft7Validator, ValidationError

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


class ArgumentValidator:
    """Checks a tool's arguments against its input schema, naming each problem's field and rule.

    Arguments that plainly fit the schema (every required field there, no other field, each value of
    its type and within its enum and bounds) pass a check made from the schema once, at start; only
    the rest go to jsonschema, imported then, which decides and words the problems. The quick check
    answers only when it is sure, so what is accepted is exactly what jsonschema accepts.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._fits = _quick_check(schema)
        self._validator: Draft7Validator | None = None
        properties = schema.get("properties", {})
        self._integers = frozenset(name for name, sub in properties.items() if "integer" in _types(sub))

    def validate(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """The arguments, checked; a null optional argument is left out (where the schema allows null,
        it means "not given"), and an integer written as 5.0 is the integer 5, for every backend."""
        values = dict(arguments or {})
        if not (self._fits is not None and self._fits(values)):
            self._check_fully(values)
        if None in values.values() or any(type(values.get(name)) is float for name in self._integers):
            values = {
                name: int(value) if name in self._integers and type(value) is float else value
                for name, value in values.items()
                if value is not None
            }
        return values

    def _check_fully(self, values: dict[str, Any]) -> None:
        errors = list(self._full().iter_errors(values))
        if errors:
            errors.sort(key=lambda error: list(error.absolute_path))
            accepted = list(self.schema.get("properties", {}))
            # dict.fromkeys: one `required` error per missing field names them all; say each once.
            problems = dict.fromkeys(problem for error in errors for problem in _problems(error, accepted))
            raise invalid_arguments(problems)

    def _full(self) -> Draft7Validator:
        if self._validator is None:
            from jsonschema import Draft7Validator

            self._validator = Draft7Validator(self.schema)
        return self._validator


def _problems(error: ValidationError, accepted: list[str]) -> list[str]:
    """ "field: rule" for each problem one schema violation reports, never echoing a long value back."""
    field = "/".join(str(part) for part in error.absolute_path) or "arguments"
    fields = ", ".join(accepted)
    instance = cast(dict[str, Any], error.instance)
    if error.validator == "required":
        missing = [name for name in cast(list[str], error.validator_value) if name not in instance]
        return [missing_field(name, fields) for name in missing]
    if error.validator == "additionalProperties":
        extra = sorted(set(instance) - set(accepted))
        return [unaccepted_field(preview(name), fields) for name in extra]
    if error.validator == "type":
        expected = " or ".join(_types({"type": error.validator_value}))
        return [wrong_type(field, expected, _json_type(error.instance))]
    if error.validator == "enum":
        members = ", ".join(json.dumps(member) for member in cast(list[Any], error.validator_value))
        return [not_a_member(field, members, _truncate(json.dumps(error.instance)))]
    return [f"{field}: {_truncate(error.message)}"]


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _truncate(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


# Keywords the quick check understands; a schema with any other keyword always goes to jsonschema.
_ANNOTATIONS = frozenset({"$schema", "title", "description", "default", "examples"})
_OBJECT_KEYWORDS = _ANNOTATIONS | {"type", "properties", "required", "additionalProperties"}
_VALUE_KEYWORDS = _ANNOTATIONS | {"type", "enum", "minimum", "maximum", "minLength", "maxLength"}
# JSON type -> the Python types whose values surely have it (bool is not an integer; 1.0 goes to jsonschema).
_SURE_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}

Check = Callable[[Any], bool]


def _quick_check(schema: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """A check that is True only for arguments the schema surely accepts; None if it cannot be made."""
    if (
        not set(schema) <= _OBJECT_KEYWORDS
        or schema.get("type") != "object"
        or schema.get("additionalProperties") is not False
    ):
        return None
    required = frozenset(schema.get("required", ()))
    checks: dict[str, Check] = {}
    for name, subschema in schema.get("properties", {}).items():
        check = _value_check(subschema)
        if check is None:
            return None
        checks[name] = check

    def fits(values: dict[str, Any]) -> bool:
        return required <= values.keys() and all(
            name in checks and checks[name](value) for name, value in values.items()
        )

    return fits


def _types(schema: Mapping[str, Any]) -> list[str]:
    json_type = schema.get("type")
    return list(json_type) if isinstance(json_type, list) else [str(json_type)]


def _value_check(schema: Mapping[str, Any]) -> Check | None:
    types = _types(schema)
    nullable = "null" in types and len(types) == 2
    json_type = next(kind for kind in types if kind != "null") if nullable else schema.get("type")
    if not set(schema) <= _VALUE_KEYWORDS or json_type not in _SURE_TYPES:
        return None
    sure_type = _SURE_TYPES[json_type]
    enum = schema.get("enum")
    if nullable and enum is not None:
        enum = [member for member in enum if member is not None]
    low, high = schema.get("minimum"), schema.get("maximum")
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if (
        (enum is not None and not all(type(member) is sure_type for member in enum))
        or ((low is not None or high is not None) and json_type != "integer")
        or ((shortest is not None or longest is not None) and json_type != "string")
    ):
        return None  # keywords that apply to other types, or enum members of another type

    def check(value: Any) -> bool:
        if value is None:
            return nullable
        # type() is, not isinstance: True is an int to Python, not an integer to JSON Schema.
        if type(value) is not sure_type:
            return False
        if enum is not None and value not in enum:
            return False
        if (low is not None and value < low) or (high is not None and value > high):
            return False
        length = len(cast(str, value)) if json_type == "string" else 0
        return (shortest is None or length >= shortest) and (longest is None or length <= longest)

    return check
