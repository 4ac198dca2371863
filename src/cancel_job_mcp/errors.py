"""The tool's error vocabulary: a stable code, then a sentence a person and a model can act on.

Every text a caller sees for a refused or failed request is built here, so that one kind of failure
reads the same whichever backend reports it. Other modules raise what the named constructors below
return (grouped by the area that raises them).

The exceptions:

* ToolError - a failure the caller can act on: an `ErrorCode` and a sentence safe to show. Every
  refusal or failure of a tool call is one; the server answers it as an error result.
  + ProviderError - one raised for a provider's answer, carrying its HTTP status and Retry-After
    for the code that decides what to do next (today in backends/http/payload.py).
* BackendConfigError - a backend cannot be made from its settings (a setting only the backend can
  check, e.g. $RAY_ADDRESS). No caller sees it as such: routing, the one place that makes backends,
  catches it alone and answers `backend_misconfigured` (`cannot_start`).
"""

from __future__ import annotations

from enum import StrEnum

from .record import JobRecord
from .redact import without_url_secrets


class ErrorCode(StrEnum):
    """A failure's code, with what it means in a few words (the tool descriptions list them)."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    INVALID_ARGUMENT = "invalid_argument", "a value breaks the rule named"
    UNKNOWN_PROJECT = "unknown_project", "no backend serves the project"
    BACKEND_MISCONFIGURED = "backend_misconfigured", "the server's configuration needs a fix"
    NOT_FOUND = "not_found", "no such job in the project"
    NOT_CANCELLABLE = "not_cancellable", "the job already finished"
    UNAUTHORIZED = "unauthorized", "the provider refused the credentials"
    RATE_LIMITED = "rate_limited", "retry after the wait named"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", "the provider is unreachable: retry later"
    UPSTREAM_ERROR = "upstream_error", "the provider answered unexpectedly"
    NOT_SUPPORTED = "not_supported", "the backend cannot do this: the message says what it offers instead"
    DECLINED = "declined", "the person asked to confirm did not: nothing was changed"
    BUSY = "busy", "too many calls at once: retry"
    TIMEOUT = "timeout", "the call ran out of time"
    INTERNAL_ERROR = "internal_error", "a bug: report it"


class ToolError(Exception):
    """A failure the caller can act on; its text is safe to show (no secrets, no internals)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        message = without_url_secrets(message)  # an address quoted in it may carry a password
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BackendConfigError(Exception):
    """A backend cannot be created from its settings (e.g. its token variable is unset)."""


# What a not_found says unless the backend knows a more useful hint.
CHECK_BOTH = "A job is found only within the project it belongs to: check both values."


def invalid_argument(field: str, rule: str) -> ToolError:
    return ToolError(ErrorCode.INVALID_ARGUMENT, f"{field}: {rule}")


def not_found(job_id: str, where: str, consequence: str = "", hint: str = CHECK_BOTH) -> ToolError:
    """`where` says where the job was looked for, e.g. "in project 'web' on Veryfront"."""
    return ToolError(ErrorCode.NOT_FOUND, f"No job {job_id!r} {where}.{consequence} {hint}")


def not_cancellable(record: JobRecord, where: str) -> ToolError:
    """A job that already finished; `where` as for `not_found`."""
    finished = record["completed_at"] or record["updated_at"]
    return ToolError(
        ErrorCode.NOT_CANCELLABLE,
        f"Job {record['id']!r} {where} is already {record['status']} (since {finished}); only submitted"
        " or working jobs can be canceled. Nothing was changed.",
    )


def not_supported(backend: str, what: str, instead: str) -> ToolError:
    """`backend` (as messages name it) cannot do `what`; `instead` is a sentence saying what it offers."""
    return ToolError(ErrorCode.NOT_SUPPORTED, f"{backend} does not offer {what}. {instead}")


def refused_cursor() -> ToolError:
    return invalid_argument(
        "cursor",
        "is not a next_cursor this server returned for this project and status; pass next_cursor back"
        " unchanged, or leave cursor out to start from the newest job",
    )


def unknown_project(problem: str, served: str) -> ToolError:
    """`served` lists each backend with the projects it serves."""
    return ToolError(
        ErrorCode.UNKNOWN_PROJECT,
        f"{problem} Use a project a backend serves, or name the backend as 'NAME:PROJECT'."
        f" Backends: {served}.",
    )


def backend_off(kind: str, variable: str | None) -> str:
    """Why `KIND:REF` found no backend `KIND`, when KIND is a kind: what would turn it on."""
    table = f'a [backends.NAME] table with kind = "{kind}" in the configuration file'
    if variable is None:
        return f"A {kind} backend needs {table}."
    return (
        f"The {kind} backend is on when ${variable} is set in the server's environment (or with {table}):"
        " set it and restart the server."
    )


def cannot_start(backend: str, reason: object) -> ToolError:
    """A backend whose settings only it can check, checked when it is first used (e.g. $RAY_ADDRESS)."""
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"Backend {backend!r} cannot start: {reason}. Fix its configuration and restart the server.",
    )


def audit_unavailable(path: object, error: BaseException) -> ToolError:
    """The audit trail cannot be written: no cancel goes unrecorded, so none is made."""
    reason = getattr(error, "strerror", None) or str(error)
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The audit trail {path} cannot be written ({reason}); every cancel is recorded there first, so"
        " nothing was canceled. Make the state directory writable by this server's user.",
    )


def untrusted_state(path: str, problem: str, fix: str) -> ToolError:
    """The local runtime's state directory, or a file in it, that another user could have written."""
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The local runtime refuses {path}: {problem}, so another user could read its jobs or plant one."
        f" Nothing was read, changed or run. {fix}",
    )


def busy(limit: int) -> ToolError:
    return ToolError(
        ErrorCode.BUSY,
        f"this server is already running {limit} tool calls, its limit; nothing was done. Retry in a moment.",
    )


# What a call that ran out of time had done, as its `timeout` answer says.
NOTHING_CHANGED = "Nothing was changed."
CANCEL_ACCEPTED = (
    "The cancel was accepted, but the job had not yet stopped: check with get_job (canceling again is safe)."
)
CANCEL_UNCONFIRMED = (
    "The cancel was not confirmed (the backend did not answer in time): it may still take effect, or not;"
    " check with get_job before canceling again."
)


def timed_out(tool: str, seconds: float, what_was_done: str) -> ToolError:
    return ToolError(
        ErrorCode.TIMEOUT,
        f"{tool} did not finish within {seconds:g} seconds, this server's limit per call. {what_was_done}",
    )


def internal_error() -> ToolError:
    return ToolError(
        ErrorCode.INTERNAL_ERROR,
        "The server hit an unexpected problem and could not finish the request. Nothing more was changed;"
        " check the job's state before retrying, and report this if it persists.",
    )
