"""Every kind of backend, listed once: `kind -> module`. Each module declares its `SPEC` and `create()`.

Modules are imported on first use, so a server that never touches a kind never imports it; a provider
module itself is cheap to import (its HTTP client, httpx included, is imported when a backend is made).
Adding a kind is one line in `MODULES` plus the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Backend, BackendSettings

MODULES: dict[str, str] = {
    "local": "cancel_job_mcp.backends.local",
    "veryfront": "cancel_job_mcp.backends.veryfront",
    "digitalocean": "cancel_job_mcp.backends.digitalocean",
    "ionworks": "cancel_job_mcp.backends.ionworks",
    "talonic": "cancel_job_mcp.backends.talonic",
    "ray": "cancel_job_mcp.backends.ray",
    "slurm": "cancel_job_mcp.backends.slurm",
}
KINDS: tuple[str, ...] = tuple(MODULES)


@dataclass(frozen=True)
class ProviderSpec:
    """What the server knows about one kind of backend before it makes one."""

    kind: str
    display_name: str  # as messages name it, e.g. "DigitalOcean"
    default_base_url: str | None = None
    token_env: str | None = None  # the provider's standard environment variable for its secret
    token_required: bool = False
    auth_header: str = "Authorization"
    auth_scheme: str | None = "Bearer"  # None: the header carries the bare token
    page_size: int = 100  # the most jobs one provider page may hold
    address_env: str | None = None  # an environment variable that alone makes the backend usable


def spec(kind: str) -> ProviderSpec:
    """The spec of `kind` (one of KINDS; a KeyError otherwise)."""
    declared: ProviderSpec = import_module(MODULES[kind]).SPEC
    return declared


def create(settings: BackendSettings) -> Backend:
    """A backend for one `[backends.NAME]` table; raises BackendConfigError when it cannot be made."""
    backend: Backend = import_module(MODULES[settings.kind]).create(settings)
    return backend
