"""The embedded local job runtime: SQLite state and detached supervisors on this machine.

Kept light: every job's supervisor runs as `python -m cancel_job_mcp.backends.local` and imports this
package, so the runtime (anyio, the error texts) is imported only when a backend is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..registry import ProviderSpec

if TYPE_CHECKING:
    from ..base import BackendSettings
    from .runtime import LocalBackend

SPEC = ProviderSpec(kind="local", display_name="the local runtime")


def create(settings: BackendSettings) -> LocalBackend:
    from .runtime import LocalBackend

    return LocalBackend(Path(settings.options["home"]), name=settings.name)
