"""The record's 18 fields are one list in three places: the JobRecord type every backend returns, the
documented output schema's `required`, and the local runtime's `jobs` table (its first columns)."""

from __future__ import annotations

from pathlib import Path
from typing import get_type_hints

from cancel_job_mcp.backends.local import store
from cancel_job_mcp.record import JobRecord
from cancel_job_mcp.schemas import load_schema


def test_the_record_type_the_schema_and_the_database_name_the_same_fields_in_the_same_order(
    tmp_path: Path,
) -> None:
    fields = list(get_type_hints(JobRecord))
    schema = load_schema("cancel_job.output")
    assert fields == schema["required"] == list(schema["properties"])
    assert len(fields) == 18
    with store.connect(store.database_path(tmp_path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    assert columns[: len(fields)] == fields
    assert not set(columns[len(fields) :]) & set(fields)
