"""The HTTP listener's connections have TCP_NODELAY, as asyncio gives TCP connections.

Without it a keep-alive client waited about 40 ms per call (Nagle's algorithm holding the body uvicorn
writes after the headers until the client's delayed ACK) on a call the server answered in 1 ms.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from cancel_job_mcp.app import HttpOptions
from cancel_job_mcp.transports import _listen


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connections_have_tcp_nodelay(host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    async def accepted_nodelay() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = _listen(HttpOptions(host=host, port=0))
        server = await asyncio.start_server(on_connection, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection(host, port)
            try:
                return await asyncio.wait_for(accepted, timeout=30)
            finally:
                writer.close()

    try:
        assert asyncio.run(accepted_nodelay()) != 0
    except OSError as error:  # a machine without IPv6 loopback
        if host == "::1":
            pytest.skip(f"no IPv6 loopback: {error}")
        raise
