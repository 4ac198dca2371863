"""The tool's error vocabulary: a stable code, then a sentence a person and a model can act on.

Every text a caller sees for a refused or failed request is built here, so that one kind of failure
reads the same whichever backend reports it. Other modules raise what the named constructors below
return (grouped by the area that raises them), handing them facts; none constructs these exceptions
itself (tests/test_errors_built_here.py checks every module of src/).

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
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from .record import JobRecord
from .redact import without_url_secrets

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


# --- Ray (backends/ray.py) ---------------------------------------------------------------------------


def ray_job_not_found(job_id: str, cluster: str, address: str, consequence: str = "") -> ToolError:
    hint = "Give the job's submission id (e.g. raysubmit_...), as `ray job list` shows it."
    return not_found(job_id, f"{on_ray_cluster(cluster)} ({address})", consequence, hint)


def on_ray_cluster(cluster: str) -> str:
    """Where a Ray job is, as messages say it."""
    return f"on Ray cluster {cluster!r}"


def ray_did_not_stop(job_id: str, status: str) -> ToolError:
    """Ray answered `{"stopped": false}` for a job it still reports as not finished."""
    return ToolError(
        ErrorCode.NOT_CANCELLABLE,
        f"Ray did not stop job {job_id!r}: it reports the job {status} but has no running"
        " supervisor for it (the job may be finishing right now). Read the job again in a moment.",
    )


def ray_driver_not_stoppable(job_id: str, cluster: str) -> ToolError:
    """Ray stops only jobs submitted through its Jobs API (it answers "Can only stop submission type
    jobs")."""
    return ToolError(
        ErrorCode.NOT_CANCELLABLE,
        f"Job {job_id!r} {on_ray_cluster(cluster)} is not a submitted job: Ray can stop only"
        " jobs submitted through the Jobs API, not a driver script that called ray.init."
        " Nothing was changed.",
    )


# --- Temporal (backends/temporal.py) -----------------------------------------------------------------


def in_temporal_namespace(namespace: str) -> str:
    """Where a workflow is, as messages say it."""
    return f"in Temporal namespace {namespace!r}"


def workflow_not_found(workflow_id: str, namespace: str, address: str, consequence: str = "") -> ToolError:
    hint = "Give the workflow id, as `temporal workflow list` shows it, and its namespace."
    return not_found(workflow_id, f"{in_temporal_namespace(namespace)} ({address})", consequence, hint)


# What get_job_logs' not_supported offers instead: Temporal keeps no job output.
TEMPORAL_LOGS_INSTEAD = (
    "A workflow's record of what it did is its event history: GET"
    " /api/v1/namespaces/{namespace}/workflows/{workflow id}/history on the HTTP API, or"
    " `temporal workflow show --workflow-id ID`; what its activities print stays with the workers."
    " get_job gives its status and, once closed, its failure or terminate reason."
)


def api_key_in_clear(backend: str, variable: str, host: str) -> BackendConfigError:
    """An API key is never sent over plain http to a host other than this machine."""
    return BackendConfigError(
        f"backend {backend!r} (temporal): {variable} is set, and the API key would go"
        f" unencrypted to {host}; use an https:// address"
    )


# --- A hosted backend's settings (backends/http, backends/slurm: checked when the backend is made) -----


def _backend(name: str, kind: str) -> str:
    return f"backend {name!r} ({kind})"


def setting_missing(name: str, kind: str, key: str) -> BackendConfigError:
    return BackendConfigError(f"{_backend(name, kind)} needs {key} to be set")


def token_unset(name: str, kind: str, variable: str) -> BackendConfigError:
    return BackendConfigError(
        f"{_backend(name, kind)}: the environment variable {variable} is not set or is empty; set it to the"
        " provider's API token (or set token_env to the variable that holds it)"
    )


def token_unsendable(name: str, kind: str, variable: str) -> BackendConfigError:
    return BackendConfigError(
        f"{_backend(name, kind)}: the token in {variable} holds whitespace or control characters, which an"
        " HTTP header cannot carry; check how the variable was set"
    )


# `source` is where the address came from (base_url or an environment variable), `shown` the address as
# it may be shown (without secrets, cut short).


def address_not_a_url(
    name: str, kind: str, source: str, shown: str, what: str, instead: str
) -> BackendConfigError:
    """`what` says what the address must be, `instead` what to give in its place."""
    return BackendConfigError(f"{_backend(name, kind)}: {source}={shown!r} is not {what}. {instead}")


def address_with_credentials(name: str, kind: str, source: str, credential: str) -> BackendConfigError:
    """`credential` says where the secret goes instead of the URL."""
    return BackendConfigError(
        f"{_backend(name, kind)}: {source} holds a user name or password (user:password@), which this server"
        f" never sends in a URL; remove it, and {credential}"
    )


def address_port_invalid(name: str, kind: str, source: str, shown: str, port: str) -> BackendConfigError:
    """`port` says which port the service listens on by default."""
    return BackendConfigError(
        f"{_backend(name, kind)}: {source}={shown!r} has a port that is not a number from 1 to 65535; {port}"
    )


def slurm_address_missing(name: str) -> BackendConfigError:
    return BackendConfigError(
        f"{_backend(name, 'slurm')} needs base_url: slurmrestd's address, e.g. http://slurm-head:6820 or"
        " unix:/run/slurmrestd/slurmrestd.socket"
    )


def slurm_socket_relative(name: str, configured: str) -> BackendConfigError:
    return BackendConfigError(
        f"{_backend(name, 'slurm')}: base_url {configured!r} must give the socket's absolute path, as in"
        " unix:/run/slurmrestd/slurmrestd.socket"
    )


def slurm_option_not_text(name: str, key: str) -> BackendConfigError:
    return BackendConfigError(f"{_backend(name, 'slurm')}: {key} must be a string")


# --- Provider answers (backends/http: what a provider answered, or did not) -------------------------


# What get_job_logs' not_supported offers instead, for a provider that serves no job output: by default,
# the job's record; where the record is all a provider offers, `record_for_logs` says what it carries.
READ_THE_RECORD = (
    "Read the job with get_job: its status and failed_reason say how it is doing or why it failed."
)
TALONIC_LOGS_INSTEAD = (
    "It offers the rows a job has processed, through its results endpoint (GET /v1/jobs/{id}/results), and"
    " the job's status and error through get_job."
)
SLURM_LOGS_INSTEAD = (
    "Slurm writes a job's output to the file its StdOut names (`scontrol show job ID`), on the node that ran"
    " the job: read it there, or set read_output = true in this backend's table when this machine shares"
    " that file system."
)


def record_for_logs(carried: str) -> str:
    """`carried` is what the record's failed_reason carries, e.g. "Veryfront's failure detail"."""
    return (
        "Its job record is what it offers: get_job shows the job's status, and its failed_reason carries"
        f" {carried}."
    )


def malformed(provider: str, detail: str) -> ProviderError:
    """An answer we cannot read; `detail` says what was wrong with it."""
    return ProviderError(
        ErrorCode.UPSTREAM_ERROR,
        f"{provider} answered in an unexpected form ({detail}). This is not something a retry fixes;"
        " if it persists, the provider's API may have changed.",
    )


def answer_too_large(provider: str, limit: int) -> ProviderError:
    return malformed(
        provider,
        f"the answer is larger than {limit} bytes, the most this backend reads (max_response_bytes); none of"
        " it was used",
    )


def answer_too_slow(provider: str, address: str, deadline: float) -> ProviderError:
    return ProviderError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{provider} at {address} did not send its whole answer within {deadline:g} s (the backend's"
        " total_timeout, by default connect_timeout + read_timeout); try again later.",
    )


def unreachable(provider: str, address: str, problem: str) -> ProviderError:
    """`problem` says what went wrong, e.g. "did not answer in time (ReadTimeout)"."""
    return ProviderError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{provider} at {address} {problem}; check the network and the backend's base_url, then try again.",
    )


def log_url_failed(provider: str, status: int) -> ProviderError:
    """A URL the provider handed out for a job's logs answered an error."""
    return ProviderError(
        ErrorCode.UPSTREAM_ERROR,
        f"a log URL {provider} handed out answered HTTP {status}; try again later (such URLs expire).",
    )


def rejected_as_invalid(provider: str, status: int, said: str) -> ProviderError:
    """`said` is the provider's own message, as " Veryfront said: ..." (or "")."""
    return ProviderError(
        ErrorCode.INVALID_ARGUMENT,
        f"{provider} rejected the request as invalid (HTTP {status}).{said}",
        status=status,
    )


def credentials_refused(provider: str, status: int, token_env: str | None) -> ProviderError:
    """HTTP 401 or 403: which variable to check, or that no token is sent at all."""
    problem = "rejected the credentials" if status == 401 else "refused access with these credentials"
    check = (
        f"Check that the environment variable {token_env} holds a valid {provider} token with access to"
        " this project (the server reads it at start)."
        if token_env
        else f"This server sends no token to {provider}: set token_env in its [backends.NAME] table to the"
        " environment variable that holds one, and restart the server."
    )
    return ProviderError(
        ErrorCode.UNAUTHORIZED, f"{provider} {problem} (HTTP {status}). {check}", status=status
    )


def provider_found_none(provider: str, what: str) -> ProviderError:
    """HTTP 404; `what` names the thing asked for, e.g. "job 'abc'"."""
    return ProviderError(
        ErrorCode.NOT_FOUND,
        f"{provider} found no {what} (HTTP 404). Check the project reference and the job id.",
        status=404,
    )


def refused_by_its_state(provider: str, what: str, said: str) -> ProviderError:
    """HTTP 409: the thing's current state forbids the change."""
    return ProviderError(
        ErrorCode.NOT_CANCELLABLE,
        f"{provider} refused the change because of the {what}'s current state (HTTP 409).{said}",
        status=409,
    )


def rate_limited(provider: str, wait: float | None) -> ProviderError:
    when = f"retry after {math.ceil(wait)} s" if wait is not None else "wait a minute before retrying"
    return ProviderError(
        ErrorCode.RATE_LIMITED,
        f"{provider} is rate limiting this token (HTTP 429); {when}.",
        status=429,
        retry_after=wait,
    )


def provider_failing(provider: str, status: int, said: str, wait: float | None) -> ProviderError:
    """HTTP 5xx; `wait` is what a 503 asked for."""
    return ProviderError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{provider} is failing (HTTP {status}); try again shortly.{said}",
        status=status,
        retry_after=wait,
    )


def unexpected_status(provider: str, status: int, said: str) -> ProviderError:
    return ProviderError(
        ErrorCode.UPSTREAM_ERROR,
        f"{provider} answered with an unexpected HTTP {status}.{said}",
        status=status,
    )


def cancel_refused_while_active(provider: str, job_id: str, status: int | None, current: str) -> ToolError:
    """The provider refused a cancel as if the job had finished, but it reads `current` (still active)."""
    return ToolError(
        ErrorCode.NOT_CANCELLABLE,
        f"{provider} refused to cancel job {job_id!r} (HTTP {status}) although it reads {current}; it may be"
        " changing state: read it again before retrying.",
    )


# --- Slurm (backends/slurm: slurmrestd's answers, a job's output file) -------------------------------


def slurm_credentials_refused(
    address: str, status: int, token_env: str | None, user_name: str | None
) -> ProviderError:
    """HTTP 401 or 403 from slurmrestd: which JWT to check, or to send one."""
    if token_env is None:
        fix = (
            "set token_env to the variable holding a Slurm JWT (`scontrol token` prints one as SLURM_JWT=...)"
        )
    else:
        whose = f" of the user {user_name!r}" if user_name else ""
        fix = (
            f"check that the environment variable {token_env} holds a valid, unexpired Slurm JWT{whose}"
            " (`scontrol token` makes one; the server reads it at start)"
        )
    return ProviderError(
        ErrorCode.UNAUTHORIZED,
        f"slurmrestd at {address} refused the request (HTTP {status}): {fix}.",
        status=status,
    )


# `said` is Slurm's own words for its errors, `numbers` their error numbers.


def slurm_job_unknown(status: int, said: str, numbers: tuple[int, ...]) -> ProviderError:
    return ProviderError(
        ErrorCode.NOT_FOUND, f"Slurm knows no such job: {said}.", status=status, numbers=numbers
    )


def slurm_access_denied(status: int, said: str, numbers: tuple[int, ...]) -> ProviderError:
    return ProviderError(
        ErrorCode.UNAUTHORIZED,
        f"Slurm refused the request (HTTP {status}): {said}. The job belongs to a user that slurmrestd's"
        " user (or the token's) may not act for; nothing was canceled: ask its owner or an administrator.",
        status=status,
        numbers=numbers,
    )


def slurm_controller_unreachable(status: int, said: str, numbers: tuple[int, ...]) -> ProviderError:
    return ProviderError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"slurmrestd could not reach the Slurm controller (HTTP {status}): {said}. Try again shortly.",
        status=status,
        numbers=numbers,
    )


def slurm_refused(status: int, said: str, numbers: tuple[int, ...]) -> ProviderError:
    return ProviderError(
        ErrorCode.UPSTREAM_ERROR,
        f"Slurm refused the request (HTTP {status}): {said}.",
        status=status,
        numbers=numbers,
    )


def output_unreadable(job_id: str, path: str, node: str, reason: object) -> ToolError:
    """A job's output file that this machine cannot read (`reason`: why)."""
    return ToolError(
        ErrorCode.NOT_SUPPORTED,
        f"The output of job {job_id!r} is in {path} on {node}, which this machine cannot read ({reason}):"
        " read it there.",
    )
