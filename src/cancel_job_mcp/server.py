"""The MCP server: tool definitions, argument validation and result shaping."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
from mcp import MCPError, types
from mcp.server import Server, ServerRequestContext
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.shared.inbound import x_mcp_header_map
from opentelemetry import trace

from . import __version__, bulk, confirm
from .access import (
    JOBS_CANCEL,
    JOBS_READ,
    caller_name,
    insufficient_scope_message,
    request_token,
    token_grant,
)
from .arguments import ArgumentValidator
from .audit import Attempt
from .backends.base import JobPage
from .backends.logs import DEFAULT_MAX_BYTES, DEFAULT_TAIL_LINES, JobLogs
from .caller import caller_of
from .defaults import DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_CONCURRENT_CALLS
from .errors import (
    CANCEL_ACCEPTED,
    CANCEL_UNCONFIRMED,
    NOTHING_CHANGED,
    ErrorCode,
    ToolError,
    busy,
    internal_error,
    timed_out,
)
from .grants import EVERY_PROJECT, granted
from .panel import JobPanel
from .record import JobRecord, is_terminal
from .schemas import load_schema
from .service import JobService
from .stops import STOP_META_KEY

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Finds and cancels jobs wherever they run: the local job runtime on this machine, hosted providers, a"
    " Ray cluster or a Slurm cluster. Every job belongs to a project: pass the project reference and the"
    " job id exactly as the user or the job's submitter gave them; a 'NAME:' prefix on the project"
    " reference picks a backend. To stop a job the user describes, find it with list_jobs, confirm with"
    " get_job, then cancel_job. Before deciding to cancel, read what the job printed with get_job_logs:"
    " it tells a stuck job from a slow one, and says why a job failed. To see a job finish, or a cancel"
    " that is still stopping reach its end, call wait_job (it waits at most 55 seconds a call)."
)
ERROR_CODES = (
    " Failures start with a code: " + ", ".join(f"{code} ({code.meaning})" for code in ErrorCode) + "."
)
CANCEL_JOB_DESCRIPTION = (
    "Cancel a submitted or running job and return its job record. This is destructive: the job's"
    " processes are stopped and cannot be resumed (local jobs get SIGTERM, then SIGKILL after a grace"
    " period), so only call it when the user wants that job stopped; if unsure which job, find it first"
    " with list_jobs or get_job. On success the record comes back with status 'canceled'; canceling a job"
    " that is already canceled returns its record unchanged. A job is looked up only within the named"
    " project, so a wrong project stops nothing (not_found). A job that already completed or failed gives"
    " not_cancellable with its status. A second text says in plain words what was done (local jobs: the"
    " signals sent and when, whether SIGKILL was needed, whether any process is left; providers: the"
    " statuses seen and how long the stop took), with the same facts in _meta; if it says the stop is"
    " still under way, call wait_job to see it end." + ERROR_CODES
)
GET_JOB_DESCRIPTION = (
    "Read one job's current record without changing anything: its status (submitted, working, completed,"
    " failed, canceled), name, target, timestamps, exit code and failure reason. Use it to check a job"
    " before canceling it, or to confirm that a cancel took effect. Takes the same project_reference and"
    " job_id as cancel_job." + ERROR_CODES
)
# list_jobs' page size when the call names none: the published schema's default.
LIST_LIMIT: int = load_schema("list_jobs.input")["properties"]["limit"]["default"]
LIST_JOBS_DESCRIPTION = (
    "List a project's jobs, newest first, without changing anything: use it to find the job_id of the job"
    " the user means (match on name, target, status and created_at), then get_job or cancel_job it."
    " Optional: status to keep one lifecycle status (e.g. 'working' for running jobs), limit (1-100,"
    f" default {LIST_LIMIT}), and cursor: pass back next_cursor from the previous answer, unchanged, for"
    " the next page. Returns {jobs, next_cursor}; next_cursor is null on the last page." + ERROR_CODES
)
GET_JOB_LOGS_DESCRIPTION = (
    "Read the last lines a job printed, without changing anything: use it before canceling, to tell a"
    " stuck job from a slow one, and after a failure, to say why. Optional: tail_lines (1-5000, default"
    f" {DEFAULT_TAIL_LINES}), max_bytes (1-262144, default {DEFAULT_MAX_BYTES}; older lines are left out"
    " first and truncated says so),"
    " contains (keep only lines with this plain, case-insensitive text, e.g. 'error'). Returns"
    " {project_id, job_id, source, lines, truncated, log_bytes}; lines are oldest first. Backends whose"
    " provider keeps no logs answer not_supported, saying what the provider offers instead." + ERROR_CODES
)
# wait_job's bounds: the published schema's (at most 55 s, so that clients' 60 s limits are not hit).
WAIT_SECONDS: dict[str, Any] = load_schema("wait_job.input")["properties"]["timeout_seconds"]
WAIT_JOB_DESCRIPTION = (
    "Wait until a job is terminal (completed, failed, or canceled and stopped), without changing"
    " anything, and return its record: use it after a cancel that is still stopping, or to see a running"
    f" job finish. timeout_seconds (0-{WAIT_SECONDS['maximum']:g}, default {WAIT_SECONDS['default']:g})"
    " bounds the wait; the answer's second text says whether the job is terminal or the wait timed out"
    " (then call wait_job again, or read get_job_logs to see what the job is doing). Progress"
    " notifications are sent while it waits; canceling the request ends the wait and leaves the job as"
    " it is." + ERROR_CODES
)


@dataclass
class ToolCall:
    """One tool call as a runner sees it: its request's context (for progress, for who is calling, and
    to ask a person), and the confirmation policy (None: nobody is asked)."""

    ctx: ServerRequestContext[Any]
    confirmer: confirm.Confirmer | None = None
    accepted: bool = False  # a backend took a cancel: its progress reports the wait for the job to stop

    async def progress(self, done: float, total: float, message: str) -> None:
        self.accepted = True
        await self.ctx.session.report_progress(done, total, message)

    def attempt(self, tool: str) -> Attempt:
        """What the audit trail records of this call's cancel."""
        client = self.ctx.session.client_params
        return Attempt(tool, caller_of(self.ctx.request, client.client_info if client else None))


CANCEL_JOBS_DESCRIPTION = (
    "Cancel many of a project's active jobs at once: a runaway batch, a cron job gone wrong. Destructive"
    " when dry_run is false. Takes project_reference, max (required, 1-100: the most jobs it touches) and"
    " optional filters: status ('submitted' or 'working'; default both), name, batch_id, cron_job_id, each"
    " matched exactly. dry_run defaults to true: the answer then lists the jobs that match, newest first,"
    " and nothing changes; show them to the user before a real run. With dry_run false each matched job is"
    " canceled as cancel_job does (SIGTERM, then SIGKILL after its grace period, for local jobs), a few at"
    " a time, with progress notifications. Returns {dry_run, matched, truncated, jobs}: one entry per job"
    " with its record, or the error code and message that job met; truncated is true when more jobs may"
    " match than max." + ERROR_CODES
)


@dataclass(frozen=True)
class Answer:
    """A tool's answer beyond its structured content: a `note` in plain words (a second text block),
    and facts for programs under `meta`."""

    structured: Mapping[str, Any]
    note: str
    meta: dict[str, Any] | None = None  # the result's `_meta`


ToolRunner = Callable[[JobService, dict[str, Any], ToolCall], Awaitable[Mapping[str, Any] | Answer]]


@dataclass(frozen=True)
class ToolSpec:
    tool: types.Tool
    validator: ArgumentValidator
    run: ToolRunner

    @property
    def read_only(self) -> bool:
        return bool(self.tool.annotations and self.tool.annotations.read_only_hint)

    @property
    def scope(self) -> str:
        """The OAuth scope a call needs: jobs:read for a tool that changes nothing, else jobs:cancel."""
        return JOBS_READ if self.read_only else JOBS_CANCEL


def _spec(name: str, title: str, description: str, read_only: bool, run: ToolRunner) -> ToolSpec:
    input_schema = load_schema(f"{name}.input")
    tool = types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema=input_schema,
        output_schema=load_schema(f"{name}.output"),
        annotations=types.ToolAnnotations(
            read_only_hint=read_only,
            destructive_hint=not read_only,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    return ToolSpec(tool, ArgumentValidator(input_schema), run)


async def _cancel_job(service: JobService, arguments: dict[str, Any], call: ToolCall) -> Answer:
    project_reference, job_id = arguments["project_reference"], arguments["job_id"]
    attempt = call.attempt("cancel_job")
    confirmer = call.confirmer
    if confirmer is not None and confirmer.needed(project_reference):
        answer = await confirmer.answered(call.ctx)
        if answer is None and (record := await _active(service, project_reference, job_id)) is not None:
            answer = await confirmer.ask(call.ctx, confirm.job_question(record, project_reference), job_id)
        if answer is not None:
            attempt = replace(attempt, confirmation=answer.confirmation)
            if not confirm.allowed(answer.confirmation):
                error = confirm.declined(
                    answer.confirmation, f"job {job_id!r} of project {project_reference!r}"
                )
                await service.refuse_cancel(project_reference, job_id, attempt, error)
                raise error
    stop = await service.cancel_job(project_reference, job_id, attempt, call.progress)
    return Answer(stop.record, stop.words(), {STOP_META_KEY: stop.facts()})


async def _active(service: JobService, project_reference: str, job_id: str) -> JobRecord | None:
    """The job, if a cancel would change it; None when it would not (already over), or when the cancel
    itself will fail (and say why, and be audited)."""
    try:
        record = await service.get_job(project_reference, job_id)
    except ToolError:
        return None
    return None if is_terminal(record) else record


async def _cancel_jobs(service: JobService, arguments: dict[str, Any], call: ToolCall) -> dict[str, Any]:
    project_reference = arguments["project_reference"]
    dry_run = arguments.get("dry_run", True)
    confirmer = call.confirmer if call.confirmer and call.confirmer.needed(project_reference) else None
    answer = await confirmer.answered(call.ctx) if confirmer and not dry_run else None
    if answer is not None:  # the person answered the question a first call asked: the jobs it listed
        job_ids, truncated = list(answer.subject["jobs"]), bool(answer.subject["truncated"])
    else:
        wanted = bulk.JobFilter.from_arguments(arguments)
        try:
            selection = await bulk.find_jobs(service, project_reference, wanted, arguments["max"])
        except ToolError as failure:
            if not dry_run:  # an attempt that found nothing to cancel: one row, with no job
                await service.refuse_cancel(project_reference, "", call.attempt("cancel_jobs"), failure)
            raise
        if dry_run:
            return bulk.answer(True, selection.truncated, bulk.listed(selection))
        job_ids, truncated = [record["id"] for record in selection.jobs], selection.truncated
        if confirmer is not None and job_ids:
            question = confirm.jobs_question(selection.jobs, project_reference)
            answer = await confirmer.ask(call.ctx, question, {"jobs": job_ids, "truncated": truncated})
    attempt = call.attempt("cancel_jobs")
    if answer is not None:
        attempt = replace(attempt, confirmation=answer.confirmation)
        if not confirm.allowed(answer.confirmation):
            error = confirm.declined(
                answer.confirmation, f"{len(job_ids)} jobs of project {project_reference!r}"
            )
            for job_id in job_ids:
                await service.refuse_cancel(project_reference, job_id, attempt, error)
            raise error
    entries = await bulk.cancel_each(service, project_reference, job_ids, attempt, call.progress)
    return bulk.answer(False, truncated, entries)


async def _get_job(service: JobService, arguments: dict[str, Any], call: ToolCall) -> JobRecord:
    return await service.get_job(arguments["project_reference"], arguments["job_id"])


async def _list_jobs(service: JobService, arguments: dict[str, Any], call: ToolCall) -> JobPage:
    return await service.list_jobs(
        arguments["project_reference"],
        arguments.get("status"),
        arguments.get("limit", LIST_LIMIT),
        arguments.get("cursor"),
    )


async def _get_job_logs(service: JobService, arguments: dict[str, Any], call: ToolCall) -> JobLogs:
    return await service.get_job_logs(
        arguments["project_reference"],
        arguments["job_id"],
        arguments.get("tail_lines", DEFAULT_TAIL_LINES),
        arguments.get("max_bytes", DEFAULT_MAX_BYTES),
        arguments.get("contains"),
    )


async def _wait_job(service: JobService, arguments: dict[str, Any], call: ToolCall) -> Answer:
    seconds = float(arguments.get("timeout_seconds", WAIT_SECONDS["default"]))
    watch = await service.wait_job(
        arguments["project_reference"], arguments["job_id"], seconds, call.progress
    )
    record = watch.record
    if watch.stopped:
        note = f"Job {record['id']} is {record['status']}: it is terminal (waited {watch.seconds:.1f} s)."
    else:
        note = (
            f"The wait timed out after {watch.seconds:.1f} s: job {record['id']} is still"
            f" {record['status']}, not terminal. Call wait_job again to keep waiting, or get_job_logs to"
            " see what it is doing."
        )
    return Answer(record, note)


def tool_specs() -> dict[str, ToolSpec]:
    specs = (
        _spec("cancel_job", "Cancel job", CANCEL_JOB_DESCRIPTION, False, _cancel_job),
        _spec("cancel_jobs", "Cancel jobs", CANCEL_JOBS_DESCRIPTION, False, _cancel_jobs),
        _spec("get_job", "Get job", GET_JOB_DESCRIPTION, True, _get_job),
        _spec("list_jobs", "List jobs", LIST_JOBS_DESCRIPTION, True, _list_jobs),
        _spec("get_job_logs", "Get job logs", GET_JOB_LOGS_DESCRIPTION, True, _get_job_logs),
        _spec("wait_job", "Wait for job", WAIT_JOB_DESCRIPTION, True, _wait_job),
    )
    return {spec.tool.name: spec for spec in specs}


def tool_scopes() -> dict[str, str]:
    return {name: spec.scope for name, spec in tool_specs().items()}


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=_escaped(text))], is_error=True)


def success_result(answer: Mapping[str, Any] | Answer) -> types.CallToolResult:
    structured = answer.structured if isinstance(answer, Answer) else answer
    text = json.dumps(structured)
    if "\\ud" in text:  # a surrogate, paired (an emoji) or lone: only a walk tells them apart
        structured = _escaped(structured)
        text = json.dumps(structured)
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=text)]
    if isinstance(answer, Answer):
        content.append(types.TextContent(type="text", text=_escaped(answer.note)))
    meta = answer.meta if isinstance(answer, Answer) else None
    return types.CallToolResult(content=content, structured_content=dict(structured), _meta=meta)


def _escaped(value: Any) -> Any:
    """`value` with each lone UTF-16 surrogate written as the text `\\udcXX`.

    A local record can hold one (a directory or argument that is not UTF-8, kept by Python as
    `\\udce9`); UTF-8 cannot carry it, and an answer that cannot be encoded is never sent. Providers'
    answers holding one are refused before they get here (`answer.decode_json`)."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class CallLimits:
    """Per-process limits on tool calls: beyond them a clear error, never a hang."""

    timeout_seconds: float = DEFAULT_CALL_TIMEOUT
    max_concurrent: int = DEFAULT_MAX_CONCURRENT_CALLS


def build_server(
    service: JobService,
    read_only: bool = False,
    limits: CallLimits = CallLimits(),
    confirmer: confirm.Confirmer | None = None,
) -> Server[Any]:
    """The MCP server; `read_only` publishes (and serves) only the tools that change nothing; a
    `confirmer` asks a person before the cancels its policy names (its server must also carry
    `confirm.boundary`, which seals the 2026-07-28 era's request state)."""
    every_spec = tool_specs()
    in_flight = 0
    specs = {name: spec for name, spec in every_spec.items() if spec.read_only or not read_only}
    listing = types.ListToolsResult(tools=[spec.tool for spec in specs.values()])
    panel = JobPanel(listing.tools)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        # Only a client that negotiated MCP Apps sees where the panel is; for the others, nothing changes.
        return panel.listing_with_panel if panel.wanted_by(ctx) else listing

    # Only a schema that declares x-mcp-header parameters has Mcp-Param headers to check; for the others
    # None spares the SDK's HTTP transport two walks of the schema on every tools/call. Without this
    # lookup it would run the whole tools/list (validated and dumped) on every call instead.
    header_schemas = {
        name: spec.tool.input_schema
        for name, spec in specs.items()
        if x_mcp_header_map(spec.tool.input_schema)
    }

    def input_schema(name: str) -> Mapping[str, Any] | None:
        return header_schemas.get(name)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        spec = specs.get(params.name)
        if spec is None:
            disabled = " (this server is read-only)" if params.name in every_spec else ""
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}{disabled}")

        call = ToolCall(ctx, confirmer)
        token = request_token(ctx.request)
        grant = EVERY_PROJECT
        if token is not None:
            log.info("%s called by %s", params.name, caller_name(token))
            # The HTTP guard answered 403 already; this holds however the call arrived.
            if spec.scope not in token.scopes:
                return error_result(insufficient_scope_message(spec.scope))
            grant = token_grant(token)

        nonlocal in_flight
        if in_flight >= limits.max_concurrent:
            return error_result(str(busy(limits.max_concurrent)))
        in_flight += 1
        try:
            arguments = spec.validator.validate(params.arguments)
            with anyio.CancelScope(deadline=anyio.current_time() + limits.timeout_seconds), granted(grant):
                return success_result(await spec.run(service, arguments, call))
            # Reached only when the deadline cancelled the run (a client's cancel propagates).
            done = CANCEL_ACCEPTED if call.accepted else CANCEL_UNCONFIRMED
            done = NOTHING_CHANGED if spec.read_only else done
            return error_result(str(timed_out(params.name, limits.timeout_seconds, done)))
        except confirm.NeedsInput as question:  # the 2026-07-28 era: the answer is a question
            return question.result
        except ToolError as error:
            log.info("%s refused: %s", params.name, error)
            return error_result(str(error))
        except MCPError:
            raise  # a protocol error: a request state refused
        except Exception:
            log.exception("%s failed unexpectedly", params.name)
            return error_result(str(internal_error()))
        finally:
            in_flight -= 1

    server: Server[Any] = Server(
        "cancel-job-mcp",
        version=__version__,
        title="Cancel Job",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    panel.install(server)
    if not tracing_configured():
        # The SDK's OpenTelemetry middleware would open spans that record nothing, at about 40 µs a call,
        # a tenth of the SDK's whole no-op call (bench/phases.py).
        server.middleware = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    return server


def tracing_configured() -> bool:
    """True once a tracer provider is set: by code, by OTEL_PYTHON_TRACER_PROVIDER, or by
    opentelemetry-instrument (all before the server is built)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
