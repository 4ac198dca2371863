"""The embedded local job runtime: SQLite state and detached supervisors on this machine."""

from .runtime import LocalBackend, submit_job

__all__ = ["LocalBackend", "submit_job"]
