"""Serving the MCP server over stdio or Streamable HTTP."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


async def serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def transport_security(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: only the bound host and loopback names are accepted."""
    hosts = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(f"{name}:*" for name in hosts),
        allowed_origins=sorted(f"http://{name}:*" for name in hosts),
    )


async def serve_http(server: Server[Any], host: str, port: int, log_level: str) -> None:
    import uvicorn

    app = server.streamable_http_app(host=host, transport_security=transport_security(host))
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=log_level.lower())
    log.info("serving MCP over Streamable HTTP at http://%s:%d/mcp", host, port)
    await uvicorn.Server(config).serve()
