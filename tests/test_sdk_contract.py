"""The private pieces of our dependencies we lean on, pinned: when an upgrade moves one, this file fails
first and says what to change, instead of a feature breaking quietly. Each is private because no public
API does the job (said where it is used)."""

from __future__ import annotations

import inspect

import h11


def test_the_sdk_tracing_middleware_is_where_server_py_removes_it() -> None:
    from mcp.server import Server
    from mcp.server._otel import OpenTelemetryMiddleware

    server: Server[object] = Server("probe")
    assert any(isinstance(m, OpenTelemetryMiddleware) for m in server.middleware), (
        "mcp.server.Server no longer installs OpenTelemetryMiddleware by default: revisit"
        " server.build_server, which drops it when no tracer provider is configured"
    )
    assert hasattr(__import__("mcp.server._otel", fromlist=["otel_span"]), "otel_span"), (
        "mcp.server._otel.otel_span moved: tests/test_tracing.py watches it"
    )


def test_uvicorn_h11_protocol_has_the_hooks_the_header_deadline_overrides() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for hook in ("connection_made", "data_received", "on_response_complete", "connection_lost"):
        assert inspect.isfunction(getattr(H11Protocol, hook, None)), (
            f"uvicorn's H11Protocol has no {hook}: transports.HeaderDeadlineProtocol must follow it"
        )
    assert "conn" in inspect.getsource(H11Protocol.__init__), "H11Protocol no longer keeps its h11 `conn`"
    assert h11.IDLE is not None


def test_the_sdk_client_discover_timeout_the_tests_raise_still_exists() -> None:
    from mcp.client import session

    assert isinstance(getattr(session, "DISCOVER_TIMEOUT_SECONDS", None), int | float), (
        "mcp.client.session.DISCOVER_TIMEOUT_SECONDS moved: tests/conftest.client sets it"
    )


def test_the_bench_in_process_streams_exist() -> None:
    from mcp.shared import _context_streams

    assert callable(getattr(_context_streams, "create_context_streams", None)), (
        "mcp.shared._context_streams.create_context_streams moved: bench/phases.py uses it"
    )


def test_the_session_manager_pieces_the_session_cap_wraps_still_exist() -> None:
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    assert inspect.isfunction(getattr(StreamableHTTPSessionManager, "_admit_session", None)), (
        "StreamableHTTPSessionManager._admit_session moved: sessions.py wraps it to make room at the cap"
    )
    assert "_server_instances" in inspect.getsource(StreamableHTTPSessionManager.__init__), (
        "StreamableHTTPSessionManager no longer keeps _server_instances: sessions.py reads it"
    )
    assert "idle_scope" in inspect.getsource(StreamableHTTPServerTransport), (
        "the SDK's HTTP transport has no idle_scope: sessions.py closes the least recently used one by it"
    )
