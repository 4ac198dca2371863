"""Every kind of backend, listed once in `ENTRIES`: its module and the environment variables it reads.
Each module declares its `SPEC` (display name, address, auth, page size) and `create()`.

Modules are imported on first use: reading the environment and the configuration needs only
`ENTRIES`, so a server that never makes a backend of a kind never imports its module (nor httpx).
Adding a kind is one line in `ENTRIES` plus the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Backend, BackendSettings


@dataclass(frozen=True)
class Entry:
    """What the server knows of a kind before it imports the kind's module: enough to read the
    environment and the configuration, so a start that makes no backend imports no provider."""

    module: str
    token_env: str | None = None  # the provider's standard environment variable for its secret
    token_required: bool = False
    address_env: str | None = None  # an environment variable that alone makes the backend usable


ENTRIES: dict[str, Entry] = {
    "local": Entry("cancel_job_mcp.backends.local"),
    "veryfront": Entry("cancel_job_mcp.backends.veryfront", "VERYFRONT_API_TOKEN", token_required=True),
    "digitalocean": Entry("cancel_job_mcp.backends.digitalocean", "DIGITALOCEAN_TOKEN", token_required=True),
    "ionworks": Entry("cancel_job_mcp.backends.ionworks", "IONWORKS_API_KEY", token_required=True),
    "talonic": Entry("cancel_job_mcp.backends.talonic", "TALONIC_API_KEY", token_required=True),
    "ray": Entry("cancel_job_mcp.backends.ray", address_env="RAY_ADDRESS"),
    "slurm": Entry("cancel_job_mcp.backends.slurm"),
    "temporal": Entry("cancel_job_mcp.backends.temporal", "TEMPORAL_API_KEY", address_env="TEMPORAL_ADDRESS"),
}
KINDS: tuple[str, ...] = tuple(ENTRIES)


@dataclass(frozen=True)
class ProviderSpec:
    """What a kind's module declares about it; the environment facts come from its `ENTRIES` line."""

    kind: str
    display_name: str  # as messages name it, e.g. "DigitalOcean"
    default_base_url: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: str | None = "Bearer"  # None: the header carries the bare token
    page_size: int = 100  # the most jobs one provider page may hold

    @property
    def token_env(self) -> str | None:
        return ENTRIES[self.kind].token_env

    @property
    def token_required(self) -> bool:
        return ENTRIES[self.kind].token_required

    @property
    def address_env(self) -> str | None:
        return ENTRIES[self.kind].address_env


def spec(kind: str) -> ProviderSpec:
    """The spec of `kind` (one of KINDS; a KeyError otherwise)."""
    declared: ProviderSpec = import_module(ENTRIES[kind].module).SPEC
    return declared


def create(settings: BackendSettings) -> Backend:
    """A backend for one `[backends.NAME]` table; raises BackendConfigError when it cannot be made."""
    backend: Backend = import_module(ENTRIES[settings.kind].module).create(settings)
    return backend
