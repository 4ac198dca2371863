"""The job panel: an MCP Apps view (the `io.modelcontextprotocol/ui` extension) for the job tools.

The view is one packaged HTML document (built by `ui/build.py`), served as a `ui://` resource. Clients
that negotiated the extension see `_meta.ui.resourceUri` on the tools the panel shows results of, and
render the panel in a sandboxed frame; every other client gets the tools exactly as before.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from mcp import MCPError, types
from mcp.server import Server, ServerRequestContext
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, client_supports_apps

PANEL_URI = "ui://cancel-job-mcp/panel.html"
SHOWN_BY_PANEL = ("list_jobs", "get_job", "get_job_logs")
TOOLS_PLACEHOLDER = '<meta name="cancel-job-mcp-tools" content="">'


def panel_html(tool_names: Iterable[str]) -> str:
    """The packaged document, told which tools this server serves (a read-only one has no cancel_job,
    so the panel shows no Cancel button)."""
    document = files(__package__).joinpath("ui", "panel.html").read_text(encoding="utf-8")
    served = html.escape(" ".join(sorted(tool_names)))
    return document.replace(TOOLS_PLACEHOLDER, f'<meta name="cancel-job-mcp-tools" content="{served}">', 1)


class JobPanel:
    """The panel's resource, and the tool listing that points at it for clients with the extension."""

    def __init__(self, tools: Iterable[types.Tool]) -> None:
        tools = list(tools)
        self.listing_with_panel = types.ListToolsResult(tools=[_pointing_at_panel(tool) for tool in tools])
        text = panel_html(tool.name for tool in tools)
        self._resource = types.Resource(
            uri=PANEL_URI,
            name="job-panel",
            title="Jobs",
            description="A table of a project's jobs, with live status, log tail and a Cancel button.",
            mime_type=APP_MIME_TYPE,
            size=len(text.encode()),
        )
        ui_meta: dict[str, Any] = {"ui": {"prefersBorder": True}}
        self._contents = types.TextResourceContents(
            uri=PANEL_URI, mime_type=APP_MIME_TYPE, text=text, _meta=ui_meta
        )

    @staticmethod
    def wanted_by(ctx: ServerRequestContext[Any]) -> bool:
        return client_supports_apps(ctx)

    def install(self, server: Server[Any]) -> None:
        """Advertise the extension (as the SDK's `Apps` does, with no settings) and serve the resource."""
        server.extensions[EXTENSION_ID] = {}
        server.add_request_handler("resources/list", types.PaginatedRequestParams, self.list_resources)
        server.add_request_handler("resources/read", types.ReadResourceRequestParams, self.read_resource)

    async def list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[self._resource])

    async def read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        if str(params.uri) != PANEL_URI:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {params.uri}")
        return types.ReadResourceResult(contents=[self._contents])


def _pointing_at_panel(tool: types.Tool) -> types.Tool:
    if tool.name not in SHOWN_BY_PANEL:
        return tool
    return tool.model_copy(update={"meta": {**(tool.meta or {}), "ui": {"resourceUri": PANEL_URI}}})
