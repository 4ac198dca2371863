"""What this resource server asks of the authorization server: its metadata (RFC 8414, else OpenID
discovery) and its signing keys (its `jwks_uri`), each fetched within bounds, cached, and refetched
as oauth.py's docstring says."""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import jwt

from .backends.http.answer import TooLarge, decode_json, read_body
from .errors import ProviderError

# Asymmetric algorithms only: a key set never verifies an HMAC (its "secret" would be public) or `none`.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
FETCH_SECONDS = 5.0  # the whole exchange with the authorization server: connect, headers and body
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 64
METADATA_SECONDS = 3600.0
KEYS_SECONDS = 600.0
KEYS_REFETCH_SECONDS = 30.0
FAILURE_BACKOFF_SECONDS = 5.0
USER_AGENT = "cancel-job-mcp (OAuth resource server)"


log = logging.getLogger(__name__)


class TokenRejected(Exception):
    """The token is not valid here; the message says why and is safe to show (it holds no token)."""


class IssuerUnavailable(Exception):
    """The authorization server could not be asked (or answered badly): nothing can be verified."""


@dataclass(frozen=True)
class SigningKey:
    key: jwt.PyJWK
    algorithm: str | None  # the `alg` the key set declares for it, if any


@dataclass
class Cached:
    """A value learned, and until when (a time of the clock its user keeps) it holds."""

    value: Any
    until: float


class IssuerClient:
    """Bounded GETs and POSTs to the authorization server, each answer JSON within the guards."""

    def __init__(self) -> None:
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(FETCH_SECONDS),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    async def json(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Any:
        where = urlsplit(url)._replace(query="", fragment="").geturl()
        try:
            with anyio.fail_after(FETCH_SECONDS):
                async with self._http.stream(method, url, data=data, auth=auth) as response:
                    if response.status_code != 200:
                        raise IssuerUnavailable(f"{where} answered HTTP {response.status_code}")
                    body = await read_body(
                        response.aiter_raw(),
                        response.headers.get("content-encoding"),
                        response.headers.get("content-length"),
                        MAX_DOCUMENT_BYTES,
                        "the authorization server",
                    )
            return decode_json(body, "the authorization server")
        except TimeoutError:
            raise IssuerUnavailable(f"{where} did not answer within {FETCH_SECONDS:g} s") from None
        except TooLarge:
            raise IssuerUnavailable(f"{where} answered more than {MAX_DOCUMENT_BYTES} bytes") from None
        except ProviderError as error:
            raise IssuerUnavailable(f"{where}: {error.message}") from None
        except httpx.HTTPError as error:
            raise IssuerUnavailable(f"{where} could not be reached ({type(error).__name__})") from None

    async def aclose(self) -> None:
        await self._http.aclose()


class IssuerKeys:
    """The issuer's metadata and signing keys, fetched when first needed and cached."""

    def __init__(self, issuer: str, client: IssuerClient) -> None:
        self.issuer = issuer
        self._client = client
        self._lock = anyio.Lock()
        self._jwks_uri: Cached | None = None
        self._keys: dict[str | None, SigningKey] = {}
        self._keys_until = 0.0  # monotonic; 0: never fetched
        self._fetched_at = -KEYS_REFETCH_SECONDS
        self._failed: Cached | None = None  # the last failure's message, repeated during the backoff

    async def key(self, kid: str | None) -> SigningKey:
        keys = await self._current(refetch_for=None)
        if kid not in keys:
            keys = await self._current(refetch_for=kid)  # the issuer may have rotated its keys
        if kid in keys:
            return keys[kid]
        raise TokenRejected("the token is signed with a key the issuer does not publish")

    async def _current(self, refetch_for: str | None) -> dict[str | None, SigningKey]:
        """The cached keys while fresh (and holding `refetch_for`, when given), else fetched ones."""
        if time.monotonic() < self._keys_until and refetch_for is None:
            return self._keys
        async with self._lock:  # one fetch at a time; those who waited use its result
            now = time.monotonic()
            recent = now - self._fetched_at < KEYS_REFETCH_SECONDS
            if now < self._keys_until and (refetch_for is None or refetch_for in self._keys or recent):
                return self._keys
            if self._failed is not None and now < self._failed.until:
                raise IssuerUnavailable(self._failed.value)
            try:
                fetched = await self._fetch()
            except IssuerUnavailable as error:
                log.warning("cannot fetch the OAuth issuer's keys: %s", error)
                self._failed = Cached(str(error), time.monotonic() + FAILURE_BACKOFF_SECONDS)
                raise
            self._failed = None
            self._fetched_at = time.monotonic()
            self._keys, self._keys_until = fetched, self._fetched_at + KEYS_SECONDS
            return fetched

    async def _fetch(self) -> dict[str | None, SigningKey]:
        return signing_keys(await self._client.json("GET", await self._jwks_url()))

    async def _jwks_url(self) -> str:
        if self._jwks_uri is not None and time.monotonic() < self._jwks_uri.until:
            return str(self._jwks_uri.value)
        metadata = await self.metadata()
        uri = metadata.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise IssuerUnavailable(f"the metadata of {self.issuer} names no jwks_uri")
        self._jwks_uri = Cached(uri, time.monotonic() + METADATA_SECONDS)
        return uri

    async def metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata, else OpenID discovery; its `issuer` must be ours, exactly."""
        problems = []
        for url in metadata_urls(self.issuer):
            try:
                document = await self._client.json("GET", url)
            except IssuerUnavailable as error:
                problems.append(str(error))
                continue
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                problems.append(f"{url} describes another issuer")
                continue
            return document
        raise IssuerUnavailable("; ".join(problems))


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: RFC 8414's path-inserted URL, then OpenID's appended one."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


def signing_keys(document: Any) -> dict[str | None, SigningKey]:
    """The usable signing keys of a JWK set, by `kid`; unusable entries are skipped, a bad set refused."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise IssuerUnavailable("the issuer's JWK set has no list of keys")
    if len(entries) > MAX_KEYS:
        raise IssuerUnavailable(f"the issuer's JWK set holds more than {MAX_KEYS} keys")
    keys: dict[str | None, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        if "alg" in entry and entry["alg"] not in ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, binascii.Error):
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else None] = SigningKey(key, entry.get("alg"))
    return keys
