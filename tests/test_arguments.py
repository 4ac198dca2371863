"""The tools' argument rules (the published schema, the identifier rules) and the error texts."""

from __future__ import annotations

from typing import Any

import pytest

from cancel_job_mcp.arguments import ArgumentValidator
from cancel_job_mcp.errors import ErrorCode, ToolError, not_cancellable, not_found
from cancel_job_mcp.identifiers import check_identifier
from cancel_job_mcp.record import make_record
from cancel_job_mcp.schemas import load_schema
from cancel_job_mcp.server import ERROR_CODES, tool_specs

LIST_JOBS = ArgumentValidator(load_schema("list_jobs.input"))


def refused(arguments: Any) -> str:
    with pytest.raises(ToolError) as raised:
        LIST_JOBS.validate(arguments)
    assert raised.value.code == ErrorCode.INVALID_ARGUMENT
    return raised.value.message


def test_valid_arguments_come_back_as_given() -> None:
    arguments = {"project_reference": "local:web", "status": "working", "limit": 5, "cursor": "abc"}
    assert LIST_JOBS.validate(arguments) == arguments
    assert LIST_JOBS.validate({"project_reference": "x"}) == {"project_reference": "x"}


def test_each_schema_problem_is_named_by_field_and_rule() -> None:
    assert (
        refused(None)
        == "project_reference: is required (the tool takes: project_reference, status, limit, cursor)"
    )
    assert refused({"project_reference": 7}) == "project_reference: must be of type string, got integer"
    assert refused({"project_reference": "p", "limit": 0}).startswith(
        "limit: 0 is less than the minimum of 1"
    )
    assert refused({"project_reference": "p", "limit": 2.5}) == (
        "limit: must be of type integer or null, got number"
    )
    assert refused({"project_reference": "p", "status": "running"}).startswith(
        'status: must be one of "submitted", "working", "completed", "failed", "canceled", null; got'
    )


def test_several_problems_are_reported_together_and_a_long_field_name_is_cut() -> None:
    message = refused({"limit": "x", "z" * 500: 1})
    assert "project_reference: is required" in message
    assert "limit: must be of type integer or null, got string" in message
    assert "'zzzzzzzzzzzzzzzzzzzz'... (500 characters): is not an accepted field" in message
    assert len(message) < 600


@pytest.mark.parametrize("value", ["web", "local:web", "a.b_c-d", "x" * 128, "my-backend:p.1"])
def test_project_references_that_follow_the_rule(value: str) -> None:
    check_identifier("project_reference", value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", "an empty string"),
        ("../etc", "'../etc'"),
        (".hidden", "'.hidden'"),
        ("my project", "'my project'"),
        ("ünïcode", "'ünïcode'"),
        ("a:b:c", "'a:b:c'"),
        ("x" * 129, "'xxxxxxxxxxxxxxxxxxxx'... (129 characters)"),
    ],
)
def test_project_references_that_break_the_rule_are_named(value: str, shown: str) -> None:
    with pytest.raises(ToolError) as raised:
        check_identifier("project_reference", value)
    assert raised.value.code == ErrorCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("project_reference: must be a project id or slug of 1-128")
    assert raised.value.message.endswith(f"; got {shown}")


def test_a_job_id_takes_no_backend_prefix() -> None:
    check_identifier("job_id", "job_Qk3v9x2LrT0a")
    with pytest.raises(
        ToolError, match=r"^invalid_argument: job_id: must be a job id of 1-128 .*; got 'local:j'$"
    ):
        check_identifier("job_id", "local:j")


def test_the_tool_descriptions_list_every_error_code_with_its_meaning() -> None:
    for code in ErrorCode:
        assert f"{code} ({code.meaning})" in ERROR_CODES
    for spec in tool_specs().values():
        assert spec.tool.description is not None
        assert spec.tool.description.endswith(ERROR_CODES)


def test_not_found_and_not_cancellable_read_the_same_for_every_backend() -> None:
    assert str(not_found("j-1", "in project 'web' on Veryfront", " Nothing was canceled.")) == (
        "not_found: No job 'j-1' in project 'web' on Veryfront. Nothing was canceled. A job is found only"
        " within the project it belongs to: check both values."
    )
    done = make_record(
        id="j-1", project_id="web", name="n", status="completed", target="t",
        created_at="2026-01-01T00:00:00.000Z", updated_at="2026-01-01T00:05:00.000Z",
        completed_at="2026-01-01T00:04:00.000Z",
    )  # fmt: skip
    assert str(not_cancellable(done, "on Veryfront")) == (
        "not_cancellable: Job 'j-1' on Veryfront is already completed (since 2026-01-01T00:04:00.000Z); only"
        " submitted or working jobs can be canceled. Nothing was changed."
    )
