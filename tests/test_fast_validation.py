"""Arguments that plainly fit a tool's schema are accepted without jsonschema; the verdict never changes.

The quick check made from each input schema may only say "valid" where jsonschema says so too; whatever
it is unsure of goes to jsonschema, which decides and words the problems.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from cancel_job_mcp.arguments import ArgumentValidator
from cancel_job_mcp.errors import ErrorCode, ToolError
from cancel_job_mcp.schemas import load_schema

TOOLS = ("cancel_job", "get_job", "list_jobs")
SCHEMAS = {tool: load_schema(f"{tool}.input") for tool in TOOLS}
OURS = {tool: ArgumentValidator(schema) for tool, schema in SCHEMAS.items()}
JSONSCHEMA = {tool: Draft7Validator(schema) for tool, schema in SCHEMAS.items()}
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
JSON_VALUES = st.recursive(
    SCALARS | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)
FIELD_VALUES = (
    JSON_VALUES
    | st.sampled_from(["submitted", "working", "canceled", "done", "", "job_1"])
    | st.sampled_from([0, 1, 20, 100, 101, -1, 1.0, 20.5, True, False])
)


def arguments_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    names = [*schema["properties"], "extra", "jobId"]
    return st.dictionaries(st.sampled_from(names), FIELD_VALUES, max_size=len(names))


@pytest.mark.parametrize("tool", TOOLS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_verdict_is_jsonschemas(tool: str, data: st.DataObject) -> None:
    arguments = data.draw(arguments_for(SCHEMAS[tool]))

    if JSONSCHEMA[tool].is_valid(arguments):
        given = {name: value for name, value in arguments.items() if value is not None}  # null: not given
        assert OURS[tool].validate(arguments) == given
    else:
        with pytest.raises(ToolError) as refused:
            OURS[tool].validate(arguments)
        assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_valid_calls_do_not_import_jsonschema_and_the_first_bad_one_does() -> None:
    script = """
import sys
from cancel_job_mcp.arguments import ArgumentValidator
from cancel_job_mcp.errors import ToolError
from cancel_job_mcp.schemas import load_schema
listing = ArgumentValidator(load_schema("list_jobs.input"))
cancel = ArgumentValidator(load_schema("cancel_job.input"))
cancel.validate({"project_reference": "local:demo", "job_id": "job_1"})
listing.validate({"project_reference": "demo", "status": "working", "limit": 100, "cursor": "c"})
print("jsonschema" in sys.modules)
try:
    listing.validate({"project_reference": "demo", "limit": 0})
except ToolError as error:
    print(error)
print("jsonschema" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    before, refusal, after = done.stdout.splitlines()
    assert before == "False"
    assert refusal.startswith("invalid_argument: limit: ")
    assert after == "True"
