"""The MCP server: tool definitions, argument validation and result shaping."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import Draft7Validator
from mcp import MCPError
from mcp.server import Server, ServerRequestContext

from . import __version__
from .arguments import validate_arguments
from .errors import ErrorCode, ToolError
from .record import JobRecord
from .schemas import load_schema
from .service import JobService, Progress

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Cancels jobs wherever they run: the local job runtime on this machine, hosted providers, or a Ray"
    " cluster. Every job belongs to a project: pass the project reference and the job id exactly as the"
    " user or the job's submitter gave them. A 'NAME:' prefix on the project reference picks a backend."
)
CANCEL_JOB_DESCRIPTION = (
    "Cancel a submitted or running job and return its job record. This is destructive: the job's"
    " processes are stopped and cannot be resumed (local jobs get SIGTERM, then SIGKILL after a grace"
    " period), so only call it when the user wants that job stopped. On success the record comes back"
    " with status 'canceled'; canceling a job that is already canceled returns its record unchanged."
    " A job is looked up only within the named project, so a wrong project stops nothing. Failures"
    " start with a code: invalid_argument (a value breaks the rule named), unknown_project (no backend"
    " serves that project), not_found (no such job in that project; nothing was stopped),"
    " not_cancellable (the job already completed or failed; its status is in the message),"
    " unauthorized, rate_limited, upstream_unavailable, internal_error."
)
INTERNAL_ERROR_MESSAGE = (
    f"{ErrorCode.INTERNAL_ERROR}: The server hit an unexpected problem and could not finish the request."
    " Nothing more was changed; check the job's state before retrying, and report this if it persists."
)

ToolRunner = Callable[[JobService, dict[str, Any], Progress], Awaitable[JobRecord]]


@dataclass(frozen=True)
class ToolSpec:
    tool: types.Tool
    validator: Draft7Validator
    run: ToolRunner


def _spec(
    name: str, title: str, description: str, annotations: types.ToolAnnotations, run: ToolRunner
) -> ToolSpec:
    input_schema = load_schema(f"{name}.input")
    tool = types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema=input_schema,
        output_schema=load_schema(f"{name}.output"),
        annotations=annotations,
    )
    return ToolSpec(tool, Draft7Validator(input_schema), run)


async def _cancel_job(service: JobService, arguments: dict[str, Any], progress: Progress) -> JobRecord:
    return await service.cancel_job(arguments["project_reference"], arguments["job_id"], progress)


def tool_specs() -> dict[str, ToolSpec]:
    cancel_job = _spec(
        "cancel_job",
        "Cancel job",
        CANCEL_JOB_DESCRIPTION,
        types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
        _cancel_job,
    )
    return {cancel_job.tool.name: cancel_job}


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def success_result(record: JobRecord) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(record))],
        structured_content=dict(record),
    )


def build_server(service: JobService) -> Server[Any]:
    specs = tool_specs()
    listing = types.ListToolsResult(tools=[spec.tool for spec in specs.values()])

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.session.report_progress(done, total, message)

        try:
            arguments = validate_arguments(spec.validator, params.arguments)
            record = await spec.run(service, arguments, progress)
        except ToolError as error:
            log.info("%s refused: %s", params.name, error)
            return error_result(str(error))
        except Exception:
            log.exception("%s failed unexpectedly", params.name)
            return error_result(INTERNAL_ERROR_MESSAGE)
        return success_result(record)

    return Server(
        "cancel-job-mcp",
        version=__version__,
        title="Cancel Job",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
