"""The job panel (MCP Apps): the packaged view is a fresh build of ui/, small and self-contained; a client
that negotiates the extension finds it; a client that does not sees exactly what it saw before.

The panel in a real browser, hosted through the extension's AppBridge, is tests/test_panel_browser.py."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from cancel_job_mcp.panel import PANEL_URI, panel_html

from .conftest import REPO, HttpServer, client, show, stdio_server, submit, wait_until

APPS_EXTENSION = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
PACKAGED = REPO / "src" / "cancel_job_mcp" / "ui" / "panel.html"
MAX_BYTES = 150_000


def fresh_build() -> str:
    spec = importlib.util.spec_from_file_location("ui_build", REPO / "ui" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: str = module.build()
    return built


def test_the_packaged_panel_is_a_fresh_build_of_its_sources() -> None:
    assert PACKAGED.read_text(encoding="utf-8") == fresh_build(), "run: python ui/build.py"


def test_the_panel_is_small_and_fetches_nothing() -> None:
    document = panel_html(["cancel_job", "get_job", "list_jobs"])
    assert len(document.encode()) < MAX_BYTES
    # Everything is inline: no external script, stylesheet, image or font, and no code that could fetch.
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", document)
    for fetching in ("fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "import(", "@import", "url("):
        assert fetching not in document


def test_the_panel_is_told_which_tools_the_server_serves() -> None:
    document = panel_html(["get_job", "list_jobs"])
    assert '<meta name="cancel-job-mcp-tools" content="get_job list_jobs">' in document
    assert 'content="">' not in document


def read_panel(session: Any) -> Any:
    return session.read_resource(PANEL_URI)


@pytest.mark.anyio
async def test_a_client_with_mcp_apps_finds_the_panel_over_stdio(home: Path) -> None:
    async with client(stdio_server(home), extensions=[APPS_EXTENSION]) as session:
        assert session.server_capabilities.extensions == {EXTENSION_ID: {}}
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        for name in ("list_jobs", "get_job", "get_job_logs"):
            assert tools[name].meta == {"ui": {"resourceUri": PANEL_URI}}
        assert tools["cancel_job"].meta is None
        resources = (await session.list_resources()).resources
        assert [(r.uri, r.mime_type) for r in resources] == [(PANEL_URI, APP_MIME_TYPE)]
        (contents,) = (await read_panel(session)).contents
        assert contents.mime_type == APP_MIME_TYPE
        assert contents.text == panel_html(tools)
        assert contents.meta == {"ui": {"prefersBorder": True}}


@pytest.mark.anyio
async def test_a_read_only_server_tells_the_panel_it_cannot_cancel(home: Path) -> None:
    async with client(stdio_server(home, "serve", "--read-only"), extensions=[APPS_EXTENSION]) as session:
        (contents,) = (await read_panel(session)).contents
        served = re.search(r'<meta name="cancel-job-mcp-tools" content="([^"]*)">', contents.text)
        assert served is not None
        assert "list_jobs" in served[1].split()
        assert "cancel_job" not in served[1].split()


@pytest.mark.anyio
async def test_an_unknown_ui_resource_is_a_clear_error(home: Path) -> None:
    from mcp import MCPError

    async with client(stdio_server(home), extensions=[APPS_EXTENSION]) as session:
        with pytest.raises(MCPError, match=r"Unknown resource: ui://cancel-job-mcp/other\.html"):
            await session.read_resource("ui://cancel-job-mcp/other.html")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_without_mcp_apps_sees_no_change(http_server: HttpServer, mode: str) -> None:
    """Same tools (the reviewed snapshot, no _meta) and the same results, with or without the extension:
    only the listing differs, by `_meta.ui` on the tools the panel shows."""
    job = submit(http_server.home, "demo", "true")
    wait_until(lambda: show(http_server.home, "demo", job["id"])["status"] == "completed")
    call = {"project_reference": "demo", "job_id": job["id"]}
    answers = {}
    for extensions in ([], [APPS_EXTENSION]):
        async with client(http_server.url, mode, extensions=extensions) as session:
            listing = (await session.list_tools()).model_dump(by_alias=True, exclude_none=True, mode="json")
            result = await session.call_tool("get_job", call)
            answers[bool(extensions)] = (listing["tools"], result.model_dump(by_alias=True, mode="json"))
    plain_tools, plain_result = answers[False]
    apps_tools, apps_result = answers[True]
    snapshot = json.loads((REPO / "tests" / "snapshots" / "tools_list.json").read_text())
    assert plain_tools == snapshot["tools"]
    assert all("_meta" not in tool for tool in plain_tools)
    assert [{k: v for k, v in tool.items() if k != "_meta"} for tool in apps_tools] == plain_tools
    assert plain_result == apps_result
