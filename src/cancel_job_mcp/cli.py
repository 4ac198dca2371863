"""The command line: `serve` for MCP clients, and `submit`, `jobs`, `show`, `cancel`, `prune` for people."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from .app import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_CONCURRENT_CALLS,
    LOG_LEVELS,
    AppOptions,
    build_mcp_server,
    build_service,
    configure_logging,
)
from .backends.base import JobPage
from .config import HTTP_TOKENS_ENV, ConfigError, data_home, load_config
from .errors import ToolError
from .record import JobRecord, JobStatus
from .service import JobService

Command = Callable[[argparse.Namespace, AppOptions], int]


def _add_common(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default, help="log verbosity on stderr (default: warning)"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=default,
        help="state directory (default: $CANCEL_JOB_MCP_HOME or the user data dir)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="TOML configuration file (default: $CANCEL_JOB_MCP_CONFIG, else HOME/config.toml if it exists)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cancel-job-mcp", description="An MCP server that cancels and finds jobs wherever they run."
    )
    _add_common(parser, default=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_common(sub, default=argparse.SUPPRESS)
        return sub

    serve = command("serve", "serve MCP over stdio (the default) or Streamable HTTP")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument(
        "--read-only",
        action="store_true",
        help="publish only get_job and list_jobs (the config's read_only = true does the same)",
    )
    serve.add_argument(
        "--call-timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="SECONDS",
        help="limit per tool call",
    )
    serve.add_argument(
        "--max-concurrent-calls",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_CALLS,
        metavar="N",
        help="limit per process",
    )
    http = serve.add_argument_group("HTTP")
    http.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    http.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    http.add_argument(
        "--stateless", action="store_true", help="no sessions: any replica can serve any request"
    )
    http.add_argument(
        "--workers", type=int, default=1, metavar="N", help="uvicorn worker processes (implies --stateless)"
    )
    http.add_argument(
        "--token-file", help=f"bearer tokens, one a line (also: ${HTTP_TOKENS_ENV}, comma-separated)"
    )
    http.add_argument(
        "--allowed-host", action="append", default=[], metavar="HOST[:PORT]", help="accepted Host"
    )
    http.add_argument(
        "--allowed-origin", action="append", default=[], metavar="ORIGIN", help="accepted Origin"
    )
    http.add_argument("--max-body-bytes", type=int, default=1_048_576, metavar="N", help="request body cap")
    http.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve beyond loopback without bearer tokens (only behind a layer that authenticates)",
    )

    submit = command("submit", "run a command as a job of the local runtime and print its record")
    submit.add_argument("--project", required=True, help="the project the job belongs to")
    submit.add_argument("--name", help="a human-readable name (default: the command's name)")
    submit.add_argument("--timeout", type=float, default=0, metavar="SECONDS", help="time limit; 0 = none")
    submit.add_argument("--retries", type=int, default=0, metavar="N", help="reruns after a non-zero exit")
    submit.add_argument("--cwd", type=Path, help="working directory (default: the current one)")
    submit.add_argument(
        "--grace-period", type=float, default=5.0, metavar="SECONDS",
        help="time between SIGTERM and SIGKILL when the job is stopped (default: 5)",
    )  # fmt: skip
    submit.add_argument(
        "--log-limit", type=float, default=10.0, metavar="MIB",
        help="cap on the job's output log; past it the oldest half is dropped (default: 10)",
    )  # fmt: skip
    submit.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")

    prune = command("prune", "delete local jobs that stopped long ago, with their logs (never an active job)")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="age of the stop")

    jobs = command("jobs", "list jobs as a table, newest first")
    jobs.add_argument("--project", help="a project reference, on any backend (default: every local job)")
    jobs.add_argument(
        "--status", choices=[status.value for status in JobStatus], help="only jobs in this status"
    )

    for name, help_text in (
        ("show", "print a job's record as JSON"),
        ("cancel", "cancel a job; print its record"),
    ):
        sub = command(name, help_text)
        sub.add_argument("project_reference")
        sub.add_argument("job_id")
    return parser


def _print_record(record: JobRecord) -> None:
    print(json.dumps(record, indent=2))


def _run_serve(args: argparse.Namespace, options: AppOptions) -> int:
    from .stdio import serve_stdio
    from .transports import HttpOptions, ServeError, run_http_workers, serve_http

    http = HttpOptions(
        host=args.host,
        port=args.port,
        stateless=args.stateless or args.workers > 1,
        workers=args.workers,
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
        max_body_bytes=args.max_body_bytes,
        token_file=args.token_file,
        allow_unauthenticated=args.allow_unauthenticated,
    )
    try:
        if args.transport == "http" and args.workers > 1:
            run_http_workers(options, http)
            return 0
        server, service = build_mcp_server(options)

        async def serve() -> None:
            try:
                await (serve_http(server, options, http) if args.transport == "http" else serve_stdio(server))
            finally:
                await service.aclose()

        anyio.run(serve)
    except ServeError as error:
        print(f"cancel-job-mcp: {error}", file=sys.stderr)
        return 2
    return 0


def _run_submit(args: argparse.Namespace, options: AppOptions) -> int:
    from .backends.local import submit_job

    command = args.job_command[1:] if args.job_command[:1] == ["--"] else args.job_command
    if not command:
        print("submit: give the command to run after '--'", file=sys.stderr)
        return 2
    if args.timeout < 0 or args.retries < 0 or args.grace_period < 0:
        print("submit: --timeout, --retries and --grace-period must not be negative", file=sys.stderr)
        return 2
    if not args.log_limit > 0:
        print("submit: --log-limit must be a positive number of MiB", file=sys.stderr)
        return 2
    try:
        record = submit_job(
            options.home, args.project, command, name=args.name, cwd=args.cwd, timeout_seconds=args.timeout,
            retries=args.retries, grace_seconds=args.grace_period, log_limit=int(args.log_limit * 2**20),
        )  # fmt: skip
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
    _print_record(record)
    return 0


def _run_prune(args: argparse.Namespace, options: AppOptions) -> int:
    from datetime import timedelta

    from .backends.local import prune_jobs

    if not args.older_than >= 0:
        print("prune: --older-than must be a number of days, 0 or more", file=sys.stderr)
        return 2
    try:
        removed = prune_jobs(options.home, timedelta(days=args.older_than))
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(f"Removed {len(removed)} job(s) stopped more than {args.older_than:g} day(s) ago, with their logs.")
    return 0


def _run_jobs(args: argparse.Namespace, options: AppOptions) -> int:
    """With --project, any backend's listing (the list_jobs tool's code); without, every local job."""
    if args.project is None:
        from .backends.local import LocalBackend

        backend = LocalBackend(options.home)

        async def page(cursor: str | None) -> JobPage:
            return await backend.list_any_project(None, args.status, 100, cursor)
    else:
        service = build_service(options)

        async def page(cursor: str | None) -> JobPage:
            return await service.list_jobs(args.project, args.status, 100, cursor)

    records: list[JobRecord] = []
    cursor = None
    try:
        while True:
            listing = anyio.run(page, cursor)
            records += listing["jobs"]
            if (cursor := listing["next_cursor"]) is None:
                break
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
    _print_table(records, ("id", "project_id", "status", "name", "created_at", "exit_code"))
    return 0


def _print_table(records: list[JobRecord], columns: tuple[str, ...]) -> None:
    rows = [[_cell(record, column) for column in columns] for record in records]
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=False)]
    for row in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _cell(record: JobRecord, column: str) -> str:
    value = record.get(column)
    return "-" if value is None else str(value)


def _run_record_command(
    action: Callable[[JobService, str, str], Awaitable[JobRecord]],
) -> Command:
    def run(args: argparse.Namespace, options: AppOptions) -> int:
        service = build_service(options)
        try:
            record = anyio.run(action, service, args.project_reference, args.job_id)
        except ToolError as error:
            print(str(error), file=sys.stderr)
            return 1
        _print_record(record)
        return 0

    return run


COMMANDS: dict[str, Command] = {
    "serve": _run_serve,
    "submit": _run_submit,
    "jobs": _run_jobs,
    "show": _run_record_command(JobService.get_job),
    "cancel": _run_record_command(JobService.cancel_job),
    "prune": _run_prune,
}


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `cancel-job-mcp [global options]` serves stdio
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "serve"])
    args.log_level = args.log_level or "warning"
    configure_logging(args.log_level)
    home = args.home or data_home()
    try:
        config = load_config(args.config, home)
    except ConfigError as error:
        print(f"cancel-job-mcp: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    options = AppOptions(
        home=home,
        config=config,
        read_only=getattr(args, "read_only", False),
        call_timeout=getattr(args, "call_timeout", DEFAULT_CALL_TIMEOUT),
        max_concurrent_calls=getattr(args, "max_concurrent_calls", DEFAULT_MAX_CONCURRENT_CALLS),
        log_level=args.log_level,
    )
    sys.exit(COMMANDS[args.command](args, options))
