"""An authorization server that answers badly: whatever its metadata or key endpoint does (huge,
compressed into a bomb, nested, not JSON, failing, trickling, hanging, unreachable, naming another
issuer, too many keys), token checks fail closed, in bounded time and memory, and the HTTP server
keeps serving everything else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from .conftest import free_port, start_http_server, stop_http_server, wait_until
from .fakes.server import FakeProvider, Fault, HttpError, Recorded, Reply
from .oauth_server import signing_keys
from .test_oauth import STATIC_TOKEN, forged, post

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


class FakeIssuer(FakeProvider):
    """An authorization server's metadata and keys, whose key endpoint (only) takes the faults; the
    tokens are signed here with the key it publishes."""

    def __init__(self) -> None:
        super().__init__(token="unused")
        self.private = signing_keys("fake-key")["keys"][0]
        self.keys = [{k: v for k, v in self.private.items() if k not in PRIVATE_MEMBERS}]
        self.metadata_issuer: str | None = None  # another issuer's name in the metadata, when set

    def authorized(self, headers: dict[str, str]) -> bool:
        return True

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {"error": code}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        if path == "/.well-known/oauth-authorization-server":
            return Reply(200, {"issuer": self.metadata_issuer or self.url, "jwks_uri": f"{self.url}/jwks"})
        if path == "/jwks":
            return Reply(200, {"keys": self.keys})
        raise HttpError(404, "not_found", "no such path")

    def _dispatch(self, recorded: Recorded) -> Any:
        if recorded.path != "/jwks":
            self.requests.append(recorded)
            return self._answer(recorded, None)
        return super()._dispatch(recorded)

    def access_token(self, resource: str, ttl: int = 600) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": resource, "sub": "alice", "client_id": "app", "iat": now}
        claims |= {"exp": now + ttl, "scope": "jobs:read jobs:cancel"}
        key = jwt.PyJWK(self.private).key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "fake-key", "typ": "at+jwt"})


@pytest.fixture
def fake_issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as issuer:
        yield issuer  # type: ignore[misc]


RESOURCE = "http://127.0.0.1:9/mcp"


async def verify(issuer_url: str, token: str) -> Any:
    from cancel_job_mcp.config import OAuthSettings
    from cancel_job_mcp.oauth import OAuthVerifier

    verifier = OAuthVerifier(OAuthSettings(issuer_url, RESOURCE))
    try:
        return await verifier.check(token)
    finally:
        await verifier.aclose()


@pytest.mark.anyio
async def test_the_fake_issuer_answers_well_when_it_is_well(fake_issuer: FakeIssuer) -> None:
    token = await verify(fake_issuer.url, fake_issuer.access_token(RESOURCE))
    assert (token.subject, token.client_id, token.scopes) == ("alice", "app", ["jobs:read", "jobs:cancel"])


HOSTILE_KEYS = {
    Fault.HUGE_BODY: "answered more than 262144 bytes",
    Fault.GZIP_BOMB: "answered more than 262144 bytes",
    Fault.DEEP: "nested more than 64 levels",
    Fault.NOT_JSON: "the body is not JSON",
    Fault.SERVER_ERROR: "answered HTTP 500",
    Fault.RESET: "could not be reached",
    Fault.TRICKLE: "did not answer within 5 s",
    Fault.HANG: "did not answer within 5 s",
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(f, marks=pytest.mark.slow) if f in (Fault.TRICKLE, Fault.HANG) else f
        for f in HOSTILE_KEYS
    ],
)
async def test_a_hostile_key_endpoint_fails_closed(fake_issuer: FakeIssuer, fault: Fault) -> None:
    from cancel_job_mcp.oauth import IssuerUnavailable

    fake_issuer.fail_always(fault, "GET")
    with pytest.raises(IssuerUnavailable) as raised:
        await verify(fake_issuer.url, fake_issuer.access_token(RESOURCE))
    assert HOSTILE_KEYS[fault] in str(raised.value)


@pytest.mark.anyio
async def test_an_issuer_that_is_not_there_fails_closed() -> None:
    from cancel_job_mcp.oauth import IssuerUnavailable

    nowhere = f"http://127.0.0.1:{free_port()}"
    unsigned = jwt.encode({"iss": nowhere}, "k" * 32, algorithm="HS256")
    with pytest.raises(IssuerUnavailable, match="could not be reached"):
        await verify(nowhere, forged(unsigned, {"alg": "RS256", "kid": "a-key"}))


@pytest.mark.anyio
async def test_metadata_of_another_issuer_and_absurd_key_sets_are_refused(fake_issuer: FakeIssuer) -> None:
    from cancel_job_mcp.oauth import IssuerUnavailable

    fake_issuer.metadata_issuer = "https://evil.example"
    with pytest.raises(IssuerUnavailable, match="describes another issuer"):
        await verify(fake_issuer.url, fake_issuer.access_token(RESOURCE))
    fake_issuer.metadata_issuer = None
    fake_issuer.keys = fake_issuer.keys * 65
    with pytest.raises(IssuerUnavailable, match="more than 64 keys"):
        await verify(fake_issuer.url, fake_issuer.access_token(RESOURCE))


@pytest.mark.slow
def test_the_server_keeps_serving_while_the_key_endpoint_is_hostile(
    fake_issuer: FakeIssuer, tmp_path: Path
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    fake_issuer.fail_always(Fault.HUGE_BODY, "GET")
    server = start_http_server(
        tmp_path,
        "--port",
        str(port),
        "--oauth-issuer",
        fake_issuer.url,
        "--oauth-resource",
        resource,
        CANCEL_JOB_MCP_HTTP_TOKENS=STATIC_TOKEN,
    )
    try:
        token = fake_issuer.access_token(resource)
        refused = post(server.url, token)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert "authorization server's keys are unavailable" in refused.json()["message"]
        again = post(server.url, token)  # within the back-off: refused at once, the issuer not asked
        assert again.status_code == 503
        assert len(fake_issuer.requests_to("GET", "/jwks")) == 1
        assert (
            httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp").status_code == 200
        )
        assert post(server.url, STATIC_TOKEN).status_code == 200
        fake_issuer.clear_faults()
        wait_until(lambda: post(server.url, token).status_code == 200, timeout=30, interval=0.5)
    finally:
        assert stop_http_server(server) == ""


@pytest.mark.anyio
async def test_without_introspection_an_opaque_token_is_refused(fake_issuer: FakeIssuer) -> None:
    from cancel_job_mcp.oauth import TokenRejected

    with pytest.raises(TokenRejected, match="not a JWT, and this server introspects no opaque tokens"):
        await verify(fake_issuer.url, "an-opaque-token-0123456789")
    assert fake_issuer.requests == []  # nothing was asked of the issuer


@pytest.mark.anyio
async def test_the_verifier_is_the_sdks_token_verifier(fake_issuer: FakeIssuer) -> None:
    from mcp.server.auth.provider import TokenVerifier

    from cancel_job_mcp.config import OAuthSettings
    from cancel_job_mcp.oauth import OAuthVerifier

    verifier: TokenVerifier = OAuthVerifier(OAuthSettings(fake_issuer.url, RESOURCE))
    try:
        accepted = await verifier.verify_token(fake_issuer.access_token(RESOURCE))
        refused = await verifier.verify_token(fake_issuer.access_token("https://elsewhere.example/mcp"))
    finally:
        await verifier.aclose()  # type: ignore[attr-defined]
    assert accepted is not None
    assert accepted.subject == "alice"
    assert refused is None


@pytest.mark.anyio
async def test_a_verified_token_is_known_until_it_expires_and_no_longer(fake_issuer: FakeIssuer) -> None:
    from cancel_job_mcp.config import OAuthSettings
    from cancel_job_mcp.oauth import OAuthVerifier, TokenRejected

    verifier = OAuthVerifier(OAuthSettings(fake_issuer.url, RESOURCE, leeway=0))
    token = fake_issuer.access_token(RESOURCE, ttl=4)  # long enough to be checked twice on a busy machine
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    try:
        first = await verifier.check(token)
        assert await verifier.check(token) is first  # from the cache: not verified again
        wait_until(lambda: time.time() > expiry + 0.05, timeout=20)
        with pytest.raises(TokenRejected, match="the token has expired"):
            await verifier.check(token)
    finally:
        await verifier.aclose()
