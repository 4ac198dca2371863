"""The errors of the backends reached over HTTP (backends/http, the hosted providers, Ray, Temporal,
Slurm): their settings, their answers, and what they offer instead of logs. Part of the error
vocabulary (the package's docstring): the sentences are written here, the hierarchy and the codes are
the package's."""

from __future__ import annotations

import math

from . import BackendConfigError, ErrorCode, ProviderError, ToolError, not_found

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


# What Slurm's errors in an answer come to, by the code the backend gives them (slurm/mapping.py decides
# it from their numbers): {said} is Slurm's own words, {status} the answer's HTTP status.
_SLURM_REFUSALS = {
    ErrorCode.NOT_FOUND: "Slurm knows no such job: {said}.",
    ErrorCode.UNAUTHORIZED: (
        "Slurm refused the request (HTTP {status}): {said}. The job belongs to a user that slurmrestd's"
        " user (or the token's) may not act for; nothing was canceled: ask its owner or an administrator."
    ),
    ErrorCode.UPSTREAM_UNAVAILABLE: (
        "slurmrestd could not reach the Slurm controller (HTTP {status}): {said}. Try again shortly."
    ),
    ErrorCode.UPSTREAM_ERROR: "Slurm refused the request (HTTP {status}): {said}.",
}


def slurm_refusal(code: ErrorCode, status: int, said: str, numbers: tuple[int, ...]) -> ProviderError:
    """Slurm's errors in an answer as `code` (one of _SLURM_REFUSALS'), keeping their `numbers`."""
    message = _SLURM_REFUSALS[code].format(status=status, said=said)
    return ProviderError(code, message, status=status, numbers=numbers)


def output_unreadable(job_id: str, path: str, node: str, reason: object) -> ToolError:
    """A job's output file that this machine cannot read (`reason`: why)."""
    return ToolError(
        ErrorCode.NOT_SUPPORTED,
        f"The output of job {job_id!r} is in {path} on {node}, which this machine cannot read ({reason}):"
        " read it there.",
    )
