"""The embedded local job runtime: SQLite state and detached supervisors on this machine."""

from pathlib import Path

from ..base import BackendSettings
from ..registry import ProviderSpec
from .runtime import LocalBackend, prune_jobs, submit_job

__all__ = ["SPEC", "LocalBackend", "create", "prune_jobs", "submit_job"]

SPEC = ProviderSpec(kind="local", display_name="the local runtime")


def create(settings: BackendSettings) -> LocalBackend:
    return LocalBackend(Path(settings.options["home"]), name=settings.name)
