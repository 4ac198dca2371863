"""list_jobs followed to its end through a real MCP client, as every backend's end-to-end tests read a
listing: each page checked against the published schemas and the filters asked for."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from jsonschema import Draft7Validator

from cancel_job_mcp.schemas import load_schema

PAGE = Draft7Validator(load_schema("list_jobs.output"))
RECORD = Draft7Validator(load_schema("get_job.output"))
MOST_PAGES = 200


class Listing(NamedTuple):
    ids: list[str]
    pages: int


async def all_pages(
    session: Any,
    reference: str,
    limit: int,
    status: str | None = None,
    project: str | None = None,
    newest_first: bool = True,
) -> Listing:
    """Every job id of the listing, in its order, and how many pages it took. `session` is anything with
    the SDK client's `call_tool`. Each page fits the schema, its text is its structured content, and it
    holds at most `limit` jobs, each in `status` and of `project` when those are given; the listing is
    newest first, as documented (`newest_first=False` for a backend the README says keeps another order)."""
    arguments: dict[str, Any] = {"project_reference": reference, "limit": limit}
    if status is not None:
        arguments["status"] = status
    ids: list[str] = []
    created: list[str] = []
    cursor = None
    for pages in range(1, MOST_PAGES + 1):
        result = await session.call_tool("list_jobs", {**arguments, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, result.content[0].text
        page = result.structured_content
        assert json.loads(result.content[0].text) == page, "text and structured content disagree"
        PAGE.validate(page)
        cursor = page["next_cursor"]
        assert len(page["jobs"]) <= limit
        for job in page["jobs"]:
            RECORD.validate(job)
            assert status is None or job["status"] == status, job
            assert project is None or job["project_id"] == project, job
        ids += [job["id"] for job in page["jobs"]]
        created += [job["created_at"] for job in page["jobs"]]
        if cursor is None:
            if newest_first:
                assert created == sorted(created, reverse=True), f"not newest first: {created}"
            return Listing(ids, pages)
    raise AssertionError(f"the listing never ends: {MOST_PAGES} pages")
