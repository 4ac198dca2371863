"""The command line: `serve` for MCP clients, and `submit`, `jobs`, `show`, `cancel`, `audit`, `prune` for
people."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from . import __version__
from .app import (
    LOG_LEVELS,
    AppOptions,
    HttpOptions,
    build_mcp_server,
    build_service,
    configure_logging,
    start_up,
)
from .arguments import check_identifier
from .audit import Attempt, AuditLog, audit_path
from .backends.base import JobPage
from .backends.logs import DEFAULT_TAIL_LINES, MAX_TAIL_LINES, JobLogs
from .caller import cli_caller
from .config import (
    HTTP_TOKENS_ENV,
    OAUTH_CLIENT_ID_ENV,
    OAUTH_CLIENT_SECRET_ENV,
    Config,
    ConfigError,
    OAuthSettings,
    data_home,
    load_config,
)
from .defaults import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_LOG_LIMIT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT,
)
from .errors import ToolError
from .http_security import Authority, Origin
from .record import JobRecord, JobStatus
from .routing import local_homes, local_route
from .service import JobService

if TYPE_CHECKING:
    from mcp.server import Server

Command = Callable[[argparse.Namespace, AppOptions], int]
USAGE = "%(prog)s [OPTIONS] [COMMAND [ARGS...]]"
EPILOG = (
    "With no COMMAND it serves MCP over stdio, as `serve` does: that is what an MCP client's"
    " configuration runs. `%(prog)s COMMAND --help` describes each command."
)
DRAIN_MARGIN_SECONDS = 10.0
MAX_RETRIES = 10_000
TRANSPORT_HELP = (
    "stdio: one MCP client on stdin/stdout, the client starts the server (default);"
    " http: Streamable HTTP at http://HOST:PORT/mcp for many clients"
)


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError with a message worth showing."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    rule = (
        f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer, {minimum} or more"
    )

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
        return value

    return parse


def seconds(allow_zero: bool) -> Callable[[str], float]:
    rule = "a number of seconds, 0 or more" if allow_zero else "a number of seconds above 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
        return value

    return parse


MAX_DAYS = 36_500  # a century: any older date is before every job


def days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be a number of days from 0 to {MAX_DAYS}; got {text!r}")
    return value


MAX_LOG_MIB = 1_048_576  # 1 TiB


def mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_LOG_MIB:
        raise argparse.ArgumentTypeError(
            f"must be a number of MiB above 0, at most {MAX_LOG_MIB}; got {text!r}"
        )
    return value


def _project_pattern(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._*?\[\]!:-]{1,128}", text):
        raise ValueError(
            "must be a project reference or glob pattern of letters, digits and . _ - : * ? [ ] !;"
            f" got {text!r}"
        )
    return text


def _with_confirm_flags(config: Config, args: argparse.Namespace) -> Config:
    """The `[confirm]` policy with the command line's flags applied over the file's."""
    policy = config.confirm
    policy = replace(
        policy,
        cancel=getattr(args, "confirm", None) or policy.cancel,
        projects=tuple(getattr(args, "confirm_project", None) or policy.projects),
        fallback=getattr(args, "confirm_fallback", None) or policy.fallback,
    )
    return replace(config, confirm=policy)


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
        prog="cancel-job-mcp",
        usage=USAGE,
        description="An MCP server that cancels and finds jobs wherever they run.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, default=None)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", prog="cancel-job-mcp"
    )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_common(sub, default=argparse.SUPPRESS)
        return sub

    serve = command("serve", "serve MCP over stdio (the default) or Streamable HTTP")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio", help=TRANSPORT_HELP)
    serve.add_argument(
        "--read-only",
        action="store_true",
        help="publish only get_job and list_jobs (the config's read_only = true does the same)",
    )
    confirm = serve.add_argument_group("confirmation (the configuration's [confirm] table; these win)")
    confirm.add_argument(
        "--confirm", choices=("never", "ask"),
        help="ask a person, through the MCP client, before each cancel (default: never)",
    )  # fmt: skip
    confirm.add_argument(
        "--confirm-project", action="append", type=_checked(_project_pattern), metavar="PATTERN",
        help="ask only for project references matching this glob; repeatable (default: every project)",
    )  # fmt: skip
    confirm.add_argument(
        "--confirm-fallback", choices=("deny", "allow"),
        help="when the client cannot ask a person: refuse the cancel, or let it through (default: deny)",
    )  # fmt: skip
    serve.add_argument(
        "--call-timeout", type=seconds(allow_zero=False), default=DEFAULT_CALL_TIMEOUT, metavar="SECONDS",
        help="limit per tool call (default: %(default)g)",
    )  # fmt: skip
    serve.add_argument(
        "--max-concurrent-calls", type=integer(1), default=DEFAULT_MAX_CONCURRENT_CALLS, metavar="N",
        help="tool calls at once per process; more get 'busy' (default: %(default)s)",
    )  # fmt: skip
    http = serve.add_argument_group("HTTP (with --transport http)")
    http.add_argument("--host", default=DEFAULT_HTTP_HOST, help="bind address (default: %(default)s)")
    http.add_argument(
        "--port", type=integer(0, 65535), default=DEFAULT_HTTP_PORT,
        help="port; 0 picks a free one, printed at start (default: %(default)s)",
    )  # fmt: skip
    http.add_argument(
        "--stateless", action="store_true", help="no sessions: any replica can serve any request"
    )
    http.add_argument(
        "--workers", type=integer(1, 64), default=1, metavar="N",
        help="uvicorn worker processes; more than 1 implies --stateless (default: %(default)s)",
    )  # fmt: skip
    http.add_argument(
        "--token-file", help=f"bearer tokens, one a line (also: ${HTTP_TOKENS_ENV}, comma-separated)"
    )
    http.add_argument(
        "--allowed-host", action="append", default=[], type=_checked(Authority.parse), metavar="HOST[:PORT]",
        help="also accept this Host header; without a port, on any port (loopback and --host always are)",
    )  # fmt: skip
    http.add_argument(
        "--allowed-origin", action="append", default=[], type=_checked(Origin.parse), metavar="ORIGIN",
        help="also accept this Origin header, as in https://app.example.com (loopback ones always are)",
    )  # fmt: skip
    http.add_argument(
        "--max-body-bytes", type=integer(1024), default=DEFAULT_MAX_BODY_BYTES, metavar="N",
        help="request body cap (default: %(default)s)",
    )  # fmt: skip
    http.add_argument(
        "--max-sessions", type=integer(1), default=DEFAULT_MAX_SESSIONS, metavar="N",
        help="open sessions at once; more get 503 (default: %(default)s)",
    )  # fmt: skip
    http.add_argument(
        "--session-idle-timeout", type=seconds(allow_zero=False), default=DEFAULT_SESSION_IDLE_TIMEOUT,
        metavar="SECONDS", help="a session unused this long is closed (default: %(default)g)",
    )  # fmt: skip
    http.add_argument(
        "--header-timeout", type=seconds(allow_zero=False), default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
        help="a connection must send each request's headers within this, then its body within as long"
        " again; idle keep-alive ends after 5 s (default: %(default)g)",
    )  # fmt: skip
    http.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve beyond loopback without bearer tokens (only behind a layer that authenticates)",
    )
    http.add_argument(
        "--oauth-issuer", metavar="URL",
        help="accept OAuth access tokens from this authorization server (its issuer URL); with"
        " --oauth-resource (the file's [http.oauth] does the same)",
    )  # fmt: skip
    http.add_argument(
        "--oauth-resource", metavar="URL",
        help="this server's MCP endpoint URL as clients reach it, e.g. https://mcp.example.com/mcp: the"
        " audience its access tokens must name",
    )  # fmt: skip
    http.add_argument(
        "--oauth-introspection-endpoint", metavar="URL",
        help=f"introspect opaque access tokens here, as the client ${OAUTH_CLIENT_ID_ENV} with the secret"
        f" ${OAUTH_CLIENT_SECRET_ENV}",
    )  # fmt: skip

    # Remembered, so that `serve` can refuse any of them without --transport http.
    serve.set_defaults(
        http_only=tuple(
            (action.option_strings[0], action.dest, action.default) for action in http._group_actions
        )
    )

    submit = command("submit", "run a command as a job of the local runtime and print its record")
    submit.add_argument(
        "--project", required=True, help="the project the job belongs to, as the tools take it (e.g. 'demo')"
    )
    submit.add_argument("--name", help="a human-readable name (default: the command's name)")
    submit.add_argument(
        "--timeout", type=seconds(allow_zero=True), default=0, metavar="SECONDS",
        help="time limit; 0 = none (default: %(default)s)",
    )  # fmt: skip
    submit.add_argument(
        "--retries", type=integer(0, MAX_RETRIES), default=0, metavar="N",
        help="reruns after a non-zero exit (default: %(default)s)",
    )  # fmt: skip
    submit.add_argument("--cwd", type=Path, help="working directory (default: the current one)")
    submit.add_argument(
        "--grace-period", type=seconds(allow_zero=True), default=DEFAULT_GRACE_SECONDS, metavar="SECONDS",
        help="time between SIGTERM and SIGKILL when the job is stopped (default: %(default)g)",
    )  # fmt: skip
    submit.add_argument(
        "--log-limit", type=mebibytes, default=DEFAULT_LOG_LIMIT / 2**20, metavar="MIB",
        help="cap on the job's output log; past it the oldest half is dropped (default: 10)",
    )  # fmt: skip
    submit.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")

    prune = command(
        "prune",
        "delete local jobs that stopped long ago, with their logs (never an active job), and audit rows"
        " as old",
    )
    prune.add_argument("--older-than", type=days, required=True, metavar="DAYS", help="age of the stop")

    audit = command("audit", "print the audit trail: every cancel attempt, oldest first")
    audit.add_argument(
        "--since", type=days, metavar="DAYS", help="only attempts of the last DAYS days (default: all)"
    )
    audit.add_argument("--project", help="only attempts on this project reference")
    audit.add_argument("--json", action="store_true", help="print a JSON array instead of a table")

    jobs = command("jobs", "list jobs as a table, newest first")
    jobs.add_argument("--project", help="a project reference, on any backend (default: every local job)")
    jobs.add_argument(
        "--status", choices=[status.value for status in JobStatus], help="only jobs in this status"
    )

    logs = command(
        "logs", "print a job's last output lines; with --follow, the new ones until the job is terminal"
    )
    logs.add_argument("project_reference")
    logs.add_argument("job_id")
    logs.add_argument(
        "--tail", type=integer(1, MAX_TAIL_LINES), default=DEFAULT_TAIL_LINES, metavar="N",
        help="how many of the last lines (default: %(default)s)",
    )  # fmt: skip
    logs.add_argument("--contains", metavar="TEXT", help="only lines with this text (case-insensitive)")
    logs.add_argument("--follow", action="store_true", help="print new lines until the job is terminal")

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
    from .backends.local.runtime import submit_job

    command = args.job_command[1:] if args.job_command[:1] == ["--"] else args.job_command
    if problem := _submit_problem(args, command):
        print(f"submit: {problem}", file=sys.stderr)
        return 2
    try:
        home, project = local_route(options.config, args.project)
        record = submit_job(
            home, project, command, name=args.name, cwd=args.cwd, timeout_seconds=args.timeout,
            retries=args.retries, grace_seconds=args.grace_period, log_limit=int(args.log_limit * 2**20),
        )  # fmt: skip
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
    _print_record(record)
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
    from .backends.local.runtime import prune_jobs

    try:
        removed = [
            job
            for home in local_homes(options.config)
            for job in prune_jobs(home, timedelta(days=args.older_than))
        ]
        pruned_rows = _prune_audit(options.home, timedelta(days=args.older_than))
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
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
        except ToolError as error:
            print(str(error), file=sys.stderr)
            return 1
        finally:
            log.close()
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        _print_table(entries, AUDIT_COLUMNS)
    return 0


def _run_jobs(args: argparse.Namespace, options: AppOptions) -> int:
    """With --project, any backend's listing (the list_jobs tool's code); without, every local job."""

    async def every_page() -> tuple[list[JobRecord], bool]:
        """Every job, and whether they are local ones."""
        # One event loop for every page: a provider's kept-alive connections belong to it.
        if args.project is None:
            from .backends.local.runtime import LocalBackend

            records: list[JobRecord] = []
            for home in local_homes(options.config):
                backend = LocalBackend(home)
                try:
                    records += await _all_pages(partial(backend.list_any_project, None, args.status, 100))
                finally:
                    await backend.aclose()
            return records, True
        service = build_service(options)
        try:
            pages = await _all_pages(lambda cursor: service.list_jobs(args.project, args.status, 100, cursor))
            return pages, _is_local(service, args.project)
        finally:
            await service.aclose()

    try:
        records, local = anyio.run(every_page)
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
    if local:  # a canceled job whose processes are still being stopped says so
        from .backends.local.runtime import shown_status

        records = [JobRecord(**{**record, "status": shown_status(record)}) for record in records]
    _print_table(records, ("id", "project_id", "status", "name", "created_at", "exit_code"))
    return 0


def _is_local(service: JobService, project_reference: str) -> bool:
    return service.router.settings_for(project_reference)[0].kind == "local"


async def _all_pages(page: Callable[[str | None], Awaitable[JobPage]]) -> list[JobRecord]:
    records: list[JobRecord] = []
    cursor = None
    while True:
        listing = await page(cursor)
        records += listing["jobs"]
        if (cursor := listing["next_cursor"]) is None:
            return records


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
        async def act() -> tuple[JobRecord, bool]:
            service = build_service(options)
            try:
                record = await action(service, args.project_reference, args.job_id)
                return record, _is_local(service, args.project_reference)
            finally:
                await service.aclose()

        try:
            record, local = anyio.run(act)
        except ToolError as error:
            print(str(error), file=sys.stderr)
            return 1
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

    async def act() -> JobLogs:
        service = build_service(options)
        try:
            return await print_logs(
                service, args.project_reference, args.job_id, args.tail, args.contains or None, args.follow,
                partial(print, flush=True),
            )  # fmt: skip
        finally:
            await service.aclose()

    try:
        answer = anyio.run(act)
    except ToolError as error:
        print(str(error), file=sys.stderr)
        return 1
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


def _interrupted(signal_number: int, frame: object) -> None:
    """Ctrl-C: stop at once, quietly, as a shell expects of an interrupted command (status 130).

    What a job needs is already recorded (each cancel and submit is committed before it is answered);
    a traceback, or a stdio server waiting for its next line before it notices, helps nobody."""
    sys.stderr.flush()
    os._exit(128 + signal.SIGINT)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGINT, _interrupted)
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
        config=_with_confirm_flags(config, args),
        read_only=getattr(args, "read_only", False),
        call_timeout=getattr(args, "call_timeout", DEFAULT_CALL_TIMEOUT),
        max_concurrent_calls=getattr(args, "max_concurrent_calls", DEFAULT_MAX_CONCURRENT_CALLS),
        log_level=args.log_level,
    )
    try:
        status = COMMANDS[args.command](args, options)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`jobs | head`): stop quietly; later writes go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
