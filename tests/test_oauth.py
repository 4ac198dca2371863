"""HTTP as an OAuth 2.1 resource server, against a real authorization server (oidc-provider on
127.0.0.1): protected resource metadata, 401 challenges, JWT access tokens verified with the issuer's
published keys, each way a token can be wrong, per-tool scopes with step-up, project grants, opaque
tokens by introspection, and an issuer whose key endpoint is hostile."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.oauth import looks_like_jwt
from cancel_job_mcp.server import tool_specs

from .conftest import (
    HttpServer,
    cancel_active_jobs,
    client,
    free_port,
    run_cli,
    show,
    start_http_server,
    stop_http_server,
    submit,
    wait_until,
)
from .mcp_wire import INITIALIZE, MCP_HEADERS
from .node_tools import NODE_MODULES, TS_SDK_CLIENT, require
from .oauth_server import AuthorizationServer, authorization_server, signing_keys

pytestmark = pytest.mark.xdist_group(__name__)

TS_SDK_OAUTH = Path(__file__).resolve().parent / "node" / "ts_sdk_oauth.mjs"
STATIC_TOKEN = "static-operator-token-0123456789"
SECRET = "machine-client-secret-0123456789abcdef"
INTROSPECTOR_SECRET = "resource-server-secret-0123456789abcdef"


def machine(client_id: str, **metadata: Any) -> dict[str, Any]:
    """A confidential client that gets tokens with the client credentials grant."""
    return {
        "client_id": client_id,
        "client_secret": SECRET,
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "response_types": [],
        "scope": "jobs:read jobs:cancel",
        **metadata,
    }


@dataclass
class Deployment:
    issuer: AuthorizationServer  # the one this server trusts
    impostor: AuthorizationServer  # another issuer, signing with the same keys
    rogue: AuthorizationServer  # claims to be `issuer`, signing with a key `issuer` does not publish
    server: HttpServer
    resource: str
    other_resource: str
    opaque_resource: str

    def token(self, client_id: str, scope: str = "jobs:read jobs:cancel", resource: str | None = None) -> str:
        return self.issuer.client_credentials(client_id, SECRET, resource or self.resource, scope)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """oidc-provider three times (the issuer, an impostor, a rogue) and one server trusting the first,
    configured in its file, with a static token beside OAuth."""
    work = tmp_path_factory.mktemp("oauth")
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    other_resource = "http://127.0.0.1:1/another-mcp-server"
    opaque_resource = "http://127.0.0.1:1/opaque"
    keys = signing_keys("issuer-key")
    resources = {
        resource: {"format": "jwt"},
        other_resource: {"format": "jwt"},
        opaque_resource: {"format": "opaque"},
    }
    clients = [
        machine("ci-bot"),
        machine("reader", scope="jobs:read"),
        machine("web-bot", cjm_projects=["web-*"]),
        machine("brief", cjm_token_ttl=1),
        machine("malformed-grant", cjm_projects="web-*"),
        machine("opaque-bot", cjm_token_format="opaque", cjm_projects=["web-*"]),
        {**machine("resource-server"), "client_secret": INTROSPECTOR_SECRET, "grant_types": []},
    ]
    with authorization_server(work / "issuer", jwks=keys, resources=resources, clients=clients) as issuer:
        config = work / "config.toml"
        config.write_text(
            textwrap.dedent(f"""
                [http.oauth]
                issuer = "{issuer.issuer}"
                resource = "{resource}"
                introspection_endpoint = "{issuer.url}/token/introspection"
                leeway = 0
                """)
        )
        rogue_keys = signing_keys("issuer-key-2")
        with (
            authorization_server(
                work / "impostor", jwks=keys, resources=resources, clients=clients
            ) as impostor,
            authorization_server(
                work / "rogue", issuer=issuer.issuer, jwks=rogue_keys, resources=resources, clients=clients
            ) as rogue,
        ):
            server = start_http_server(
                tmp_path_factory.mktemp("home"),
                "--port",
                str(port),
                "--config",
                str(config),
                CANCEL_JOB_MCP_HTTP_TOKENS=STATIC_TOKEN,
                CANCEL_JOB_MCP_OAUTH_CLIENT_ID="resource-server",
                CANCEL_JOB_MCP_OAUTH_CLIENT_SECRET=INTROSPECTOR_SECRET,
            )
            try:
                yield Deployment(issuer, impostor, rogue, server, resource, other_resource, opaque_resource)
            finally:
                stop_http_server(server)
                cancel_active_jobs(server.home)


def post(url: str, token: str | None, body: Any = INITIALIZE, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(url, json=body, headers={**MCP_HEADERS, **auth, **headers}, timeout=60)


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v", ...` header."""
    value = response.headers["www-authenticate"]
    scheme, _, rest = value.partition(" ")
    assert scheme == "Bearer", value
    return dict(
        (key.strip(), raw.strip().strip('"'))
        for key, _, raw in (part.partition("=") for part in rest.split('", '))
    )


def metadata_url(deployment: Deployment) -> str:
    return f"http://127.0.0.1:{deployment.server.port}/.well-known/oauth-protected-resource/mcp"


def test_protected_resource_metadata_names_the_issuer(deployment: Deployment) -> None:
    answer = httpx.get(metadata_url(deployment), timeout=30)
    assert answer.status_code == 200
    metadata = answer.json()
    assert metadata["resource"] == deployment.resource
    assert metadata["authorization_servers"] == [deployment.issuer.issuer]
    assert metadata["scopes_supported"] == ["jobs:read", "jobs:cancel"]
    assert metadata["bearer_methods_supported"] == ["header"]


def test_no_token_gets_401_pointing_at_the_metadata(deployment: Deployment) -> None:
    answer = post(deployment.server.url, None)
    assert answer.status_code == 401
    params = challenge(answer)
    assert params["resource_metadata"] == metadata_url(deployment)
    assert params["scope"] == "jobs:read"
    assert "error" not in params  # RFC 6750: no error code when no credentials were sent


def authed(url: str, token: str, mode: str = "auto") -> tuple[Any, Any]:
    import httpx2

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    return http, client(streamable_http_client(url, http_client=http), mode)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_machine_client_calls_tools_with_a_client_credentials_token(
    deployment: Deployment, mode: str
) -> None:
    token = deployment.token("ci-bot")
    job = submit(deployment.server.home, "ops", "sleep", "600")
    http, session = authed(deployment.server.url, token, mode)
    async with http, session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        read = await session.call_tool("get_job", {"project_reference": "ops", "job_id": job["id"]})
        canceled = await session.call_tool("cancel_job", {"project_reference": "ops", "job_id": job["id"]})
    assert tools == set(tool_specs())
    assert not read.is_error, read.content
    assert read.structured_content["id"] == job["id"]
    assert not canceled.is_error, canceled.content
    assert canceled.structured_content["status"] == "canceled"
    audit = run_cli(deployment.server.home, "audit", "--json").stdout
    row = next(row for row in json.loads(audit) if row["job_id"] == job["id"])
    assert (row["transport"], row["principal"]) == ("http", "oauth sub=ci-bot client=ci-bot")
    assert token not in audit


def test_static_tokens_still_work_beside_oauth(deployment: Deployment) -> None:
    assert post(deployment.server.url, STATIC_TOKEN).status_code == 200
    wrong = post(deployment.server.url, STATIC_TOKEN + "x")
    assert wrong.status_code == 401
    assert challenge(wrong)["error"] == "invalid_token"


def forged(token: str, header: dict[str, Any] | None = None, signature: bytes | None = None) -> str:
    """`token` with its header replaced and/or its signature bytes changed."""
    head, payload, sig = token.split(".")
    if header is not None:
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    if signature is not None:
        sig = base64.urlsafe_b64encode(signature).decode().rstrip("=")
    return f"{head}.{payload}.{sig}"


def flipped(token: str) -> str:
    sig = token.rsplit(".", 1)[1]
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[10] ^= 0x01
    return forged(token, signature=bytes(raw))


def hmac_with_public_key(deployment: Deployment) -> str:
    """The old algorithm confusion: HS256 keyed with the issuer's public key (which anyone can fetch)."""
    token = deployment.token("ci-bot")
    claims = jwt.decode(token, options={"verify_signature": False})
    jwks = httpx.get(f"{deployment.issuer.url}/jwks", timeout=30).json()
    public = json.dumps(jwks["keys"][0]).encode()
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"at+jwt","kid":"issuer-key"}').decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    import hashlib
    import hmac

    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def expired(deployment: Deployment) -> str:
    token = deployment.issuer.client_credentials("brief", SECRET, deployment.resource, "jobs:read")
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    wait_until(lambda: time.time() > expiry + 0.05, timeout=10)  # the server's leeway is 0
    return token


REJECTIONS: dict[str, tuple[Callable[[Deployment], str], str]] = {
    "expired": (expired, "the token has expired"),
    "wrong audience": (
        lambda d: d.token("ci-bot", resource=d.other_resource),
        "the token was not issued for http://127.0.0.1:",
    ),
    "wrong issuer": (
        lambda d: d.impostor.client_credentials("ci-bot", SECRET, d.resource, "jobs:read"),
        "the token was not issued by http://127.0.0.1:",
    ),
    "bad signature": (lambda d: flipped(d.token("ci-bot")), "the token's signature does not verify"),
    "alg none": (
        lambda d: forged(d.token("ci-bot"), {"alg": "none", "typ": "at+jwt"}, b""),
        "the token's algorithm is not accepted",
    ),
    "hmac keyed with the public key": (hmac_with_public_key, "the token's algorithm is not accepted"),
    "a key the issuer does not publish": (
        lambda d: d.rogue.client_credentials("ci-bot", SECRET, d.resource, "jobs:read"),
        "the token is signed with a key the issuer does not publish",
    ),
    "an opaque token the issuer never issued": (
        lambda d: "opaque-but-never-issued-0123456789",
        "the token is not active (expired, revoked or unknown)",
    ),
    "an opaque token for another resource": (
        lambda d: d.issuer.client_credentials("opaque-bot", SECRET, d.other_resource, "jobs:read"),
        "the token was not issued for http://127.0.0.1:",
    ),
    "a malformed project grant": (
        lambda d: d.token("malformed-grant"),
        "the token's cjm_projects claim must be a list of project patterns",
    ),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_bad_token_gets_401_invalid_token(deployment: Deployment, case: str) -> None:
    make, description = REJECTIONS[case]
    token = make(deployment)
    answer = post(deployment.server.url, token)
    assert answer.status_code == 401, answer.text
    params = challenge(answer)
    assert params["error"] == "invalid_token"
    assert params["error_description"].startswith(description), params
    assert params["resource_metadata"] == metadata_url(deployment)
    assert token not in answer.text


def tools_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def test_a_read_token_is_asked_to_step_up_before_a_cancel(deployment: Deployment) -> None:
    job = submit(deployment.server.home, "ops", "sleep", "600")
    reader = deployment.token("reader", scope="jobs:read")
    call = tools_call("cancel_job", {"project_reference": "ops", "job_id": job["id"]})
    # The 2026-07-28 era: one request, its method and tool name in headers too.
    modern = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "cancel_job"}
    for headers in ({}, modern):
        answer = post(deployment.server.url, reader, call, **headers)
        assert answer.status_code == 403, answer.text
        params = challenge(answer)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "jobs:cancel"
        assert params["resource_metadata"] == metadata_url(deployment)
    assert show(deployment.server.home, "ops", job["id"])["status"] in ("submitted", "working")


@pytest.mark.anyio
async def test_a_read_token_lists_every_tool_and_reads(deployment: Deployment) -> None:
    job = submit(deployment.server.home, "ops", "true")
    http, session = authed(deployment.server.url, deployment.token("reader", scope="jobs:read"), "legacy")
    async with http, session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        read = await session.call_tool("get_job", {"project_reference": "ops", "job_id": job["id"]})
    assert tools == set(tool_specs())
    assert not read.is_error, read.content


@pytest.mark.anyio
async def test_a_project_outside_the_grant_is_not_found_and_untouched(deployment: Deployment) -> None:
    home = deployment.server.home
    secret = submit(home, "ops", "sleep", "600")
    web = submit(home, "web-shop", "sleep", "600")
    missing = {"project_reference": "ops", "job_id": "job-that-does-not-exist"}
    http, everything = authed(deployment.server.url, deployment.token("ci-bot"), "legacy")
    async with http, everything:
        unknown_get = await everything.call_tool("get_job", missing)
        unknown_cancel = await everything.call_tool("cancel_job", missing)
    http, granted = authed(deployment.server.url, deployment.token("web-bot"), "legacy")
    async with http, granted:
        outside_missing = await granted.call_tool("get_job", missing)
        outside_get = await granted.call_tool("get_job", {"project_reference": "ops", "job_id": secret["id"]})
        outside_cancel = await granted.call_tool(
            "cancel_job", {"project_reference": "local:ops", "job_id": secret["id"]}
        )
        outside_list = await granted.call_tool("list_jobs", {"project_reference": "ops"})
        inside = await granted.call_tool("cancel_job", {"project_reference": "web-shop", "job_id": web["id"]})

    def text(result: Any) -> str:
        assert result.is_error
        return str(result.content[0].text)

    # Word for word what a job that does not exist gets: the grant is no existence oracle.
    assert text(outside_missing) == text(unknown_get)
    assert text(outside_get) == text(unknown_get).replace("job-that-does-not-exist", secret["id"])
    assert text(outside_cancel) == text(unknown_cancel).replace("job-that-does-not-exist", secret["id"])
    assert outside_list.structured_content == {"jobs": [], "next_cursor": None}
    assert show(home, "ops", secret["id"])["status"] in ("submitted", "working")
    assert not inside.is_error, inside.content
    assert inside.structured_content["status"] == "canceled"


@pytest.mark.anyio
async def test_an_opaque_token_is_introspected_and_its_grant_kept(deployment: Deployment) -> None:
    home = deployment.server.home
    web = submit(home, "web-docs", "sleep", "600")
    token = deployment.token("opaque-bot")
    assert not looks_like_jwt(token)
    http, session = authed(deployment.server.url, token, "legacy")
    async with http, session:
        outside = await session.call_tool("list_jobs", {"project_reference": "ops"})
        again = await session.call_tool("list_jobs", {"project_reference": "ops"})  # from the cache
        canceled = await session.call_tool(
            "cancel_job", {"project_reference": "web-docs", "job_id": web["id"]}
        )
    assert outside.structured_content == again.structured_content == {"jobs": [], "next_cursor": None}
    assert not canceled.is_error, canceled.content
    assert canceled.structured_content["status"] == "canceled"
    audit = run_cli(home, "audit", "--json").stdout
    row = next(row for row in json.loads(audit) if row["job_id"] == web["id"])
    assert row["principal"] == "oauth sub=- client=opaque-bot"


@pytest.mark.slow
def test_the_typescript_sdk_client_goes_through_the_whole_flow(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Metadata discovery, dynamic registration, authorization code with PKCE and the resource
    indicator, tool calls, and a step-up from jobs:read to jobs:cancel, by a client nobody here wrote."""
    node = require(TS_SDK_CLIENT)
    job = submit(deployment.server.home, "ops", "sleep", "600")
    shutil.copy(TS_SDK_OAUTH, tmp_path / TS_SDK_OAUTH.name)
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    arguments = {"url": deployment.server.url, "account": "alice", "project": "ops", "jobId": job["id"]}
    done = subprocess.run(
        [str(node), str(tmp_path / TS_SDK_OAUTH.name), json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [json.loads(line) for line in done.stdout.splitlines()]

    def of(kind: str) -> list[dict[str, Any]]:
        return [step for step in steps if step["step"] == kind]

    client_id = of("registered")[0]["client_id"]  # dynamic registration
    first, second = of("authorize")
    # Found through our 401 and resource metadata: this resource, PKCE, the challenge's scope only.
    assert first["resource"] == deployment.resource
    assert first["code_challenge_method"] == "S256"
    assert "jobs:read" in first["scope"].split()
    assert "jobs:cancel" not in first["scope"].split()
    assert [step["prompt"] for step in of("interaction")] == ["login", "consent", "consent"]
    read_token, cancel_token = of("token")
    assert (read_token["scope"], read_token["aud"]) == ("jobs:read", deployment.resource)
    assert (read_token["sub"], read_token["client_id"]) == ("alice", client_id)
    assert set(of("tools")[0]["names"]) == set(tool_specs())
    read, cancel = of("call")
    assert (read["name"], read["isError"], read["result"]["id"]) == ("get_job", False, job["id"])
    # The cancel got 403 insufficient_scope; the client asked again with jobs:cancel and retried.
    assert of("step-up") == [{"step": "step-up", "name": "cancel_job"}]
    assert "jobs:cancel" in second["scope"].split()
    assert "jobs:cancel" in cancel_token["scope"].split()
    assert (cancel["name"], cancel["isError"], cancel["result"]["status"]) == (
        "cancel_job",
        False,
        "canceled",
    )
    assert show(deployment.server.home, "ops", job["id"])["status"] == "canceled"
    audit = json.loads(run_cli(deployment.server.home, "audit", "--json").stdout)
    assert {row["principal"] for row in audit if row["job_id"] == job["id"]} == {
        f"oauth sub=alice client={client_id}"
    }
