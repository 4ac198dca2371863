"""The published schemas are the documented contract, word for word."""

from __future__ import annotations

import json

from cancel_job_mcp.schemas import load_schema

from .conftest import REPO

DOC_NAME = "veryfront-mcp-cancel_job-tool.txt"
FIXTURE_DOCS = REPO / "tests" / "fixtures" / "api-docs"


def documented_schemas(text: str) -> tuple[dict[str, object], dict[str, object]]:
    decoder = json.JSONDecoder()

    def schema_after(heading: str) -> dict[str, object]:
        start = text.index(f"{heading}\n{{") + len(heading) + 1
        schema, _ = decoder.raw_decode(text, start)
        return schema  # type: ignore[no-any-return]

    return schema_after("Input schema"), schema_after("Output schema")


def test_schemas_equal_the_document() -> None:
    documented_input, documented_output = documented_schemas((FIXTURE_DOCS / DOC_NAME).read_text())
    assert load_schema("cancel_job.input") == documented_input
    assert load_schema("cancel_job.output") == documented_output


def test_output_schema_has_the_documented_shape() -> None:
    output = load_schema("cancel_job.output")
    assert len(output["required"]) == 18
    assert output["additionalProperties"] is False
    assert output["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert output["properties"]["exit_code"]["type"] == ["number", "null"]


def test_packaged_schemas_equal_the_repository_files() -> None:
    for path in (REPO / "schemas").glob("*.json"):
        assert load_schema(path.stem) == json.loads(path.read_text()), path.name
