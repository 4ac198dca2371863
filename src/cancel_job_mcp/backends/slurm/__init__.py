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

from .backend import SlurmBackend, create

__all__ = ["SlurmBackend", "create"]
