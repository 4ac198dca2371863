"""A backend's secret: read once from the environment, sent only in its auth header, never shown."""

from __future__ import annotations

import os
import re
from typing import Any

from .base import BackendConfigError, BackendSettings

# What an HTTP header value can carry as a credential: visible ASCII, no spaces or control characters.
HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")
REDACTED = "[redacted]"


def read_token(settings: BackendSettings, default_env: str | None, *, required: bool) -> str | None:
    """The secret from `settings.token_env` (or `default_env`); a missing required one is a config error."""
    env = settings.token_env or default_env
    if env is None:
        if required:
            raise BackendConfigError(f"backend {settings.name!r} ({settings.kind}) needs token_env to be set")
        return None
    token = os.environ.get(env, "").strip()
    if token and not HEADER_SAFE_TOKEN.fullmatch(token):
        raise BackendConfigError(
            f"backend {settings.name!r} ({settings.kind}): the token in {env} holds whitespace or control"
            " characters, which an HTTP header cannot carry; check how the variable was set"
        )
    if not token:
        if required or settings.token_env:
            raise BackendConfigError(
                f"backend {settings.name!r} ({settings.kind}): the environment variable {env} is not set or"
                f" is empty; set it to the provider's API token (or set token_env to the variable that"
                f" holds it)"
            )
        return None
    return token


def redact(value: Any, secret: str) -> Any:
    """`value` (decoded JSON) with every occurrence of `secret` in its strings and keys replaced."""
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, list):
        return [redact(item, secret) for item in value]
    if isinstance(value, dict):
        return {redact(key, secret): redact(item, secret) for key, item in value.items()}
    return value
