"""The published tool surface is a contract: `tools/list` must equal the reviewed snapshot.

Regenerate deliberately with `UPDATE_SNAPSHOTS=1 python -m pytest tests/test_tools_list.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cancel_job_mcp.schemas import load_schema

from .conftest import REPO, HttpServer, client, stdio_server

SNAPSHOT = REPO / "tests" / "snapshots" / "tools_list.json"
# What a client that negotiated MCP Apps (tests/test_panel.py) lists: the same tools, pointing at the panel.
APPS_SNAPSHOT = REPO / "tests" / "snapshots" / "tools_list_apps.json"
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}


async def list_tools(target: Any, mode: str, **options: Any) -> dict[str, Any]:
    async with client(target, mode, **options) as session:
        assert session.protocol_version == ERAS[mode]
        result = await session.list_tools()
    answer: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    answer.pop("_meta", None)  # the server-info stamp of the 2026-07-28 era
    answer.pop("resultType", None)
    return answer


def check_snapshot(answer: dict[str, Any], snapshot: Path = SNAPSHOT) -> None:
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(json.dumps(answer, indent=2, sort_keys=True) + "\n")
    assert answer == json.loads(snapshot.read_text())


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_over_stdio(home: Path, mode: str) -> None:
    answer = await list_tools(stdio_server(home), mode)
    check_snapshot(answer)
    tool = answer["tools"][0]
    assert tool["inputSchema"] == load_schema("cancel_job.input")
    assert tool["outputSchema"] == load_schema("cancel_job.output")
    assert tool["annotations"] == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
        "openWorldHint": True,
    }
    assert tool["title"] == "Cancel job"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_over_http(http_server: HttpServer, mode: str) -> None:
    check_snapshot(await list_tools(http_server.url, mode))


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_for_a_client_with_mcp_apps(http_server: HttpServer, mode: str) -> None:
    from .test_panel import APPS_EXTENSION

    check_snapshot(await list_tools(http_server.url, mode, extensions=[APPS_EXTENSION]), APPS_SNAPSHOT)
