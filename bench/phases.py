"""Where one call's time goes: cancel_job on an already-canceled local job, phase by phase, in process.

The real server (built as `cancel-job-mcp serve` builds it) runs on the SDK's real serving loop over
in-memory streams, fed as our stdio framing feeds it, minus the pipe I/O (whose two worker-thread hops
per call, one to read the line and one to write the answer, the bare SDK server's stdio makes too).
Each phase is timed where it happens:

  parse      the request line -> JSON-RPC message (`stdio_lines.decode_line`, our stdio framing)
  validate   our argument checks (JSON Schema and identifier rules)
  route      project reference -> backend
  store      the local backend's cancel_job: SQLite on a reused connection, and any worker-thread hop
  shape      our CallToolResult: the record as text and as structured content
  serialize  the JSON-RPC response -> line (`model_dump_json`, as our stdio framing writes it)
  SDK        what is left of the call: the SDK's dispatch, params and result validation, tasks and streams

Also counted per call, which no load changes: worker-thread hops, and bytes in and out. Not a test.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from functools import wraps
from typing import Any

import anyio
import anyio.to_thread
from common import Table, canceled_jobs, median, percentile, print_tables
from mcp import types
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from wire import tool_call

from cancel_job_mcp.stdio_lines import decode_line

PHASES = ("parse", "validate", "route", "store", "shape", "serialize", "SDK")
# (phase, module, attribute): our functions on the call's path, timed where they are looked up.
TIMED = (
    ("validate", "cancel_job_mcp.arguments", "ArgumentValidator.validate"),
    ("route", "cancel_job_mcp.service", "JobService._route"),
    ("store", "cancel_job_mcp.backends.local.runtime", "LocalBackend.cancel_job"),
    ("shape", "cancel_job_mcp.server", "success_result"),
)


def now() -> tuple[float, float]:
    """(wall, process CPU) seconds. While a phase waits for a worker thread, the process CPU clock counts
    that thread's work and not the wait, so CPU times hold on a busy machine where wall times do not."""
    return time.perf_counter(), time.process_time()


class Clock:
    """Per-call phase durations (wall and CPU), and worker-thread hops."""

    def __init__(self) -> None:
        self.current: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self.calls: list[dict[str, list[float]]] = []
        self.hops = 0
        self.collections = [0, 0, 0]  # garbage collections per generation
        self.collecting = 0.0  # seconds spent in them

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.collections[info["generation"]] += 1
            self.collecting += time.perf_counter() - self._gc_started

    def add(self, phase: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.current[phase][0] += end[0] - start[0]
        self.current[phase][1] += end[1] - start[1]

    def finish(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        total = [end[0] - start[0], end[1] - start[1]]
        self.current["SDK"] = [total[i] - sum(v[i] for v in self.current.values()) for i in (0, 1)]
        self.current["total"] = total
        self.calls.append(dict(self.current))
        self.current.clear()


def _timed(clock: Clock, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(function):

        @wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return await function(*args, **kwargs)
            finally:
                clock.add(phase, start, now())

        return timed_async

    @wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = now()
        try:
            return function(*args, **kwargs)
        finally:
            clock.add(phase, start, now())

    return timed


@contextmanager
def patched(owner: Any, attribute: str, replacement: Any) -> Iterator[None]:
    original = owner.__dict__[attribute]
    setattr(owner, attribute, replacement)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


@contextmanager
def instrumented(clock: Clock) -> Iterator[None]:
    import importlib

    with ExitStack() as stack:
        for phase, module_name, path in TIMED:
            owner: Any = importlib.import_module(module_name)
            *parents, attribute = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            stack.enter_context(patched(owner, attribute, _timed(clock, phase, getattr(owner, attribute))))
        original_run_sync = anyio.to_thread.run_sync

        async def counted_run_sync(*args: Any, **kwargs: Any) -> Any:
            clock.hops += 1
            return await original_run_sync(*args, **kwargs)

        stack.enter_context(patched(anyio.to_thread, "run_sync", counted_run_sync))
        yield


def build_server() -> Any:
    from cancel_job_mcp.app import AppOptions, build_mcp_server, start_up
    from cancel_job_mcp.config import load_config

    home, _, _ = canceled_jobs()
    with start_up():  # as `cancel-job-mcp serve` builds it
        server, _ = build_mcp_server(AppOptions(home, load_config(None, home)))
    return server


def request_lines() -> list[bytes]:
    _, project, jobs = canceled_jobs()
    return [tool_call(i, "cancel_job", {"project_reference": project, "job_id": job}) for i, job in
            enumerate(jobs)]  # fmt: skip


def parse_cpu(parse: Callable[[bytes], object], calls: int) -> float:
    """CPU median of one parser on the request lines, back to back (warm caches, unlike the parse row)."""
    lines = request_lines()
    samples = []
    for i in range(calls):
        start = time.process_time()
        parse(lines[i % len(lines)])
        samples.append(time.process_time() - start)
    return median(samples)


def sdk_parse(line: bytes) -> object:
    return types.jsonrpc_message_adapter.validate_json(line, by_name=False)  # as the SDK's stdio_server


def bare_server(answer: dict[str, Any] | None = None, traced: bool = True) -> Any:
    """bench/baseline_server.py's server; given `answer`, its tool returns that record instead of "ok",
    built per call as text and as structured content (as ours builds it), whatever the request. Not
    `traced`: without the SDK's OpenTelemetry middleware, as ours runs when no tracer provider is set."""
    import json

    import baseline_server
    from mcp.server import Server
    from mcp.server._otel import OpenTelemetryMiddleware

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(answer))], structured_content=dict(answer)
        )

    server = (
        baseline_server.build_server()
        if answer is None
        else Server(
            "baseline", version="0.0.0", on_list_tools=baseline_server.list_tools, on_call_tool=call_tool
        )
    )
    if not traced:
        server.middleware = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    return server


async def a_record() -> dict[str, Any]:
    """The record our server answers to the first request line (what the bare server is made to return)."""
    import json

    server = build_server()
    to_server, server_reads = create_context_streams[SessionMessage | Exception](0)
    server_writes, from_server = create_context_streams[SessionMessage](0)
    async with anyio.create_task_group() as group:
        group.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
        message = decode_line(request_lines()[0])
        assert isinstance(message, SessionMessage)
        await to_server.send(message)
        answer = await from_server.receive()
        group.cancel_scope.cancel()
    record: dict[str, Any] = json.loads(answer.message.model_dump_json(by_alias=True))["result"][
        "structuredContent"
    ]
    return record


async def measure(
    calls: int, server: Any = None, lines: list[bytes] | None = None, phases: bool = True
) -> tuple[Clock, int, int]:
    """Drive `calls` requests (by default cancel_job, through our server); returns the clock, bytes in
    and bytes out. Without `phases`, only whole calls are timed (no timer inside our code)."""
    lines = lines or request_lines()
    server = server or build_server()
    clock = Clock()
    to_server, server_reads = create_context_streams[SessionMessage | Exception](0)
    server_writes, from_server = create_context_streams[SessionMessage](0)
    bytes_in = bytes_out = 0

    async def one(line: bytes, timed: bool) -> None:
        nonlocal bytes_in, bytes_out
        start = now()
        message = decode_line(line)
        parsed = now()
        assert isinstance(message, SessionMessage)
        await to_server.send(message)
        answer = await from_server.receive()
        answered = now()
        out = answer.message.model_dump_json(by_alias=True, exclude_unset=True)
        end = now()
        if '"isError":true' in out:
            raise RuntimeError(out)
        if timed:
            clock.add("parse", start, parsed)
            clock.add("serialize", answered, end)
            clock.finish(start, end)
            bytes_in += len(line) + 1
            bytes_out += len(out) + 1
        else:
            clock.current.clear()

    async with anyio.create_task_group() as group:
        group.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
        with instrumented(clock) if phases else nullcontext():
            for i in range(200):  # warm-up: the backend, its connection, lazy imports
                await one(lines[i % len(lines)], timed=False)
            clock.hops = 0
            gc.callbacks.append(clock.on_gc)
            for i in range(calls):
                await one(lines[i % len(lines)], timed=True)
            gc.callbacks.remove(clock.on_gc)
        to_server.close()
        group.cancel_scope.cancel()
    return clock, bytes_in, bytes_out


def control(calls: int, rounds: int = 5) -> Table:
    """The same harness on the bare SDK server: its noop as the SDK ships it, then without the SDK's
    tracing middleware (as ours runs unless a tracer provider is set), then the same requests as ours
    answered with a fixed copy of our record, so that what the SDK spends on our larger request and
    answer is told apart from what our code spends. Rounds interleave the servers, so drift in the
    machine's speed hits all alike."""
    record = anyio.run(a_record)
    noop = [tool_call(i, "noop", {}) for i in range(8)]
    servers = {
        'bare SDK, noop (answers "ok")': (lambda: bare_server(), noop),
        "bare SDK, noop, without the tracing middleware": (lambda: bare_server(traced=False), noop),
        "bare SDK without the tracing middleware, the same cancel_job requests, answers a fixed copy of"
        " our record": (lambda: bare_server(record, traced=False), request_lines()),
        "cancel-job-mcp, cancel_job": (build_server, request_lines()),
    }
    samples: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, (make, lines) in servers.items():
            clock = anyio.run(measure, calls // rounds, make(), lines, False)[0]
            samples[name] += [call["total"][1] for call in clock.calls]
    cpu = {name: median(values) for name, values in samples.items()}
    base = next(iter(cpu.values()))
    table = Table(
        "The same harness on the bare SDK server: what is the SDK's work, what is ours, µs",
        ["server", "CPU per call (median)", "vs bare noop"],
        notes=[
            "In process, same streams, same parse. The tracing middleware opens an OpenTelemetry span per"
            " message; with no tracer provider set it records nothing, and ours leaves it out then. The"
            " third row differs from ours only in who makes the answer, the second only in how big the"
            " request and the answer are."
        ],
    )
    for name, value in cpu.items():
        table.rows.append([name, f"{value * 1e6:.0f}", f"{value / base:.2f}x"])
    return table


def run(quick: bool = False) -> list[Table]:
    calls = 1000 if quick else 3000
    clock, bytes_in, bytes_out = anyio.run(measure, calls)
    whole = [median([call["total"][i] for call in clock.calls]) for i in (0, 1)]
    table = Table(
        f"Where a cancel_job call goes, in process ({calls:,} calls on already-canceled local jobs), µs",
        ["phase", "CPU median", "CPU share", "wall median", "wall p90", "wall share"],
        notes=[
            f"Per call: {clock.hops / calls:.2f} worker-thread hops, {bytes_in / calls:.0f} bytes in,"
            f" {bytes_out / calls:.0f} bytes out; garbage collections in all {calls:,} calls (generations"
            f" 0/1/2): {'/'.join(map(str, clock.collections))}, {clock.collecting * 1e3:.1f} ms. Parsing the"
            f" same lines back to back, CPU median: ours {parse_cpu(decode_line, calls) * 1e6:.0f} µs, the"
            f" SDK's own stdio parser {parse_cpu(sdk_parse, calls) * 1e6:.0f} µs. The real"
            " server on the SDK's serving loop over in-memory streams (no pipes); SDK = the call's time"
            " outside the named phases. CPU = the process's CPU time (all threads); on a busy machine"
            " wall times grow, CPU times much less."
        ],
    )
    for phase in (*PHASES, "total"):
        wall = [call.get(phase, [0.0, 0.0])[0] for call in clock.calls]
        cpu = [call.get(phase, [0.0, 0.0])[1] for call in clock.calls]
        table.rows.append(
            [
                phase,
                f"{median(cpu) * 1e6:.0f}",
                f"{median(cpu) / whole[1]:.0%}",
                f"{median(wall) * 1e6:.0f}",
                f"{percentile(wall, 0.9) * 1e6:.0f}",
                f"{median(wall) / whole[0]:.0%}",
            ]
        )
    return [table, control(calls)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 calls instead of 3,000")
    print_tables(run(parser.parse_args().quick))
