"""The command line: `serve` for MCP clients, and `submit`, `jobs`, `show`, `cancel`, `audit`, `prune` for
people."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .app import (
    LOG_LEVELS,
    AppOptions,
    configure_logging,
)
from .backends.logs import DEFAULT_TAIL_LINES, MAX_TAIL_LINES
from .commands import COMMANDS
from .config import (
    HTTP_TOKENS_ENV,
    OAUTH_CLIENT_ID_ENV,
    OAUTH_CLIENT_SECRET_ENV,
    Config,
    ConfigError,
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
from .http_values import Authority, Origin
from .record import JobStatus

USAGE = "%(prog)s [OPTIONS] [COMMAND [ARGS...]]"
EPILOG = (
    "With no COMMAND it serves MCP over stdio, as `serve` does: that is what an MCP client's"
    " configuration runs. `%(prog)s COMMAND --help` describes each command."
)
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
    except ToolError as error:
        print(str(error), file=sys.stderr)
        status = 1
    except BrokenPipeError:
        # The reader went away (`jobs | head`): stop quietly; later writes go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
