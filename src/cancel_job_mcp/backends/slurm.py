"""The `slurm` backend: jobs of a Slurm cluster, through the Slurm REST API (`slurmrestd`).

Address: `base_url` is `http(s)://HOST:6820` or `unix:/path/to/slurmrestd.sock` (a local slurmrestd
on a unix socket, run by the user whose jobs it serves). The API version (`api_version`, e.g.
"v0.0.40") is read from `/openapi/v3` on first use when not configured: the newest `/slurm/v0.0.NN/`
it serves, v0.0.38 at least. Both answer shapes are read, field by field: v0.0.38 (Slurm 22.05:
`job_state` a string, times plain epoch seconds, `exit_code` the raw wait status) and v0.0.40+
(Slurm 23.11+: `job_state` a list, the base state then flags; numbers as `{set, infinite, number}`;
`exit_code` as `{status, return_code, signal}`).

Auth: with `token_env`, its value (a JWT from `scontrol token`) is sent as `X-SLURM-USER-TOKEN`, and the
option `user_name` as `X-SLURM-USER-NAME`. Without, nothing is sent (a unix socket authenticates the
connecting process).

Projects: a project is one Slurm account, partition or user, as the option `scope` says ("account",
the default, "partition" or "user"). A job outside the project is `not_found`, and nothing is sent to
cancel it: every cancel reads the job first.

Requests: read `GET /slurm/{v}/job/{id}`, cancel `DELETE /slurm/{v}/job/{id}` (Slurm sends SIGTERM,
then SIGKILL after its KillWait), list `GET /slurm/{v}/jobs` (every job the controller still holds;
Slurm has no paging, so this backend filters, sorts newest first by submit time then id, and pages
itself; the cursor is `<submit_time>:<job id>` of the previous page's last job). That answer holds
the whole queue, so `max_response_bytes` defaults to 64 MiB here (4 MiB for other providers). A
cancel of a job already terminal is `not_cancellable` before anything is sent; a DELETE that Slurm
refuses with 2021 ("already completing or completed": the job finished meanwhile) reads the job
again to say which.

Errors: HTTP 401/403 is `unauthorized`, naming the token variable (or saying to set one). An answer
whose `errors` hold error_number 2017 ("Invalid job id specified"), or 9002 with "Unable to find
JobId=" (an array task that does not exist), is `not_found`; 2002 ("Access/permission denied": a job of
a user slurmrestd may not act for) `unauthorized`; 1000-1099 (slurmrestd could not talk to slurmctld)
`upstream_unavailable`; any other is `upstream_error` quoting Slurm's `error` and `description`, with
our token and anything shaped like a JWT redacted.

Arrays: a task is `J_T`. A task still pending with its whole array (a held array) has no record of its
own, so slurmrestd does not find it by that id, though it cancels it by that id: it is read from its
array's record (its `array_task_string` lists the pending tasks), and once canceled it leaves that list
without a record of its own, so the cancel answers the record it read, canceled. Several tasks are
`J_[1-3,7]`: slurmrestd cancels them by that id but reads none, so they are read from their array as
one record (`tasks_record`: the first task's fields, a status one of them has). A cancel of a job
already canceled answers its record.

Mapping, Slurm state -> status (the base state and the flags of `job_state`):

- PENDING -> submitted (also while requeued or held: REQUEUED, REQUEUE_HOLD, RESV_DEL_HOLD ... are flags).
- RUNNING, SUSPENDED -> working.
- COMPLETING, CONFIGURING, STAGE_OUT, SIGNALING, RESIZING, STOPPED, POWER_UP_NODE (flags; in v0.0.38
  COMPLETING replaces the base state) -> working, whatever the base state: the job's processes may still
  run. A canceled job is CANCELLED+COMPLETING until they are gone; cancel_job waits through it.
- COMPLETED -> completed.
- FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, PREEMPTED -> failed, and
  failed_reason says the state, Slurm's reason (e.g. NonZeroExitCode, TimeLimit) and description.
- CANCELLED -> canceled.
- Any other base state is an `upstream_error` naming it (a status guessed wrong could hide a live job).

Fields: id = job_id; name = the job name (else the id); target = the batch script's `command` when
Slurm knows it (sbatch gives the script path), else the name; project_id = the project asked for;
batch_id = the array's job id for a task of a job array; timeout_seconds = time_limit (minutes) * 60,
0 when unlimited or unset; backoff_limit = 0 (Slurm requeues by policy, not by a count); exit_code
(terminal jobs that ran) = the script's exit status, 128+N when a signal N ended it (decoded from the
wait status in v0.0.38, from status/return_code/signal in v0.0.40+); created_at = submit_time;
started_at = start_time once the job has left PENDING and got nodes (Slurm gives a job canceled
while pending a start_time, but it never started); completed_at = end_time once terminal;
updated_at = the latest of the three. `config` holds account, partition, user, nodes, Slurm's reason
(`state_reason`, null for "None"), the raw `job_state` (as a list) and the cluster.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import ErrorCode, ToolError, invalid_argument, not_cancellable, not_found
from ..record import TERMINAL_STATUSES, JobRecord, JobStatus, is_terminal, make_record, utc_now
from .base import Backend, BackendConfigError, BackendSettings
from .checks import checked_segment
from .credentials import REDACTED
from .flows import ProviderPage, cancel_with_followup, cursor_position, cut_page
from .hosted import HostedBackend
from .logs import JobLogs, LogQuery, Selection, select_file
from .payload import ProviderError, latest, malformed, normalize_timestamp
from .registry import ProviderSpec

if TYPE_CHECKING:
    from .client import HttpClient

SPEC = ProviderSpec(
    kind="slurm",
    display_name="Slurm",
    auth_header="X-SLURM-USER-TOKEN",
    auth_scheme=None,
    page_size=1000,
)
PROVIDER = SPEC.display_name
USER_NAME_HEADER = "X-SLURM-USER-NAME"
UNIX_PREFIX = "unix:"
OLDEST_VERSION = 38  # v0.0.38, Slurm 22.05
LISTING_LIMIT = 64 * 1024 * 1024  # the default max_response_bytes: some 6,000-20,000 jobs
SCOPES = ("account", "partition", "user")
SCOPE_FIELDS: Mapping[str, str] = {"account": "account", "partition": "partition", "user": "user_name"}
INVALID_JOB_ID = 2017  # ESLURM_INVALID_JOB_ID: "Invalid job id specified"
ALREADY_DONE = 2021  # ESLURM_ALREADY_DONE: "Job/step already completing or completed"
ACCESS_DENIED = 2002  # ESLURM_ACCESS_DENIED: the job belongs to a user slurmrestd may not act for
EMPTY_RESULT = 9002  # slurmrestd's "entry not found": with "Unable to find JobId=...", an unknown job
COMMUNICATION_ERRORS = range(1000, 1100)  # slurmrestd could not reach slurmctld: try again later
ERROR_TEXT_LIMIT = 500
JOB_ID = re.compile(r"[0-9]{1,10}(_[0-9]{1,10}|_\[[0-9,:-]{1,200}\])?")
JOB_ID_RULE = (
    "must be a Slurm job id: digits, as squeue shows it (an array task as 1234_5, several as 1234_[1-3,7])"
)
# Which status a set of array tasks read as one record has: the first that any of them has.
_TASKS_STATUS_ORDER = (JobStatus.WORKING, JobStatus.SUBMITTED, JobStatus.CANCELED, JobStatus.FAILED)
API_VERSION = re.compile(r"v0\.0\.([0-9]{2})")
_SERVED_VERSION = re.compile(r"/slurm/(v0\.0\.[0-9]{2})/jobs/?")
_CURSOR = re.compile(r"([0-9]{1,20}):([0-9]{1,10})")
FAILED_REASON_LIMIT = 500

BASE_STATES: Mapping[str, JobStatus] = {
    "PENDING": JobStatus.SUBMITTED,
    "RUNNING": JobStatus.WORKING,
    "SUSPENDED": JobStatus.WORKING,
    "COMPLETED": JobStatus.COMPLETED,
    "CANCELLED": JobStatus.CANCELED,
    **dict.fromkeys(
        ("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"),
        JobStatus.FAILED,
    ),
}
# Flags under which the job's processes may still run, whatever its base state says.
STILL_RUNNING_FLAGS = frozenset(
    {"COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED", "POWER_UP_NODE"}
)


# --- the mapping (pure) ----------------------------------------------------------------------------


def number(value: Any) -> int | None:
    """A Slurm number: a plain integer (v0.0.38) or `{set, infinite, number}` (v0.0.40+); None if unset
    or infinite."""
    if isinstance(value, dict):
        if value.get("set") is not True or value.get("infinite") is True:
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def job_states(payload: dict[str, Any]) -> list[str]:
    """`job_state` as a list: [base state, flags...] (v0.0.40+), or the one state of v0.0.38."""
    raw = payload.get("job_state")
    states = [raw] if isinstance(raw, str) else raw
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        raise malformed(PROVIDER, f"job {payload.get('job_id')!r} has no job_state")
    return [state.upper() for state in states]


def status_of(states: list[str], job_id: str) -> JobStatus:
    if STILL_RUNNING_FLAGS.intersection(states):
        return JobStatus.WORKING
    for state in states:
        if state in BASE_STATES:
            return BASE_STATES[state]
    raise malformed(PROVIDER, f"job {job_id!r} is in a state this server does not know: {'+'.join(states)}")


def exit_code_of(value: Any) -> int | None:
    """The exit status as a shell reports it: the script's own, or 128+N when signal N ended it."""
    if isinstance(value, dict):  # v0.0.40+: {status: [...], return_code: {...}, signal: {id: {...}, name}}
        status = value.get("status")
        statuses = status if isinstance(status, list) else [status]
        signal = value.get("signal")
        signal_id = number(signal.get("id")) if isinstance(signal, dict) else None
        if ("SIGNALED" in statuses or "CORE_DUMPED" in statuses) and signal_id:
            return 128 + signal_id
        if "INVALID" in statuses or "PENDING" in statuses:
            return None
        return number(value.get("return_code"))
    status_word = number(value)  # v0.0.38: the raw wait status
    if status_word is None or status_word < 0:
        return None
    signal_number = status_word & 0x7F
    return 128 + signal_number if signal_number else (status_word >> 8) & 0xFF


def _timestamp(payload: dict[str, Any], field: str) -> str | None:
    seconds = number(payload.get(field))
    if not seconds:  # 0 is Slurm's "not set"
        return None
    return normalize_timestamp(seconds, field, PROVIDER)


def _text(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    return value if isinstance(value, str) and value.strip() else None


def _reason(payload: dict[str, Any]) -> str | None:
    reason = _text(payload, "state_reason")
    return None if reason is None or reason == "None" else reason


def job_id_of(payload: dict[str, Any]) -> str:
    job_id = number(payload.get("job_id"))
    if job_id is None:
        raise malformed(PROVIDER, "a job lacks its job_id")
    return str(job_id)


def to_record(payload: Any, project: str) -> JobRecord:
    """The record for one Slurm job object (an item of the `jobs` list of any v0.0.38+ answer)."""
    if not isinstance(payload, dict):
        raise malformed(PROVIDER, "expected a job object")
    job_id = job_id_of(payload)
    states = job_states(payload)
    status = status_of(states, job_id)
    created_at = _timestamp(payload, "submit_time")
    if created_at is None:
        raise malformed(PROVIDER, f"job {job_id!r} has no submit_time")
    # A job that never got nodes (canceled while pending) has a start_time but never started.
    ran = status is not JobStatus.SUBMITTED and _text(payload, "nodes") is not None
    started_at = _timestamp(payload, "start_time") if ran else None
    completed_at = _timestamp(payload, "end_time") if status in TERMINAL_STATUSES else None
    name = _text(payload, "name") or job_id
    minutes = number(payload.get("time_limit"))
    array_job_id = number(payload.get("array_job_id"))
    return make_record(
        id=job_id,
        project_id=project,
        batch_id=str(array_job_id) if array_job_id else None,
        name=name,
        status=status,
        target=_text(payload, "command") or name,
        config=_config(payload, states),
        timeout_seconds=minutes * 60 if minutes and minutes > 0 else 0,
        exit_code=exit_code_of(payload.get("exit_code")) if ran and status in TERMINAL_STATUSES else None,
        failed_reason=_failed_reason(payload, states, status),
        started_at=started_at,
        completed_at=completed_at,
        created_at=created_at,
        updated_at=latest(created_at, started_at, completed_at) or created_at,
    )


def _config(payload: dict[str, Any], states: list[str]) -> dict[str, Any]:
    return {
        "account": _text(payload, "account"),
        "partition": _text(payload, "partition"),
        "user": _text(payload, "user_name"),
        "nodes": _text(payload, "nodes"),
        "reason": _reason(payload),
        "job_state": states,
        "cluster": _text(payload, "cluster"),
    }


def _failed_reason(payload: dict[str, Any], states: list[str], status: JobStatus) -> str | None:
    if status not in (JobStatus.FAILED, JobStatus.CANCELED):
        return None
    text = f"Slurm reports the job {'+'.join(states)}"
    if reason := _reason(payload):
        text += f" ({reason})"
    if description := _text(payload, "state_description"):
        text += f": {description}"
    if len(text) > FAILED_REASON_LIMIT:
        text = text[: FAILED_REASON_LIMIT - 3] + "..."
    return text + "."


def in_scope(payload: dict[str, Any], scope: str, project: str) -> bool:
    """Whether the job object belongs to the project: its account, partition or user is `project`."""
    return scope_matches(payload.get(SCOPE_FIELDS[scope]), scope, project)


def scope_matches(value: Any, scope: str, project: str) -> bool:
    """A pending job queued in several partitions lists them comma-separated; any of them matches."""
    if not isinstance(value, str):
        return False
    if scope == "partition":
        return project in value.split(",")
    return value == project


def listed_jobs(body: Any) -> list[Any]:
    """The `jobs` of an answer (`{meta, errors, warnings, jobs}` in every version)."""
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise malformed(PROVIDER, "the answer has no list of jobs")
    return jobs


def slurm_errors(body: Any) -> list[dict[str, Any]]:
    """The error objects of an answer (v0.0.38 names the number error_number or error_code)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def error_number(error: dict[str, Any]) -> int | None:
    return number(error.get("error_number", error.get("error_code")))


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """Slurm's own words, e.g. `Access/permission denied (unable to kill JobId=9 ...) [2002]`."""
    parts = []
    for error in errors:
        text = _text(error, "error") or "error"
        if (description := _text(error, "description")) and description != text:
            text += f" ({description})"
        if (code := error_number(error)) is not None:
            text += f" [{code}]"
        parts.append(" ".join(text.split()))
    text = "; ".join(parts) or "no error text"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 3] + "..."


class SlurmError(ProviderError):
    """An error Slurm reported in an answer's `errors`, with their numbers."""

    def __init__(self, code: ErrorCode, message: str, *, status: int, numbers: tuple[int, ...]) -> None:
        super().__init__(code, message, status=status)
        self.numbers = numbers


def slurm_error(status: int, errors: list[dict[str, Any]]) -> SlurmError:
    """The error for an answer carrying Slurm errors: an unknown job, an unreachable controller, or
    anything else Slurm refused, in Slurm's words."""
    numbers = tuple(n for n in map(error_number, errors) if n is not None)
    said = describe_errors(errors)
    if INVALID_JOB_ID in numbers or (EMPTY_RESULT in numbers and "Unable to find JobId" in said):
        return SlurmError(
            ErrorCode.NOT_FOUND, f"Slurm knows no such job: {said}.", status=status, numbers=numbers
        )
    if ACCESS_DENIED in numbers:
        return SlurmError(
            ErrorCode.UNAUTHORIZED,
            f"Slurm refused the request (HTTP {status}): {said}. The job belongs to a user that"
            " slurmrestd's user (or the token's) may not act for; nothing was canceled: ask its owner or"
            " an administrator.",
            status=status,
            numbers=numbers,
        )
    if any(n in COMMUNICATION_ERRORS for n in numbers):
        return SlurmError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"slurmrestd could not reach the Slurm controller (HTTP {status}): {said}. Try again shortly.",
            status=status,
            numbers=numbers,
        )
    return SlurmError(
        ErrorCode.UPSTREAM_ERROR,
        f"Slurm refused the request (HTTP {status}): {said}.",
        status=status,
        numbers=numbers,
    )


# --- the backend -----------------------------------------------------------------------------------


def _checked_address(settings: BackendSettings) -> None:
    """`base_url` is slurmrestd's http(s) URL or `unix:` and its socket's absolute path."""
    configured = settings.base_url
    if not configured:
        raise BackendConfigError(
            f"backend {settings.name!r} (slurm) needs base_url: slurmrestd's address, e.g."
            " http://slurm-head:6820 or unix:/run/slurmrestd/slurmrestd.socket"
        )
    if configured.startswith(UNIX_PREFIX) and not configured.startswith(f"{UNIX_PREFIX}/"):
        raise BackendConfigError(
            f"backend {settings.name!r} (slurm): base_url {configured!r} must give the socket's absolute"
            " path, as in unix:/run/slurmrestd/slurmrestd.socket"
        )


def _option(settings: BackendSettings, key: str) -> str | None:
    value = settings.options.get(key)
    if value is not None and not isinstance(value, str):
        raise BackendConfigError(f"backend {settings.name!r} (slurm): {key} must be a string")
    return value


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@functools.cache
def _client_type() -> type[HttpClient]:
    """HttpClient reading Slurm's `errors` list (made on first use: httpx is imported only then)."""
    from .answer import decode_json
    from .client import Answer, HttpClient

    class SlurmHttpClient(HttpClient):
        def error_for(self, answer: Answer, what: str = "resource") -> ProviderError:
            status = answer.status
            if status in (401, 403):
                return self.unauthorized(status)
            try:
                errors = slurm_errors(decode_json(answer.body, self.provider)) if answer.body else []
            except ProviderError:
                errors = []
            if not errors:
                return super().error_for(answer, what)
            return slurm_error(status, [self.without_secrets(error) for error in errors])

        def unauthorized(self, status: int) -> ProviderError:
            user = self.settings.options.get("user_name")
            if self.token_env is None:
                fix = (
                    "set token_env to the variable holding a Slurm JWT (`scontrol token` prints one as"
                    " SLURM_JWT=...)"
                )
            else:
                fix = (
                    f"check that the environment variable {self.token_env} holds a valid, unexpired Slurm"
                    f" JWT{f' of the user {user!r}' if user else ''} (`scontrol token` makes one; the server"
                    " reads it at start)"
                )
            return ProviderError(
                ErrorCode.UNAUTHORIZED,
                f"slurmrestd at {self.base_url} refused the request (HTTP {status}): {fix}.",
                status=status,
            )

        def without_secrets(self, error: dict[str, Any]) -> dict[str, Any]:
            """The error's texts without our token (in any form) or anything shaped like a JWT."""

            def clean(text: str) -> str:
                return _JWT.sub(REDACTED, self.redacted(text))

            return {key: clean(value) if isinstance(value, str) else value for key, value in error.items()}

    return SlurmHttpClient


class SlurmBackend(HostedBackend):
    """Cancels, reads and lists the jobs of one Slurm cluster's account, partition or user."""

    spec = SPEC
    # slurmrestd serves no job output, only the path of the file it goes to, on the job's node. That file
    # is read here only where the configuration says so (`read_output = true`): a path the controller
    # names could otherwise be any file this server's user can read.
    logs_instead = (
        "Slurm writes a job's output to the file its StdOut names (`scontrol show job ID`), on the node"
        " that ran the job: read it there, or set read_output = true in this backend's table when this"
        " machine shares that file system."
    )

    def __init__(self, settings: BackendSettings) -> None:
        self.name = settings.name
        self.kind = SPEC.kind
        # scope and api_version were checked with the rest of the file (config_models.SlurmTable).
        self.scope = _option(settings, "scope") or "account"
        self.read_output = settings.options.get("read_output") is True
        self.api_version = _option(settings, "api_version")
        _checked_address(settings)
        user_name = _option(settings, "user_name")
        # The listing is the whole queue at once (3-10 KB a job): more than the 4 MiB other providers get.
        options = {"max_response_bytes": LISTING_LIMIT, **settings.options}
        self.http: HttpClient = _client_type()(
            dataclasses.replace(settings, options=options),
            SPEC,
            headers={USER_NAME_HEADER: user_name} if user_name else None,
        )
        self._version_lock = anyio.Lock()

    # --- HostedBackend's hooks ----------------------------------------------------------------------

    def job_path(self, project: str, job_id: str) -> str:
        return f"/slurm/{self.api_version}/job/{checked_segment('job_id', job_id, JOB_ID, JOB_ID_RULE)}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        jobs = listed_jobs(body)
        if not jobs:
            errors = slurm_errors(body)
            raise slurm_error(200, errors) if errors else malformed(PROVIDER, "the answer lists no job")
        return to_record(jobs[0], project)

    def owns(self, record: JobRecord, project: str) -> bool:
        return scope_matches(record["config"].get(self.scope), self.scope, project)

    def refused(self, error: ProviderError) -> bool:
        return isinstance(error, SlurmError) and ALREADY_DONE in error.numbers

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return not_found(
            job_id,
            self.where(project),
            consequence,
            f"A job is found only within the {self.scope} it belongs to, and only while slurmctld still"
            " holds it (MinJobAge after it ended): check both values.",
        )

    def where(self, project: str) -> str:
        """Where a job is looked for, as messages say it: "in account 'physics' on Slurm at ..."."""
        return f"in {self.scope} {project!r} on Slurm at {self.http.base_url}"

    # --- the tools ----------------------------------------------------------------------------------

    async def read_job(self, project: str, job_id: str, consequence: str = "") -> JobRecord:
        await self._resolve_version()
        if "[" in job_id:
            return await self._tasks(project, job_id, consequence)
        try:
            return await super().read_job(project, job_id, consequence)
        except ToolError as error:
            array_job, _, task = job_id.partition("_")
            if error.code != ErrorCode.NOT_FOUND or not task:
                raise
            # A task of an array still pending as a whole (held, say) has no record of its own yet:
            # slurmrestd finds it only in its array's record, though it cancels it by its own id.
            record = await self._pending_task(project, array_job, int(task))
            if record is None:
                raise
            return record

    async def _tasks(self, project: str, job_id: str, consequence: str) -> JobRecord:
        """Several tasks of an array (`J_[1-3,7]`) as one record: slurmrestd cancels them by that id but
        reads no such id, so they are read from their array (its task records and pending tasks)."""
        array_job, _, spec = job_id.partition("_")
        checked_segment("job_id", job_id, JOB_ID, JOB_ID_RULE)
        wanted = array_tasks(spec[1:-1])
        if not wanted:
            raise invalid_argument("job_id", f"{JOB_ID_RULE}; the task list {spec!r} is not one")
        body = await self._request("GET", self.job_path(project, array_job), project, job_id, consequence)
        records = []
        for job in listed_jobs(body):
            if not isinstance(job, dict):
                continue
            task = number(job.get("array_task_id"))
            pending = job.get("array_task_string")
            if (task is not None and task in wanted) or (
                isinstance(pending, str) and pending and wanted & array_tasks(pending)
            ):
                records.append(to_record(job, project))
        if not records or not all(self.owns(record, project) for record in records):
            raise self.not_found(project, job_id, consequence)
        return tasks_record(records, job_id, array_job)

    async def _pending_task(self, project: str, array_job: str, task: int) -> JobRecord | None:
        """The record of task `task` of array `array_job` while it is among the array's pending tasks."""
        try:
            body = await self.http.request_json("GET", self.job_path(project, array_job), what="job array")
        except ProviderError:
            return None
        for job in listed_jobs(body):
            pending = job.get("array_task_string") if isinstance(job, dict) else None
            if isinstance(pending, str) and task in array_tasks(pending):
                record = to_record(job, project)
                if not self.owns(record, project):
                    return None
                return {**record, "id": f"{array_job}_{task}", "batch_id": array_job}
        return None

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        """Read first (a job of another project is not_found, and nothing is sent), then DELETE."""
        nothing = " Nothing was canceled."
        current = await self.read_job(project, job_id, nothing)
        if current["status"] == JobStatus.CANCELED:
            return current  # canceling a canceled job returns its record, as the tool promises
        if is_terminal(current):
            raise not_cancellable(current, self.where(project))

        async def delete() -> JobRecord:
            await self._request("DELETE", self.job_path(project, job_id), project, job_id, nothing)
            try:
                return await self.read_job(project, job_id)
            except ToolError as error:
                if error.code != ErrorCode.NOT_FOUND or current["status"] != JobStatus.SUBMITTED:
                    raise
                # A pending array task that Slurm canceled leaves its array's pending tasks and keeps
                # no record of its own: it never ran, and is canceled now.
                now = utc_now()
                return {**current, "status": JobStatus.CANCELED, "completed_at": now, "updated_at": now}

        return await cancel_with_followup(
            PROVIDER, job_id, delete, lambda: self.read_job(project, job_id), refused=self.refused
        )

    async def get_job_logs(self, project: str, job_id: str, query: LogQuery) -> JobLogs:
        """The job's StdOut file, read here when `read_output` is set and this machine can read it; only a
        regular file owned by the job's own user is read (not a path that leads anywhere else)."""
        if not self.read_output:
            return await super().get_job_logs(project, job_id, query)
        await self._resolve_version()
        body = await self._request("GET", self.job_path(project, job_id), project, job_id, "")
        payload = next((job for job in listed_jobs(body) if isinstance(job, dict)), None)
        if payload is None or not self.owns(to_record(payload, project), project):
            raise self.not_found(project, job_id)
        path, owner = output_path(payload), number(payload.get("user_id"))
        node = _text(payload, "batch_host") or _text(payload, "nodes") or "its node"
        if path is None or owner is None:
            raise malformed(PROVIDER, f"job {job_id!r} has no absolute output path or no user_id")
        read = functools.partial(read_output_file, Path(path), owner, query)
        try:
            selection, size = await anyio.to_thread.run_sync(read)
        except OSError as error:
            raise ToolError(
                ErrorCode.NOT_SUPPORTED,
                f"The output of job {job_id!r} is in {path} on {node}, which this machine cannot read"
                f" ({error.strerror or error}): read it there.",
            ) from None
        return JobLogs(
            project_id=project,
            job_id=job_id,
            source=f"{path} (the job's StdOut, written on {node})",
            lines=selection.lines,
            truncated=selection.truncated,
            log_bytes=size,
        )

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        # Slurm answers every job it holds at once: the page is cut here, after the cursor.
        parts = cursor_position(cursor, _CURSOR)
        after = (int(parts[0]), int(parts[1])) if parts else None
        await self._resolve_version()
        body = await self.http.request_json("GET", f"/slurm/{self.api_version}/jobs", what="job listing")
        records = [
            (job, to_record(job, project))
            for job in listed_jobs(body)
            if isinstance(job, dict) and in_scope(job, self.scope, project)
        ]
        positioned = [
            ((number(job.get("submit_time")) or 0, int(record["id"])), record) for job, record in records
        ]
        return cut_page(positioned, status, size, after)

    async def _resolve_version(self) -> None:
        """The API version: configured, else the newest v0.0.38+ that `/openapi/v3` lists (asked once)."""
        if self.api_version is not None:
            return
        async with self._version_lock:
            if self.api_version is None:
                document = await self.http.request_json("GET", "/openapi/v3", what="OpenAPI description")
                self.api_version = newest_version(document, self.http.base_url)


_TASK_RANGE = re.compile(r"([0-9]{1,10})(?:-([0-9]{1,10})(?::([0-9]{1,10}))?)?")
MAX_ARRAY_TASKS = 1_000_001  # Slurm's MaxArraySize is at most 4,000,001; this bounds our walk


def array_tasks(text: str) -> set[int]:
    """The task ids of an array task string such as "1-3,7,10-20:2" (empty on anything else)."""
    tasks: set[int] = set()
    for part in text.split("%")[0].split(","):
        match = _TASK_RANGE.fullmatch(part.strip())
        if match is None:
            return set()
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        step = int(match[3]) if match[3] else 1
        if step < 1 or last - first > MAX_ARRAY_TASKS:
            return set()
        tasks.update(range(first, last + 1, step))
    return tasks


def tasks_record(records: list[JobRecord], job_id: str, array_job: str) -> JobRecord:
    """One record for several tasks of an array: the first task's fields; a status any task has, the
    first of working, submitted, canceled, failed (else completed); the span of their times."""
    statuses = {record["status"] for record in records}
    status = next((s for s in _TASKS_STATUS_ORDER if s in statuses), JobStatus.COMPLETED)
    ended = [record["completed_at"] for record in records if record["completed_at"]]
    first = records[0]
    return {
        **first,
        "id": job_id,
        "batch_id": array_job,
        "status": status,
        "exit_code": first["exit_code"] if len(records) == 1 else None,
        "failed_reason": first["failed_reason"] if len(records) == 1 else None,
        "started_at": min((r["started_at"] for r in records if r["started_at"]), default=None),
        "completed_at": max(ended) if status in TERMINAL_STATUSES and ended else None,
        "created_at": min(record["created_at"] for record in records),
        "updated_at": max(record["updated_at"] for record in records),
    }


def newest_version(document: Any, address: str) -> str:
    """The newest job API version from v0.0.38 on that an OpenAPI description's paths offer."""
    paths = document.get("paths") if isinstance(document, dict) else None
    served = {match.group(1) for path in paths or () if (match := _SERVED_VERSION.fullmatch(str(path)))}
    usable = [v for v in served if int(v.rsplit(".", 1)[1]) >= OLDEST_VERSION]
    if not usable:
        raise malformed(
            PROVIDER,
            f"slurmrestd at {address} lists no job API from v0.0.38 on in /openapi/v3 (it lists"
            f" {', '.join(sorted(served)) or 'none'}); load a newer openapi plugin or set api_version",
        )
    return max(usable, key=lambda version: int(version.rsplit(".", 1)[1]))


_FILENAME_PATTERN = re.compile(r"%(%|[0-9]*[jAaxuN])")


def output_path(payload: dict[str, Any]) -> str | None:
    """The job's StdOut path, its filename pattern expanded (sbatch's %j, %A, %a, %x, %u, %N, %%;
    unset means slurm-%j.out, or slurm-%A_%a.out for an array task, in the working directory); None
    if that does not give an absolute path."""
    pattern = _text(payload, "standard_output")
    array_job, task = number(payload.get("array_job_id")), number(payload.get("array_task_id"))
    if not pattern:
        pattern = "slurm-%A_%a.out" if array_job and task is not None else "slurm-%j.out"
    if not pattern.startswith("/"):
        directory = _text(payload, "current_working_directory")
        if directory is None or not directory.startswith("/"):
            return None
        pattern = f"{directory}/{pattern}"
    values = {
        "j": str(number(payload.get("job_id"))),
        "A": str(array_job or number(payload.get("job_id"))),
        "a": str(task),
        "x": _text(payload, "name") or "",
        "u": _text(payload, "user_name") or "",
        "N": _text(payload, "batch_host") or "",
    }

    def expand(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        width, letter = spec[:-1], spec[-1]
        value = values[letter]
        return value.zfill(int(width)) if width and value.isdigit() else value

    path = _FILENAME_PATTERN.sub(expand, pattern)
    return path if path.startswith("/") else None


def read_output_file(path: Path, owner: int, query: LogQuery) -> tuple[Selection, int]:
    """A job's output file as `query` asks: a regular file owned by `owner`, not through a symlink, opened
    without waiting (a FIFO cannot hang us); an OSError says why it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_uid != owner:
            raise OSError(errno.EPERM, "not a regular file owned by the job's user")
        return select_file(fd, query)
    finally:
        os.close(fd)


def create(settings: BackendSettings) -> Backend:
    """The backend for one `[backends.NAME]` table of kind `slurm` (raises BackendConfigError if unusable)."""
    return SlurmBackend(settings)
