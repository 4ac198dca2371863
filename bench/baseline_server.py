"""The baseline for the benchmarks: a bare low-level `mcp.server.Server` with one trivial tool.

Served the same way as cancel-job-mcp: `python bench/baseline_server.py` speaks MCP over stdio,
`python bench/baseline_server.py http PORT` serves Streamable HTTP at http://127.0.0.1:PORT/mcp through
uvicorn, with the same DNS-rebinding protection settings. The tool, `noop`, returns a fixed text.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings

NOOP = types.Tool(
    name="noop",
    description="Do nothing and say ok.",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
)
OK = types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[NOOP])


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    return OK


def build_server() -> Server[Any]:
    return Server("baseline", version="0.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(port: int, host: str = "127.0.0.1") -> None:
    import uvicorn

    hosts = ("127.0.0.1", "localhost", "[::1]")
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in hosts],
        allowed_origins=[f"http://{name}:*" for name in hosts],
    )
    app = build_server().streamable_http_app(host=host, transport_security=security)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="warning")
    await uvicorn.Server(config).serve()


def main(argv: list[str]) -> None:
    if argv[:1] == ["http"]:
        anyio.run(serve_http, int(argv[1]))
    else:
        anyio.run(serve_stdio)


if __name__ == "__main__":
    main(sys.argv[1:])
