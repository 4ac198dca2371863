"""The `temporal` backend: workflow executions of a Temporal service, through its HTTP API.

The server talks HTTP only (the grpc-gateway JSON API a Temporal frontend serves on its HTTP port,
7243 by default; the dev server's `--http-port`), with the same bounded, redacted, retried client as
every provider, rather than through the temporalio SDK: that would add a compiled core and protobuf
(some 60 MB) to every install and its own gRPC timeouts, retries and error texts beside ours, for five
requests the HTTP API serves as well.

The address is the backend's `base_url`, else `$TEMPORAL_ADDRESS` when that is an http(s) URL (not
the gRPC host:port the Temporal CLI reads from the same variable), else http://127.0.0.1:7243. A
project is a namespace; the job id is the workflow id, naming its latest run (see temporal_mapping
for the record).

Requests (checked against the Temporal CLI 1.9.1 dev server, Temporal Server 1.32):

- read: `GET /api/v1/namespaces/{ns}/workflows/{id}` (DescribeWorkflowExecution of the latest run);
  a closed run that did not complete also has its close event read, for `failed_reason`:
  `GET .../workflows/{id}/history?execution.runId=R&historyEventFilterType=` the close event filter.
  An unknown workflow id, or an unknown namespace, is HTTP 404: `not_found`.
- list: `GET /api/v1/namespaces/{ns}/workflows?query=Q&pageSize=N&nextPageToken=T`, in Temporal's own
  order (open executions first, newest started first, then closed ones, newest closed first; its SQL
  visibility refuses ORDER BY, so this order is the one every page agrees with). The status filter is
  Temporal's query; runs that continued as new are left out (the chain's latest run is listed). The
  cursor is Temporal's nextPageToken.
- cancel: the latest run is described first: a closed one is never sent anything (CANCELED or
  TERMINATED returns its record, COMPLETED, FAILED and TIMED_OUT are `not_cancellable`). A running one
  gets `POST .../workflows/{id}/cancel` (RequestCancelWorkflowExecution, which the workflow may handle:
  clean up, compensate, then close as CANCELED), pinned with `firstExecutionRunId` to the chain of
  runs described, so a workflow started later under the same id is never touched (Temporal answers
  404). The backend then waits up to `grace_period` (default 10 s) for the chain to close, sending
  progress notifications, by long-polling the run's close event; a run that continues as new meanwhile
  is asked to cancel too. If it has not closed by then, `POST .../workflows/{id}/terminate` ends it
  with a reason saying so, and the answer comes once the execution is closed. The answer's
  `config._provider.stop`, and from it the stop evidence (`stop_escalation`), says how it closed: on
  its own or terminated, after how long, and how many activities were still pending when terminated.
- wait: between the reads of wait_job (or of a cancel whose grace the call could not wait out),
  `wait_for_stop` long-polls the latest run's close event (`waitNewEvent=true`), ending the pause as
  soon as the workflow closes.

A grace period is waited only within the call's own deadline (the server's call timeout, less a few
seconds for the terminate): a call that would end first answers the still-running record and
terminates nothing, and a later cancel_job waits again. The cancel request stands either way.

What "stopped" means on Temporal: the execution is closed, and no workflow code of it runs again. An
activity already running in a worker is only told of the cancel when it heartbeats; one that does not
heartbeat runs on until it finishes (its result is then dropped).

Logs: Temporal keeps no job output; `get_job_logs` is `not_supported`, naming the event history.

Auth: none by default. For Temporal Cloud, `$TEMPORAL_API_KEY` (or the variable named by `token_env`)
is sent as `Authorization: Bearer <key>`, Temporal Cloud's documented header for API keys, and never
over plain http to a host other than this machine.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio

from ..errors import NOTHING_CANCELED, ProviderError, ToolError, not_cancellable
from ..errors.providers import (
    TEMPORAL_LOGS_INSTEAD,
    api_key_in_clear,
    in_temporal_namespace,
    workflow_not_found,
)
from ..record import JobRecord, JobStatus
from ..stops import Escalation
from .base import Backend, BackendSettings, Progress
from .http.checks import ServiceAddress, checked_segment
from .http.flows import ProviderPage
from .http.hosted import HostedBackend
from .registry import ProviderSpec
from .temporal_mapping import (
    EVERY_CHAIN_QUERY,
    STATUS_QUERIES,
    close_event,
    execution_info,
    listed_executions,
    raw_status,
    to_record,
    workflow_ids,
)

DEFAULT_HTTP_URL = "http://127.0.0.1:7243"
SPEC = ProviderSpec(
    kind="temporal", display_name="Temporal", default_base_url=DEFAULT_HTTP_URL, page_size=100
)
ADDRESS_ENV = SPEC.address_env or ""  # TEMPORAL_ADDRESS, listed in the registry
PROVIDER = SPEC.display_name
IDENTITY = "cancel-job-mcp"
DEFAULT_GRACE_SECONDS = 10.0
# Kept from the call's deadline for the terminate, the wait for its close and the answer.
TERMINATE_RESERVE_SECONDS = 5.0
# How long a terminated workflow is waited for (Temporal closes it at once).
TERMINATE_WAIT_SECONDS = 30.0
# The longest wait between two progress notifications (one long poll of the close event).
PROGRESS_SECONDS = 2.0
MIN_POLL_SECONDS = 0.2
CLOSE_EVENT = "HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT"
CANCEL_REASON = "cancel-job-mcp: cancel_job was called"

WORKFLOW_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
WORKFLOW_ID_RULE = (
    "must be a Temporal workflow id of 1-128 letters, digits, '_', '-' or '.', not starting with '.'"
)
NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAMESPACE_RULE = "must name a Temporal namespace: 1-128 letters, digits, '.', '_' or '-'"
_LOOPBACK_NAMES = frozenset({"localhost"})


ADDRESS = ServiceAddress(
    kind="temporal",
    env=ADDRESS_ENV,
    default=DEFAULT_HTTP_URL,
    what="the URL of Temporal's HTTP API",
    instead="The server uses the HTTP API, so give its URL, e.g. http://127.0.0.1:7243 (not the gRPC"
    " host:port, such as 127.0.0.1:7233, that the Temporal CLI takes).",
    credential="give an API key in TEMPORAL_API_KEY (or the variable token_env names)",
    port="Temporal's HTTP API listens on 7243 by default",
)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TemporalBackend(HostedBackend):
    """Cancels (gracefully, then by terminating), reads and lists the workflow executions of a Temporal
    service, one namespace per project."""

    spec = SPEC
    logs_instead = TEMPORAL_LOGS_INSTEAD

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        self.grace_period = float(settings.options.get("grace_period", DEFAULT_GRACE_SECONDS))
        parts = urlsplit(self.http.base_url)
        token_env = self.http.token_env or ""
        if (
            os.environ.get(token_env, "").strip()
            and parts.scheme == "http"
            and not _is_loopback(parts.hostname or "")
        ):
            raise api_key_in_clear(settings.name, token_env, str(parts.hostname))

    def client_spec(self, settings: BackendSettings) -> ProviderSpec:
        return dataclasses.replace(SPEC, default_base_url=ADDRESS.url(settings))

    def job_path(self, project: str, job_id: str) -> str:
        namespace = checked_segment("project_reference", project, NAMESPACE, NAMESPACE_RULE)
        workflow_id = checked_segment("job_id", job_id, WORKFLOW_ID, WORKFLOW_ID_RULE)
        return f"/api/v1/namespaces/{namespace}/workflows/{workflow_id}"

    def to_record(self, body: Any, project: str) -> JobRecord:
        return to_record(execution_info(body), project, described=body)

    def not_found(self, project: str, job_id: str, consequence: str = "") -> ToolError:
        return workflow_not_found(job_id, project, self.http.base_url, consequence)

    # --- reads ------------------------------------------------------------------------------------

    async def read_job(self, project: str, job_id: str, consequence: str = "") -> JobRecord:
        body = await self._get(self.job_path(project, job_id), project, job_id, consequence)
        info = execution_info(body)
        event = None
        if raw_status(info) not in ("RUNNING", "COMPLETED", "CONTINUED_AS_NEW"):
            event = await self._close_event(project, job_id, workflow_ids(info)[1], wait=False)
        return to_record(info, project, close_event=event, described=body)

    async def _close_event(
        self, project: str, job_id: str, run_id: str, *, wait: bool
    ) -> dict[str, Any] | None:
        """The run's close event; None while it is open. With `wait`, Temporal holds the request until the
        run closes (a long poll: the caller bounds it)."""
        params = {"execution.runId": run_id, "historyEventFilterType": CLOSE_EVENT}
        if wait:
            params["waitNewEvent"] = "true"
        path = f"{self.job_path(project, job_id)}/history"
        return close_event(await self._get(path, project, job_id, "", params))

    async def _get(
        self, path: str, project: str, job_id: str, consequence: str, params: Mapping[str, str] | None = None
    ) -> Any:
        """A GET about one workflow; Temporal's 404 (unknown workflow or namespace) is our not_found."""
        try:
            return await self.http.request_json("GET", path, params=params, what=f"workflow {job_id!r}")
        except ProviderError as error:
            if error.status == 404:
                raise self.not_found(project, job_id, consequence) from None
            raise

    async def fetch_page(
        self, project: str, status: JobStatus | None, size: int, cursor: str | None
    ) -> ProviderPage:
        if status is JobStatus.SUBMITTED:
            return [], None  # Temporal reports a started workflow RUNNING at once
        namespace = checked_segment("project_reference", project, NAMESPACE, NAMESPACE_RULE)
        query = STATUS_QUERIES[status] if status is not None else EVERY_CHAIN_QUERY
        params = {"query": query, "pageSize": str(size), "nextPageToken": cursor}
        payload = await self.http.request_json(
            "GET", f"/api/v1/namespaces/{namespace}/workflows", params=params, what="workflow listing"
        )
        executions, token = listed_executions(payload)
        return [to_record(item, project) for item in executions], token

    # --- the cancel ---------------------------------------------------------------------------------

    async def cancel_job(self, project: str, job_id: str) -> JobRecord:
        return await self.cancel_job_with_progress(project, job_id, None)

    async def cancel_job_with_progress(
        self, project: str, job_id: str, progress: Progress | None
    ) -> JobRecord:
        """Ask the workflow to cancel, wait out the grace period for it to close, terminate it if not."""
        # Every answer is read whole before anything is sent: a malformed one changes nothing.
        body = await self._get(self.job_path(project, job_id), project, job_id, NOTHING_CANCELED)
        found = self.to_record(body, project)
        if found["status"] != JobStatus.WORKING:
            if found["status"] == JobStatus.CANCELED:
                return await self.read_job(project, job_id)
            raise not_cancellable(found, in_temporal_namespace(project))
        provider = found["config"]["_provider"]
        chain = str(provider["first_run_id"] or provider["run_id"])
        started = anyio.current_time()
        await self._send(project, job_id, "cancel", chain, CANCEL_REASON)
        call_left = anyio.current_effective_deadline() - started - TERMINATE_RESERVE_SECONDS
        grace = max(0.0, min(self.grace_period, call_left))
        waiting = (
            f"Cancel requested; waiting up to {self.grace_period:g} s for workflow {job_id} to close"
            " before terminating it."
        )
        closed, pending = await self._wait_closed(
            project, job_id, chain, grace, progress, waiting, canceled_run=str(provider["run_id"])
        )
        terminated = False
        if not closed and grace >= self.grace_period:
            reason = (
                "cancel-job-mcp: the workflow did not close within its grace period of"
                f" {self.grace_period:g} s after a cancel request, so it was terminated"
            )
            terminated = await self._send(project, job_id, "terminate", chain, reason)
            after = f"Grace period over: terminated workflow {job_id}; waiting for it to close."
            left = anyio.current_effective_deadline() - anyio.current_time() - 1.0
            wait = max(0.0, min(left, TERMINATE_WAIT_SECONDS))

            async def onward(done: float, total: float, message: str) -> None:
                # Progress only grows: the terminate's wait counts on from the grace period's.
                if progress is not None:
                    await progress(grace + done, grace + total, message)

            closed, _ = await self._wait_closed(project, job_id, chain, wait, onward, after)
        record = await self.read_job(project, job_id)
        if closed and record["config"]["_provider"].get("first_run_id") in (chain, None):
            record["config"]["_provider"]["stop"] = {
                "grace_period_seconds": self.grace_period,
                "terminated": terminated,
                "pending_activities_when_terminated": pending if terminated else None,
                "seconds_to_close": round(anyio.current_time() - started, 3),
            }
        return record

    async def wait_for_stop(self, project: str, job_id: str, seconds: float) -> None:
        """The pause between two reads of a job the service waits on (wait_job, or a cancel whose grace
        the call could not wait out), ended as soon as the workflow's latest run closes: a long poll of
        its close event. A failed poll is not an answer: the rest of the pause is slept."""
        started = anyio.current_time()
        path = f"{self.job_path(project, job_id)}/history"
        with anyio.move_on_after(seconds):
            try:
                body = await self.http.request_json(
                    "GET", path, params={"historyEventFilterType": CLOSE_EVENT, "waitNewEvent": "true"}
                )
                if close_event(body) is not None:
                    return
            except ToolError:
                pass
            await anyio.sleep_until(started + seconds)

    def stop_escalation(self, record: JobRecord) -> Escalation | None:
        """The evidence of a stop this backend made (the answer of `cancel_job_with_progress`): whether
        the workflow closed on its own within the grace period or was terminated, and how many
        activities were still pending then. None for a record no cancel of ours closed."""
        stop = record["config"].get("_provider", {}).get("stop")
        if not isinstance(stop, dict):
            return None
        job, grace, seconds = record["id"], stop["grace_period_seconds"], stop["seconds_to_close"]
        closed_as = record["config"]["_provider"]["status"]
        facts = {"cancel_requested": True, "closed_as": closed_as, **stop}
        if not stop["terminated"]:
            words = (
                f"Workflow {job} closed as {closed_as} {seconds:.1f} s after the cancel request, within its"
                f" grace period of {grace:g} s: it handled the cancel itself."
            )
            return Escalation(facts, words)
        pending = stop["pending_activities_when_terminated"]
        left = ""
        if pending:
            left = (
                f" {pending} of its activities were still pending then: activity code in a worker that does"
                " not heartbeat may still be running."
            )
        elif pending == 0:
            left = " No activity of it was pending then."
        words = (
            f"Workflow {job} did not close within its grace period of {grace:g} s after the cancel request,"
            f" so it was terminated; it closed as {closed_as} {seconds:.1f} s after the request.{left}"
        )
        return Escalation(facts, words)

    async def _send(self, project: str, job_id: str, action: str, chain: str, reason: str) -> bool:
        """POST a cancel or terminate to the latest run of the chain `chain`; False when Temporal says
        that run has already closed (404: a close that raced the request)."""
        request = {"firstExecutionRunId": chain, "identity": IDENTITY, "reason": reason}
        if action == "cancel":
            request["requestId"] = str(uuid.uuid4())
        path = f"{self.job_path(project, job_id)}/{action}"
        try:
            await self.http.request_json("POST", path, json=request, what=f"workflow {job_id!r}")
        except ProviderError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def _wait_closed(
        self,
        project: str,
        job_id: str,
        chain: str,
        seconds: float,
        progress: Progress | None,
        message: str,
        *,
        canceled_run: str | None = None,
    ) -> tuple[bool, int | None]:
        """Wait up to `seconds` for the chain's latest run to close. Returns whether it closed, and the
        count of pending activities the last describe saw. With `canceled_run` (the run a cancel was
        sent to), a run that continued from it as new is asked to cancel too."""
        started = anyio.current_time()
        asked = canceled_run
        while True:
            body = await self._get(self.job_path(project, job_id), project, job_id, "")
            record = self.to_record(body, project)
            provider = record["config"]["_provider"]
            count = provider["pending_activities"]
            if provider["first_run_id"] not in (chain, None) or record["status"] != JobStatus.WORKING:
                return True, count  # closed, or closed and a new chain started under the same id
            run_id = provider["run_id"]
            if asked not in (None, run_id):
                await self._send(project, job_id, "cancel", chain, CANCEL_REASON)
                asked = run_id
            waited = anyio.current_time() - started
            if waited >= seconds:
                return False, count
            if progress is not None:
                await progress(waited, seconds, message)
            polled, event = anyio.current_time(), None
            with anyio.move_on_after(min(PROGRESS_SECONDS, seconds - waited)):
                event = await self._close_event(project, job_id, run_id, wait=True)
            if (
                event is None
            ):  # a server (or a proxy) that answers the long poll at once is not asked again at once
                await anyio.sleep_until(min(polled + MIN_POLL_SECONDS, started + seconds))


def create(settings: BackendSettings) -> Backend:
    """The backend for one `[backends.NAME]` table of kind `temporal` (BackendConfigError if unusable)."""
    return TemporalBackend(settings)
