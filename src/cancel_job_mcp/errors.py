"""The tool's error vocabulary: a stable code, then a sentence a person and a model can act on."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_ARGUMENT = "invalid_argument"
    UNKNOWN_PROJECT = "unknown_project"
    BACKEND_MISCONFIGURED = "backend_misconfigured"
    NOT_FOUND = "not_found"
    NOT_CANCELLABLE = "not_cancellable"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_ERROR = "upstream_error"
    BUSY = "busy"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"


class ToolError(Exception):
    """A failure the caller can act on; its text is safe to show (no secrets, no internals)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def invalid_argument(field: str, rule: str) -> ToolError:
    return ToolError(ErrorCode.INVALID_ARGUMENT, f"{field}: {rule}")
