"""Our MCP server behind the SDK's own stdio transport (`mcp.server.stdio.stdio_server`), with none of
stdio.py: what the bare SDK does with a line, for tests/test_stdio_sdk.py to set beside what we do.

Run as `python -m tests.bare_sdk_stdio` from the checkout, with $CANCEL_JOB_MCP_HOME set.
"""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from cancel_job_mcp.app import AppOptions, build_mcp_server
from cancel_job_mcp.config import data_home, load_config


async def main() -> None:
    home = data_home()
    server, service = build_mcp_server(AppOptions(home=home, config=load_config(None, home)))
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await service.aclose()


if __name__ == "__main__":
    anyio.run(main)
