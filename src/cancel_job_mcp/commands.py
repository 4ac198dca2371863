"""What each command of the command line does, once its arguments are parsed (see `cli`)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .app import (
    AppOptions,
    HttpOptions,
    build_mcp_server,
    build_service,
    start_up,
)
from .audit import Attempt, AuditLog, audit_path
from .backends.base import JobSpec
from .caller import cli_caller
from .config import (
    Config,
    OAuthSettings,
)
from .defaults import DRAIN_MARGIN_SECONDS
from .errors import ToolError
from .identifiers import check_identifier
from .record import JobRecord
from .service import EVERY_PROJECT_PAGE, JobService, every_page

if TYPE_CHECKING:
    from mcp.server import Server


Command = Callable[[argparse.Namespace, AppOptions], int]
T = TypeVar("T")


def _print_record(record: JobRecord) -> None:
    print(json.dumps(record, indent=2))


def _run_serve(args: argparse.Namespace, options: AppOptions) -> int:
    if args.transport == "stdio":  # without the HTTP stack: a stdio client waits for no uvicorn import
        given = [option for option, dest, default in args.http_only if getattr(args, dest) != default]
        if given:
            print(
                f"serve: options for --transport http given without it ({', '.join(given)}), and this"
                " would serve stdio: add --transport http, or leave them out",
                file=sys.stderr,
            )
            return 2
        with start_up():
            from .stdio import serve_stdio

            built = build_mcp_server(options)
        # On stdin's end, the calls under way finish (each within the call timeout) and are answered.
        _serve(built, lambda server: serve_stdio(server, options.call_timeout + DRAIN_MARGIN_SECONDS))
        return 0
    from .transports import ServeError, open_endpoint, run_http_workers, serve_http

    http = HttpOptions(
        host=args.host,
        port=args.port,
        stateless=args.stateless or args.workers > 1,
        workers=args.workers,
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
        max_body_bytes=args.max_body_bytes,
        max_sessions=args.max_sessions,
        session_idle_timeout=args.session_idle_timeout,
        header_timeout=args.header_timeout,
        token_file=args.token_file,
        allow_unauthenticated=args.allow_unauthenticated,
    )
    try:
        http = replace(http, oauth=_oauth_settings(args, options.config))
        endpoint = open_endpoint(http)
        if args.workers > 1:
            return run_http_workers(options, http, endpoint)
        else:
            with start_up():
                built = build_mcp_server(options)
            _serve(built, lambda server: serve_http(server, options, http, endpoint))
    except ServeError as error:
        print(f"cancel-job-mcp: {error}", file=sys.stderr)
        return 2
    return 0


def _oauth_settings(args: argparse.Namespace, config: Config) -> OAuthSettings | None:
    """The --oauth-* options, else the file's [http.oauth] (whose other keys still apply)."""
    from .transports import ServeError

    if (args.oauth_issuer, args.oauth_resource, args.oauth_introspection_endpoint) == (None, None, None):
        return config.oauth
    if args.oauth_issuer is None or args.oauth_resource is None:
        raise ServeError("--oauth-issuer and --oauth-resource go together: give both")
    urls = (args.oauth_issuer, args.oauth_resource, args.oauth_introspection_endpoint)
    file = config.oauth
    try:
        if file is None:
            return OAuthSettings(*urls)
        return OAuthSettings(*urls, projects_claim=file.projects_claim, leeway=file.leeway)
    except ValueError as error:
        raise ServeError(str(error)) from None


def _serve(
    built: tuple[Server[Any], JobService], transport: Callable[[Server[Any]], Awaitable[None]]
) -> None:
    server, service = built

    async def serve() -> None:
        try:
            await transport(server)
        finally:
            await service.aclose()

    anyio.run(serve)


def _run_submit(args: argparse.Namespace, options: AppOptions) -> int:
    command = args.job_command[1:] if args.job_command[:1] == ["--"] else args.job_command
    if problem := _submit_problem(args, command):
        print(f"submit: {problem}", file=sys.stderr)
        return 2
    spec = JobSpec(
        tuple(command), name=args.name, cwd=args.cwd, timeout_seconds=args.timeout, retries=args.retries,
        grace_seconds=args.grace_period, log_limit=int(args.log_limit * 2**20),
    )  # fmt: skip
    _print_record(_with_service(options, lambda service: service.submit_job(args.project, spec)))
    return 0


def _submit_problem(args: argparse.Namespace, command: list[str]) -> str | None:
    """What would make the job unreachable by the tools or unable to start, found before it is recorded."""
    try:
        check_identifier("project_reference", args.project)
    except ToolError as error:
        return f"--project {error.message.removeprefix('project_reference: ')}"
    if not command:
        return "give the command to run after '--'"
    labelled = [(f"argument {index} of the command", text) for index, text in enumerate(command)]
    for label, text in [("--name", args.name or ""), *labelled]:
        if not _is_utf8(text):
            return (
                f"{label} is not UTF-8 text (the shell passed bytes that do not decode); the runtime records"
                " names and commands as text: pass them in UTF-8"
            )
    cwd = args.cwd or Path.cwd()
    if not cwd.is_dir():
        return f"--cwd {str(cwd)!r} is not an existing directory"
    program = command[0]
    if "/" in program:
        found = (cwd / program).is_file() and os.access(cwd / program, os.X_OK)
    else:
        found = shutil.which(program) is not None
    if not found:
        return f"command not found: {program!r} (looked {'in ' + str(cwd) if '/' in program else 'on PATH'})"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte that did not decode, kept by Python as a lone surrogate
        return False
    return True


def _run_prune(args: argparse.Namespace, options: AppOptions) -> int:
    older_than = timedelta(days=args.older_than)
    removed = _with_service(options, lambda service: service.prune_jobs(older_than))
    pruned_rows = _prune_audit(options.home, older_than)
    print(f"Removed {len(removed)} job(s) stopped more than {args.older_than:g} day(s) ago, with their logs.")
    print(f"Removed {pruned_rows} audit row(s) recorded more than {args.older_than:g} day(s) ago.")
    return 0


def _prune_audit(home: Path, older_than: timedelta) -> int:
    if not audit_path(home).exists():
        return 0
    log = AuditLog(home)
    try:
        return log.prune(datetime.now(UTC) - older_than)
    finally:
        log.close()


def _run_audit(args: argparse.Namespace, options: AppOptions) -> int:
    since = datetime.now(UTC) - timedelta(days=args.since) if args.since is not None else None
    entries: list[dict[str, Any]] = []
    if audit_path(options.home).exists():
        log = AuditLog(options.home)
        try:
            entries = log.entries(since, args.project)
        finally:
            log.close()
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        _print_table(entries, AUDIT_COLUMNS)
    return 0


def _run_jobs(args: argparse.Namespace, options: AppOptions) -> int:
    """With --project, any backend's listing (the list_jobs tool's code); without, every local job."""

    async def every_job(service: JobService) -> tuple[list[JobRecord], bool]:
        """Every job, and whether they are local ones."""
        if args.project is None:
            return await service.list_every_project(args.status), True
        pages = partial(service.list_jobs, args.project, args.status, EVERY_PROJECT_PAGE)
        return await every_page(pages), _is_local(service, args.project)

    records, local = _with_service(options, every_job)
    if local:  # a canceled job whose processes are still being stopped says so
        from .backends.local.runtime import shown_status

        records = [JobRecord(**{**record, "status": shown_status(record)}) for record in records]
    _print_table(records, ("id", "project_id", "status", "name", "created_at", "exit_code"))
    return 0


def _is_local(service: JobService, project_reference: str) -> bool:
    return service.router.settings_for(project_reference)[0].kind == "local"


def _with_service(options: AppOptions, work: Callable[[JobService], Awaitable[T]]) -> T:
    """`work` done with a service on one event loop (a provider's kept-alive connections belong to
    it); the service is closed after. A ToolError goes to `main`, which prints it."""

    async def run() -> T:
        service = build_service(options)
        try:
            return await work(service)
        finally:
            await service.aclose()

    return anyio.run(run)


def _print_table(records: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> None:
    rows = [[_cell(record, column) for column in columns] for record in records]
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=False)]
    for row in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _cell(record: Mapping[str, Any], column: str) -> str:
    """One table cell on one line: control characters (a newline in a name) are shown escaped."""
    value = record.get(column)
    text = "-" if value is None else str(value)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _run_record_command(
    action: Callable[[JobService, str, str], Awaitable[JobRecord]],
) -> Command:
    def run(args: argparse.Namespace, options: AppOptions) -> int:
        async def act(service: JobService) -> tuple[JobRecord, bool]:
            record = await action(service, args.project_reference, args.job_id)
            return record, _is_local(service, args.project_reference)

        record, local = _with_service(options, act)
        _print_record(record)
        if local:
            from .backends.local.runtime import stop_under_way

            if note := stop_under_way(record):
                print(note, file=sys.stderr)
        return 0

    return run


async def _cancel(service: JobService, project_reference: str, job_id: str) -> JobRecord:
    stop = await service.cancel_job(project_reference, job_id, Attempt("cancel", cli_caller()))
    return stop.record


def _run_logs(args: argparse.Namespace, options: AppOptions) -> int:
    from .tail import print_logs

    follow = partial(
        print_logs, project_reference=args.project_reference, job_id=args.job_id, tail=args.tail,
        contains=args.contains or None, follow=args.follow, emit=partial(print, flush=True),
    )  # fmt: skip
    answer = _with_service(options, follow)
    if answer["truncated"]:
        print(
            f"(some lines were left out: too long, or over a bound; source: {answer['source']})",
            file=sys.stderr,
        )
    return 0


AUDIT_COLUMNS = (
    "at", "transport", "principal", "client_name", "tool", "project", "job_id", "backend", "confirmation",
    "outcome", "status",
)  # fmt: skip

COMMANDS: dict[str, Command] = {
    "serve": _run_serve,
    "submit": _run_submit,
    "jobs": _run_jobs,
    "show": _run_record_command(JobService.get_job),
    "logs": _run_logs,
    "cancel": _run_record_command(_cancel),
    "audit": _run_audit,
    "prune": _run_prune,
}
