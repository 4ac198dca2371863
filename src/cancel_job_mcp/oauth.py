"""The HTTP transport as an OAuth 2.1 resource server (the MCP authorization specification).

- Protected resource metadata (RFC 9728) at the well-known path for the MCP endpoint, served by the
  SDK's own route; a request without a valid token gets 401 and
  `WWW-Authenticate: Bearer resource_metadata="…"`, from which an MCP client finds the
  authorization server.
- JWT access tokens (RFC 9068) are verified here, with PyJWT, against the keys the issuer
  publishes: its metadata (RFC 8414, else OpenID discovery) names its `jwks_uri`. Signature by a
  published asymmetric key (never `none`, never a shared secret), `iss` equal to the issuer, `aud`
  naming this resource (RFC 8707), `exp` and `nbf` within the leeway.
- Opaque tokens are introspected (RFC 7662) when an introspection endpoint is configured, the
  answer cached until the token expires.
- Scopes: `jobs:read` for the read-only tools, `jobs:cancel` for the others. A tools/call the token
  lacks the scope for gets 403 `insufficient_scope` naming the scope, so a client can step up;
  `tools/list` lists every tool.
- A token's project grant (the claim `cjm_projects` by default) travels on the SDK's `AccessToken`
  into the tool call (grants.py).

Everything asked of the authorization server is bounded like a provider call: a total deadline,
a size cap, JSON guards, no redirects; an answer that breaks them is an outage (503, Retry-After),
never a pass. Its metadata and keys are cached; an unknown `kid` refetches the keys, at most once
every `KEYS_REFETCH_SECONDS` (oauth_issuer.py); after a failure the server is not asked again for
`FAILURE_BACKOFF_SECONDS`, and meanwhile requests fail at once.

Static bearer tokens combine with OAuth: a request bearing one of them passes as before, with
every right (the operator's own credentials: health checks, scripts); any other token must be a
valid access token. No token is ever logged: a caller is named by its subject and client id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import jwt
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
from starlette.authentication import AuthCredentials
from starlette.routing import Route

from .access import GRANT, JOBS_READ, SCOPES, caller_name, insufficient_scope_message
from .caller import TOKEN_NAME_KEY
from .config import OAuthSettings
from .grants import EVERY_PROJECT, ProjectGrant
from .http_security import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    bearer_credentials,
    replayed_body,
    send_json,
)
from .http_values import NamedToken
from .oauth_issuer import (
    ALGORITHMS,
    Cached,
    IssuerClient,
    IssuerKeys,
    IssuerUnavailable,
    TokenRejected,
)

T = TypeVar("T")

# Asymmetric algorithms only: a key set never verifies an HMAC (its "secret" would be public) or `none`.
MAX_TOKEN_BYTES = 16 * 1024
TOKEN_CACHE_SIZE = 4096  # tokens verified, and introspection answers, kept until they expire
INACTIVE_CACHE_SECONDS = 30.0


class TokenCache(Generic[T]):
    """What was learned about tokens, until a time each (wall clock), at most `size` of them, the least
    recently used dropped first; keyed by the token's SHA-256, so no token is kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, Cached] = OrderedDict()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> T | None:
        entry = self._entries.get(key)
        if entry is None or time.time() >= entry.until:
            return None
        self._entries.move_to_end(key)
        return entry.value  # type: ignore[no-any-return]

    def put(self, key: bytes, value: T, until: float) -> None:
        self._entries[key] = Cached(value, until)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class Claims:
    """What this server reads from a token's claims, however it was verified."""

    projects_claim: str

    def access_token(self, token: str, claims: Mapping[str, Any], resource: str) -> AccessToken:
        scopes = _scopes(claims)
        client_id = next(
            (claims[name] for name in ("client_id", "azp", "cid") if isinstance(claims.get(name), str)), ""
        )
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        expires = claims.get("exp")
        grant = self.grant(claims)
        return AccessToken(
            token=token,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            resource=resource,
            subject=subject,
            claims={"iss": claims.get("iss"), GRANT: grant.patterns},
        )

    def grant(self, claims: Mapping[str, Any]) -> ProjectGrant:
        if self.projects_claim not in claims:
            return EVERY_PROJECT
        value = claims[self.projects_claim]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise TokenRejected(f"the token's {self.projects_claim} claim must be a list of project patterns")
        return ProjectGrant(tuple(value))


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    """`scope` (RFC 9068: space-separated), else `scp` (a list, as some servers send)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")
    return [item for item in scp if isinstance(item, str)] if isinstance(scp, list) else []


class JwtVerifier:
    """JWT access tokens, verified with the issuer's published keys."""

    def __init__(self, settings: OAuthSettings, keys: IssuerKeys) -> None:
        self.settings = settings
        self._keys = keys
        self._claims = Claims(settings.projects_claim)
        # A client sends one token with every request: checked once (PyJWT takes ~0.5 ms), then known
        # until it expires. A key the issuer withdraws meanwhile does not end it sooner.
        self._verified: TokenCache[AccessToken] = TokenCache(TOKEN_CACHE_SIZE)

    async def verify(self, token: str) -> AccessToken:
        key = self._verified.key(token)
        known = self._verified.get(key)
        if known is not None:
            return known
        access = await self._verify(token)  # exp is required: expires_at is set
        self._verified.put(key, access, (access.expires_at or 0) + self.settings.leeway)
        return access

    async def _verify(self, token: str) -> AccessToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejected("the token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRejected("the token's algorithm is not accepted (only asymmetric signatures are)")
        kid = header.get("kid")
        key = await self._keys.key(kid if isinstance(kid, str) else None)
        if key.algorithm not in (None, algorithm):
            raise TokenRejected("the token's algorithm is not its key's")
        try:
            claims = jwt.decode(
                token,
                key=key.key.key,
                algorithms=[algorithm],
                audience=self.settings.resource,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"the token was not issued for {self.settings.resource}") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"the token was not issued by {self.settings.issuer}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRejected(f"the token has no {error.claim} claim") from None
        except (jwt.InvalidTokenError, jwt.InvalidKeyError, ValueError, TypeError):
            raise TokenRejected("the token is not a valid JWT") from None
        return self._claims.access_token(token, claims, self.settings.resource)


@dataclass(frozen=True)
class IntrospectionClient:
    endpoint: str
    client_id: str
    client_secret: str


class Introspector:
    """Opaque tokens, checked at the introspection endpoint (RFC 7662); each answer is cached until
    the token expires (an inactive one for INACTIVE_CACHE_SECONDS)."""

    def __init__(
        self, settings: OAuthSettings, client: IssuerClient, credentials: IntrospectionClient
    ) -> None:
        self.settings = settings
        self._client = client
        self._credentials = credentials
        self._claims = Claims(settings.projects_claim)
        self._answers: TokenCache[dict[str, Any]] = TokenCache(TOKEN_CACHE_SIZE)

    async def verify(self, token: str) -> AccessToken:
        key = self._answers.key(token)
        now = time.time()
        answer = self._answers.get(key)
        if answer is None:
            answer = await self._introspect(token)
            until = answer.get("exp") if answer.get("active") is True else now + INACTIVE_CACHE_SECONDS
            self._answers.put(key, answer, float(until) if isinstance(until, int | float) else now)
        return self._accepted(token, answer, now)

    async def _introspect(self, token: str) -> dict[str, Any]:
        credentials = self._credentials
        answer = await self._client.json(
            "POST",
            credentials.endpoint,
            data={"token": token, "token_type_hint": "access_token"},
            auth=(credentials.client_id, credentials.client_secret),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise IssuerUnavailable("the introspection endpoint answered without an 'active' boolean")
        return answer

    def _accepted(self, token: str, answer: dict[str, Any], now: float) -> AccessToken:
        if answer.get("active") is not True:
            raise TokenRejected("the token is not active (expired, revoked or unknown)")
        exp = answer.get("exp")
        if not isinstance(exp, int | float) or exp + self.settings.leeway < now:
            raise TokenRejected("the token has expired")
        if answer.get("iss", self.settings.issuer) != self.settings.issuer:
            raise TokenRejected(f"the token was not issued by {self.settings.issuer}")
        audience = answer.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.settings.resource not in audiences:
            raise TokenRejected(f"the token was not issued for {self.settings.resource}")
        return self._claims.access_token(token, answer, self.settings.resource)


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts, the first a JSON object: a JWS compact serialization."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict)


class OAuthVerifier:
    """This server's token verifier: JWTs locally, opaque tokens by introspection. It satisfies the
    SDK's `TokenVerifier` protocol (`verify_token`); the guard uses `check`, which says why not."""

    def __init__(self, settings: OAuthSettings, introspection: IntrospectionClient | None = None) -> None:
        self.settings = settings
        self._client = IssuerClient()
        self._jwt = JwtVerifier(settings, IssuerKeys(settings.issuer, self._client))
        self._introspector = Introspector(settings, self._client, introspection) if introspection else None

    async def check(self, token: str) -> AccessToken:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        if looks_like_jwt(token):
            return await self._jwt.verify(token)
        if self._introspector is not None:
            return await self._introspector.verify(token)
        raise TokenRejected("the token is not a JWT, and this server introspects no opaque tokens")

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            return await self.check(token)
        except (TokenRejected, IssuerUnavailable):
            return None

    async def aclose(self) -> None:
        """Close the connections to the authorization server (a serving process keeps them to its end)."""
        await self._client.aclose()


class OAuthGuard:
    """The bearer check of an OAuth resource server, around the SDK's Streamable HTTP app."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: OAuthVerifier,
        tool_scopes: Mapping[str, str],
        static_tokens: Sequence[NamedToken] = (),
        max_body_bytes: int = 1_048_576,
    ) -> None:
        self.app = AuthContextMiddleware(app)
        self.verifier = verifier
        self.tool_scopes = dict(tool_scopes)
        self._static = [(token.name, token.secret.encode()) for token in static_tokens]
        self.max_body_bytes = max_body_bytes
        resource = _url(verifier.settings.resource)
        self.metadata_url = str(build_resource_metadata_url(resource))
        self.metadata_path = urlsplit(self.metadata_url).path
        # The SDK's handler without its route's CORS wrapper (any origin): cors.Cors answers for the
        # origins this server allows, and two Access-Control-Allow-Origin headers would fail both.
        metadata = ProtectedResourceMetadata(
            resource=resource,
            authorization_servers=[_url(verifier.settings.issuer)],
            scopes_supported=list(SCOPES),
            resource_name="cancel-job-mcp",
        )
        self._metadata = Route(
            self.metadata_path, ProtectedResourceMetadataHandler(metadata).handle, methods=["GET"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.metadata_path:
            await self._metadata(scope, receive, send)
            return
        presented = bearer_credentials(scope)
        if presented is None:
            await self._challenge(send, 401, f'scope="{JOBS_READ}"', "Send an OAuth access token.")
            return
        # As BearerAuth: every static token compared, without stopping early.
        matches = [hmac.compare_digest(presented.encode("latin-1"), secret) for _, secret in self._static]
        if any(matches):
            scope[TOKEN_NAME_KEY] = self._static[matches.index(True)][0]
            await self.app(scope, receive, send)
            return
        try:
            token = await self.verifier.check(presented)
        except TokenRejected as error:
            description = str(error)
            await self._challenge(
                send, 401, f'error="invalid_token", error_description="{description}"', description
            )
            return
        except IssuerUnavailable:
            message = (
                "This server cannot verify access tokens now: the authorization server's keys are"
                " unavailable. Retry later."
            )
            await send_json(
                send, 503, {"error": "temporarily_unavailable", "message": message}, [(b"retry-after", b"5")]
            )
            return
        if not set(self.tool_scopes.values()) <= set(token.scopes) and scope["method"] == "POST":
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                message = f"The request body is larger than {self.max_body_bytes} bytes."
                await send_json(send, 413, {"error": "payload_too_large", "message": message})
                return
            missing = [needed for needed in self._scopes_needed(body) if needed not in token.scopes]
            if missing:
                await self._challenge(
                    send,
                    403,
                    f'error="insufficient_scope", scope="{missing[0]}"',
                    insufficient_scope_message(missing[0]),
                )
                return
            receive = replayed_body(body, receive)
        scope[TOKEN_NAME_KEY] = caller_name(token)  # the audit trail's principal
        scope["user"] = AuthenticatedUser(token)
        scope["auth"] = AuthCredentials(token.scopes)
        await self.app(scope, receive, send)

    def _scopes_needed(self, body: bytes) -> list[str]:
        """The scopes of the tools this POST calls (a body that is not JSON calls none: the SDK refuses
        it)."""
        try:
            parsed = json.loads(body)
        except ValueError:
            return []
        messages = parsed if isinstance(parsed, list) else [parsed]
        needed = []
        for message in messages:
            if isinstance(message, dict) and message.get("method") == "tools/call":
                params = message.get("params")
                name = params.get("name") if isinstance(params, dict) else None
                if isinstance(name, str) and name in self.tool_scopes:
                    needed.append(self.tool_scopes[name])
        return needed

    async def _challenge(self, send: Send, status: int, parameters: str, message: str) -> None:
        challenge = f'Bearer {parameters}, resource_metadata="{self.metadata_url}"'
        error = "insufficient_scope" if status == 403 else "unauthorized"
        await send_json(
            send, status, {"error": error, "message": message}, [(b"www-authenticate", challenge.encode())]
        )


def _url(text: str) -> AnyHttpUrl:
    """`text` as the SDK's URL type, unchanged: an issuer is compared as a string, so no "/" is added."""
    return TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True)).validate_python(text)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past `limit` bytes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)
