"""The tool's error vocabulary: a stable code, then a sentence a person and a model can act on.

Every text a caller sees for a refused or failed request is built in this package, so that one kind
of failure reads the same whichever backend reports it: here, and for the backends reached over HTTP
(their settings, their providers' answers, Slurm) in `errors.providers`. Other modules raise what the
named constructors return (grouped by the area that raises them), handing them facts; none constructs
these exceptions itself (tests/test_errors_built_here.py checks every module of src/).

The exceptions:

* ToolError - a failure the caller can act on: an `ErrorCode` and a sentence safe to show. Every
  refusal or failure of a tool call is one; the server answers it as an error result.
  + ProviderError - one raised for a provider's answer, carrying its HTTP status, Retry-After and
    the provider's own error numbers for the code that decides what to do next.
* BackendConfigError - a backend cannot be made from its settings (a setting only the backend can
  check, e.g. $RAY_ADDRESS). No caller sees it as such: routing, the one place that makes backends,
  catches it alone and answers `backend_misconfigured` (`cannot_start`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from ..record import JobRecord
from ..redact import without_url_secrets

if TYPE_CHECKING:
    from pathlib import Path


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


class ProviderError(ToolError):
    """A `ToolError` for a provider's answer: `status` is its HTTP status, if there was one; `retry_after`
    the seconds it asked us to wait; `numbers` the provider's own error numbers (Slurm's), if it gave any."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        numbers: tuple[int, ...] = (),
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.retry_after = retry_after
        self.numbers = numbers


class BackendConfigError(Exception):
    """A backend cannot be created from its settings (e.g. its token variable is unset)."""


# --- what any backend, the routing and the server say ----------------------------------------------

# What a not_found says unless the backend knows a more useful hint.
CHECK_BOTH = "A job is found only within the project it belongs to: check both values."
# What a not_found met by a cancel adds (its `consequence`).
NOTHING_CANCELED = " Nothing was canceled."


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


# A backend as unknown_project lists it: its name and its `projects` patterns.
Served = tuple[str, Sequence[str]]


def no_backend_named(
    name: str, served: Iterable[Served], *, is_kind: bool = False, variable: str | None = None
) -> ToolError:
    """`NAME:REF` with no backend NAME; when NAME is a backend kind, what would turn that backend on
    (`variable`: the environment variable that does, if any)."""
    problem = f"There is no backend named {name!r}."
    if is_kind:
        problem += " " + _backend_off(name, variable)
    return _unknown_project(problem, served)


def no_backend_serves(project_reference: str, served: Iterable[Served]) -> ToolError:
    return _unknown_project(f"No backend serves project {project_reference!r}.", served)


def _unknown_project(problem: str, served: Iterable[Served]) -> ToolError:
    backends = "; ".join(
        f"{name} ({', '.join(projects) or 'only as ' + name + ':REF'})" for name, projects in served
    )
    return ToolError(
        ErrorCode.UNKNOWN_PROJECT,
        f"{problem} Use a project a backend serves, or name the backend as 'NAME:PROJECT'."
        f" Backends: {backends or 'none'}.",
    )


def _backend_off(kind: str, variable: str | None) -> str:
    table = f'a [backends.NAME] table with kind = "{kind}" in the configuration file'
    if variable is None:
        return f"A {kind} backend needs {table}."
    return (
        f"The {kind} backend is on when ${variable} is set in the server's environment (or with {table}):"
        " set it and restart the server."
    )


# What a backend that does not run jobs itself says of the local runtime's own operations.
LocalOperation = Literal["submit", "prune", "a listing across projects"]
_LOCAL_ONLY: dict[LocalOperation, str] = {
    "submit": "submit starts jobs on the local runtime only: name a local backend, as 'local:PROJECT'."
    " Nothing was submitted.",
    "prune": "Its provider keeps and removes its jobs.",
    "a listing across projects": "List one project's jobs (list_jobs).",
}


def local_only(backend: str, kind: str, operation: LocalOperation) -> ToolError:
    return not_supported(f"backend {backend!r} ({kind})", operation, _LOCAL_ONLY[operation])


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


def busy(limit: int) -> ToolError:
    return ToolError(
        ErrorCode.BUSY,
        f"this server is already running {limit} tool calls, its limit; nothing was done. Retry in a moment.",
    )


# What a call that ran out of time had done, as its `timeout` answer says (NOTHING_CHANGED is also what
# a read says when the local runtime cannot use its state directory).
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


# --- the tools' arguments (arguments.py) ----------------------------------------------------------

MAX_REPORTED_PROBLEMS = 5


def invalid_arguments(problems: Iterable[str]) -> ToolError:
    """Every problem of a call's arguments, each "field: rule", the first few of them."""
    return ToolError(ErrorCode.INVALID_ARGUMENT, "; ".join(list(problems)[:MAX_REPORTED_PROBLEMS]))


# Each problem of a call's arguments, as "field: rule" (`accepted` lists the tool's fields).


def missing_field(name: str, accepted: str) -> str:
    return f"{name}: is required (the tool takes: {accepted})"


def unaccepted_field(shown: str, accepted: str) -> str:
    return f"{shown}: is not an accepted field (the tool takes only: {accepted})"


def wrong_type(field: str, expected: str, got: str) -> str:
    return f"{field}: must be of type {expected}, got {got}"


def not_a_member(field: str, members: str, got: str) -> str:
    return f"{field}: must be one of {members}; got {got}"


# --- a person's confirmation of a cancel (confirm.py) ---------------------------------------------
# `what` names the jobs, e.g. "job 'x' in project 'p'".


def cannot_confirm(what: str) -> ToolError:
    """A cancel that needs a person's confirmation, asked of a client that cannot ask one."""
    return ToolError(
        ErrorCode.DECLINED,
        f"Canceling {what} needs a person's confirmation, and this client cannot ask for one (it"
        " declares no MCP elicitation support, or its connection cannot carry a question back)."
        " Nothing was changed. Use a client that supports elicitation, or ask the server's operator"
        ' to set fallback = "allow" (or cancel = "never") in its [confirm] configuration, or to'
        " serve with --confirm-fallback allow.",
    )


def not_confirmed(what: str, *, dismissed: bool) -> ToolError:
    """The person asked said no, or closed the question (`dismissed`)."""
    how = "closed the question without answering" if dismissed else "said no"
    return ToolError(
        ErrorCode.DECLINED, f"The person asked to confirm canceling {what} {how}. Nothing was changed."
    )


# --- the key that signs list cursors (cursors.py) -------------------------------------------------


def cursor_key_unreadable(path: Path, error: OSError) -> ToolError:
    return _unusable_cursor_key(path, f"it cannot be read, or made, as a file ({error.strerror})")


def cursor_key_too_short(path: Path, size: int, minimum: int) -> ToolError:
    """An empty or short key would make cursors forgeable: it is refused rather than signed with."""
    return _unusable_cursor_key(path, f"it holds {size} bytes, fewer than {minimum}")


def _unusable_cursor_key(path: Path, problem: str) -> ToolError:
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The list cursor key {path} is unusable: {problem}. Remove it (a new key is made at the next"
        " listing; cursors handed out before stop working). Nothing was changed.",
    )


# --- the local runtime and its state directory (backends/local/) ----------------------------------


def local_job_not_found(job_id: str, project: str, home: Path, consequence: str = "") -> ToolError:
    return not_found(
        job_id,
        f"in project {project!r} on the local runtime (state directory {home})",
        consequence,
        "A job is found only within the project it was submitted to, and by servers using the same"
        " state directory: check all three.",
    )


def state_of_another_user(path: Path, owner: str, user: str) -> ToolError:
    """The state directory, or a file in it, belongs to `owner`, not to this server's `user` (or root)."""
    return _untrusted_state(
        path,
        f"it belongs to another user ({owner})",
        f"Use a state directory of your own (--home or CANCEL_JOB_MCP_HOME), or, if {owner} is you"
        f" by another name, give it to this user: chown -R {user} {path}",
    )


def state_writable_by_others(path: Path, mode: int) -> ToolError:
    return _untrusted_state(
        path,
        f"it is writable by group or others (mode {mode:04o})",
        f"Make it writable by its owner only: chmod go-w {path}",
    )


def _untrusted_state(path: Path, problem: str, fix: str) -> ToolError:
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The local runtime refuses {path}: {problem}, so another user could read its jobs or plant one."
        f" Nothing was read, changed or run. {fix}",
    )


def database_deleted(database: Path) -> ToolError:
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The local runtime's database {database} was deleted while this server ran. Restart"
        " the server, or submit a job to start a new database.",
    )


_DISK_FULL = "the disk is full"


def unusable_state(home: Path, database: Path, error: BaseException, consequence: str) -> ToolError:
    """A state directory that cannot be used (an SQLite or OS error), named with its problem, never a
    traceback; a full disk may pass, every other problem needs a fix."""
    problem = _state_problem(error, database)
    code = ErrorCode.UPSTREAM_UNAVAILABLE if problem == _DISK_FULL else ErrorCode.BACKEND_MISCONFIGURED
    return ToolError(
        code, f"The local runtime cannot use its state directory {home}: {problem}. {consequence}"
    )


def _state_problem(error: BaseException, database: Path) -> str:
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL" or getattr(error, "errno", None) == errno.ENOSPC:
        return _DISK_FULL
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or isinstance(
        error, PermissionError
    ):
        return "it cannot be written (read-only, or no permission)"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return f"{database} is not a usable SQLite database (corrupt?); move it aside to start a new one"
    if name.startswith("SQLITE_CANTOPEN"):
        return f"{database} cannot be opened (missing directory, read-only, or no permission)"
    if isinstance(error, FileExistsError | NotADirectoryError):
        return "a file is in the way (it must be a directory)"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename or database})"
    return str(error)


def log_unreadable(job_id: str, path: Path, error: OSError | None) -> ToolError:
    """A job's log file that cannot be read: `error` says why, None that it is not a regular file."""
    problem = "it is not a regular file" if error is None else error.strerror or str(error)
    return ToolError(
        ErrorCode.BACKEND_MISCONFIGURED,
        f"The log of job {job_id!r} ({path}) cannot be read: {problem}. Nothing was changed.",
    )
