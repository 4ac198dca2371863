"""CORS on the wire: an origin named with --allowed-origin gets preflights answered and readable
responses (a 401 included); any other origin keeps its 403, loopback pages included.

A real browser page on another origin is in tests/test_panel_browser.py."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from .conftest import HttpServer
from .mcp_wire import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.xdist_group(__name__)

TOKEN = "cors-token-0123456789abcdef"
ALLOWED = "https://chat.example.test"


@pytest.fixture(scope="module")
def server(module_http_servers: Callable[..., HttpServer]) -> HttpServer:
    return module_http_servers("--allowed-origin", ALLOWED, CANCEL_JOB_MCP_HTTP_TOKENS=TOKEN)


def preflight(server: HttpServer, origin: str, headers: str = "content-type") -> httpx.Response:
    return httpx.options(
        server.url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_a_preflight_from_an_allowed_origin_is_answered(server: HttpServer) -> None:
    answer = preflight(server, ALLOWED, "authorization,content-type,mcp-protocol-version")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert set(answer.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "DELETE"}
    allowed = set(answer.headers["access-control-allow-headers"].split(", "))
    assert {
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    } <= allowed
    assert answer.headers["vary"] == "Origin"


def test_a_preflight_allows_param_headers_but_no_others(server: HttpServer) -> None:
    answer = preflight(server, ALLOWED, "content-type, Mcp-Param-Region, x-secret-thing, mcp-param-")
    allowed = set(answer.headers["access-control-allow-headers"].split(", "))
    assert "mcp-param-region" in allowed
    assert "x-secret-thing" not in allowed
    assert "mcp-param-" not in allowed


def test_responses_to_an_allowed_origin_are_readable_and_expose_the_session(server: HttpServer) -> None:
    answer = httpx.post(
        server.url,
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Origin": ALLOWED, "Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert answer.headers["access-control-expose-headers"] == "Mcp-Session-Id, WWW-Authenticate"
    assert answer.headers["mcp-session-id"]


def test_a_401_is_readable_too_so_a_page_can_see_the_challenge(server: HttpServer) -> None:
    answer = httpx.post(server.url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": ALLOWED})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "WWW-Authenticate" in answer.headers["access-control-expose-headers"]
    assert answer.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.test",  # unknown: HostOriginGuard's 403
        "https://chat.example.test:8443",  # the allowed name on another port
        "http://chat.example.test",  # the allowed name over another scheme
        "http://127.0.0.1:5173",  # loopback pages pass the guard, but get no CORS
    ],
)
def test_other_origins_keep_getting_403(server: HttpServer, origin: str) -> None:
    answer = preflight(server, origin)
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden_origin"
    assert "access-control-allow-origin" not in answer.headers


def test_a_loopback_page_gets_no_cors_headers_on_its_requests(server: HttpServer) -> None:
    answer = httpx.post(
        server.url,
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Origin": "http://localhost:5173", "Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


def test_without_allowed_origins_a_preflight_is_not_answered(
    module_http_servers: Callable[..., HttpServer],
) -> None:
    answer = preflight(module_http_servers(), "http://127.0.0.1:5173")
    assert answer.status_code != 204
    assert "access-control-allow-origin" not in answer.headers


def test_a_stateless_server_allows_only_post(module_http_servers: Callable[..., HttpServer]) -> None:
    answer = preflight(module_http_servers("--stateless", "--allowed-origin", ALLOWED), ALLOWED)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-methods"] == "POST"
