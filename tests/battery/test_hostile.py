"""Hostile providers, through a real stdio server and through the real CLI (issue 11, "must show").

Each fake provider (the four hosted ones, a Ray dashboard behind a token proxy and Temporal's HTTP
API with an API key) answers in turn
with a gzip bomb (415 KB -> 400 MiB), a 200 MB chunked body, one byte a second, broken gzip, a NaN,
JSON nested 100,000 levels, absurd timestamps (1e20, -1e15, year 9999 at -05:00), the token in
pieces and encodings (in an error, and in a 200's job fields), and rate-limit headers holding any
value (inf, 1e400, negative, NaN, garbage, a far date, an enormous number). Every call must end in
its documented code within the total deadline (connect_timeout + read_timeout) plus MARGIN, with no
`internal_error`, no traceback, and no piece of 8+ characters of the token or its encodings in any
answer or log line (the server logs at debug level). The server's peak RSS over the gzip bombs and
huge bodies must grow by less than 100 MB; so must the CLI's.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..battery_support import RawStdioServer, error_code, serving
from ..conftest import CLI, env_for
from ..fakes import (
    PROVIDERS,
    FakeProvider,
    FakeRay,
    FakeTemporal,
    FakeVeryfront,
    Fault,
    leaks,
    provider_tables,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 2.0  # as in the issue: one byte a second never trips it, only the total deadline does
# The deadline is connect_timeout + read_timeout; the margin covers process and event-loop overhead
# on a loaded 2-CPU machine.
MARGIN = 1.5
BOUND = CONNECT_TIMEOUT + READ_TIMEOUT + MARGIN
MEMORY_GROWTH_LIMIT_KIB = 100 * 1024

HOSTILE: dict[Fault, str | None] = {
    Fault.GZIP_BOMB: "upstream_error",
    Fault.HUGE_BODY: "upstream_error",
    Fault.TRICKLE: "upstream_unavailable",
    Fault.BAD_GZIP: "upstream_error",
    Fault.NAN: "upstream_error",
    Fault.DEEP: "upstream_error",
    Fault.TS_HUGE: "upstream_error",
    Fault.TS_NEGATIVE: "upstream_error",
    Fault.TS_9999: "upstream_error",
    Fault.ECHO_ERROR: "invalid_argument",
    Fault.ECHO_FIELDS: None,  # a success, without the token
}
WAITS = ["inf", "-inf", "1e400", "-5", "NaN", "soon, maybe", "Fri, 31 Dec 9999 23:59:59 GMT",
         "Mon, 99 Foo 2020 99:99:99 GMT", "9" * 400, "9999-12-31T23:59:59-05:00"]  # fmt: skip
MEMORY_FAULTS = (Fault.GZIP_BOMB, Fault.HUGE_BODY)


@dataclass(frozen=True)
class Target:
    kind: str
    make: Callable[[str], FakeProvider]
    project: str
    add_active: Callable[[Any], str]

    @property
    def reference(self) -> str:
        return f"{self.kind}:{self.project}"

    @property
    def token(self) -> str:
        return TOKENS[self.kind]

    def __str__(self) -> str:
        return self.kind


# Distinct canaries with no word of the server's own vocabulary in them.
TOKENS = {
    "veryfront": "hk-3f9c1e7a5b2d8046e1",
    "digitalocean": "hk-b84d20f6c9a1e357d2",
    "ionworks": "hk-5e0a9d3c7f1b6284a3",
    "talonic": "hk-c6f2a8e4d0b9137c54",
    "ray": "hk-1d7b5f3a9e2c0468b5",
    "temporal": "hk-7a2e9c4f1b6d0385c6",
}
TARGETS = [Target(case.kind, case.fake, case.project, case.add_active) for case in PROVIDERS]
TARGETS.append(Target("ray", FakeRay, "cluster", lambda fake: fake.add_job()))
TARGETS.append(Target("temporal", FakeTemporal, "default", lambda fake: fake.add_workflow()))
BY_KIND = {target.kind: target for target in TARGETS}


@dataclass
class Rig:
    root: Path
    config: Path
    env: dict[str, str]
    server: RawStdioServer
    fakes: dict[str, FakeProvider]
    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    rss_before_kib: int = 0
    peak_kib: int = 0
    cli_runs: int = 0
    cli_peak_growth_kib: int = 0
    texts: list[str] = field(default_factory=list)


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field_name} for pid {pid}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("battery-hostile")
    home = root / "home"
    home.mkdir()
    fakes = {target.kind: target.make(target.token) for target in TARGETS}
    config = root / "config.toml"
    settings = (
        f"connect_timeout = {CONNECT_TIMEOUT}\nread_timeout = {READ_TIMEOUT}\nsettle_timeout = 0.5\n"
        "max_retries = 1\nretry_backoff = 0.01\nmax_retry_wait = 1\n"
    )
    config.write_text(provider_tables(fakes, "HOSTILE", settings))
    env = {f"HOSTILE_{target.kind.upper()}": target.token for target in TARGETS}
    with serving(home, config, env, "debug", fakes.values()) as (server, ending):
        rig = Rig(root, config, env_for(home, **env), server, fakes)
        yield rig
    alive, stderr = ending.alive, ending.stderr
    print(
        f"\n[battery-hostile] server: {rig.calls} tool calls, codes {dict(sorted(rig.codes.items()))},"
        f" slowest {rig.slowest:.2f} s (bound {BOUND} s), peak RSS {rig.peak_kib / 1024:.0f} MiB"
        f" (+{(rig.peak_kib - rig.rss_before_kib) / 1024:.1f} MiB over the bombs and huge bodies);"
        f" CLI: {rig.cli_runs} runs, peak RSS growth {rig.cli_peak_growth_kib / 1024:.1f} MiB;"
        f" {len(stderr.splitlines())} debug log lines checked"
    )
    assert alive, stderr[-3000:]
    assert "DEBUG" in stderr
    for bad in ("Traceback", "internal_error", "failed unexpectedly"):
        assert bad not in stderr, stderr[-3000:]
    for target in TARGETS:
        assert leaks(stderr, target.token) == [], target.kind
    for text in rig.texts:
        for target in TARGETS:
            assert leaks(text, target.token) == [], (target.kind, text[:300])


def call(rig: Rig, target: Target, tool: str, job_id: str) -> tuple[str | None, str, float]:
    """(error code or None, the text block, seconds) of one tool call on the server."""
    arguments = {"project_reference": target.reference}
    if tool != "list_jobs":
        arguments["job_id"] = job_id
    started = time.monotonic()
    answer = rig.server.call_tool(tool, arguments, timeout=60)
    elapsed = time.monotonic() - started
    assert "error" not in answer, answer
    result: dict[str, Any] = answer["result"]
    text: str = result["content"][0]["text"]
    rig.calls += 1
    rig.texts.append(json.dumps(answer))
    code = error_code(result)
    rig.codes[code or "ok"] += 1
    rig.slowest = max(rig.slowest, elapsed)
    return code, text, elapsed


@pytest.mark.parametrize("tool", ["get_job", "cancel_job", "list_jobs"])
@pytest.mark.parametrize("fault", list(HOSTILE), ids=str)
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_hostile_answer_ends_in_its_code_in_time(rig: Rig, target: Target, fault: Fault, tool: str) -> None:
    fake = rig.fakes[target.kind]
    job_id = target.add_active(fake)
    fake.clear_faults()
    # Twice: Ray's stop answer holds no job, the damage is in the read that follows it (and Temporal's
    # cancel reads the workflow before and after).
    fake.fail(fault, times=2)
    if fault in MEMORY_FAULTS and not rig.rss_before_kib:
        rig.rss_before_kib = status_kib(rig.server.pid, "VmRSS")
    try:
        code, text, elapsed = call(rig, target, tool, job_id)
    finally:
        fake.clear_faults()
    assert code == HOSTILE[fault], text
    assert elapsed < BOUND, f"{fault} took {elapsed:.2f} s"
    assert "Traceback" not in text
    if fault is Fault.TRICKLE:
        assert "did not send its whole answer within" in text
    if fault is Fault.GZIP_BOMB:
        assert "larger than 4194304 bytes" in text
    rig.peak_kib = status_kib(rig.server.pid, "VmHWM")
    if rig.rss_before_kib:
        assert rig.peak_kib - rig.rss_before_kib < MEMORY_GROWTH_LIMIT_KIB


@pytest.mark.parametrize("wait", WAITS)
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_any_rate_limit_header_value(rig: Rig, target: Target, wait: str) -> None:
    fake = rig.fakes[target.kind]
    job_id = target.add_active(fake)
    fake.clear_faults()
    fake.wait_header = wait
    fake.fail_always(Fault.RATE_LIMITED)
    try:
        code, text, elapsed = call(rig, target, "get_job", job_id)
    finally:
        fake.clear_faults()
        fake.wait_header = None
    assert code == "rate_limited", text
    assert elapsed < BOUND


def test_the_checker_sees_what_it_must(rig: Rig) -> None:
    """Guard against a vacuous pass: the fakes' echoed forms are leaks to the checker."""
    from ..fakes import leaked_forms

    for target in TARGETS:
        for form in leaked_forms(target.token):
            assert leaks(f"x {form} y", target.token), (target.kind, form)


# --- the CLI -----------------------------------------------------------------------------------------


def run_cli(rig: Rig, *args: str) -> tuple[int, str, str, float, int]:
    """(exit code, stdout, stderr, seconds, peak RSS KiB) of one CLI run."""
    out, err = rig.root / "cli.out", rig.root / "cli.err"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*CLI, "--config", str(rig.config), "--log-level", "debug", *args],
            env=rig.env,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            process.returncode = 0  # reaped by wait4: keep Popen from waiting again
    elapsed = time.monotonic() - started
    rig.cli_runs += 1
    return os.waitstatus_to_exitcode(status), out.read_text(), err.read_text(), elapsed, usage.ru_maxrss


@pytest.fixture(scope="module")
def cli_baseline_kib(rig: Rig) -> int:
    target = BY_KIND["veryfront"]
    code, _, stderr, _, peak = run_cli(
        rig, "show", target.reference, target.add_active(rig.fakes["veryfront"])
    )
    assert code == 0, stderr
    return peak


@pytest.mark.parametrize("fault", list(HOSTILE), ids=str)
@pytest.mark.parametrize("kind", ["veryfront", "ray", "temporal"])
def test_cli_against_a_hostile_provider(rig: Rig, cli_baseline_kib: int, kind: str, fault: Fault) -> None:
    target = BY_KIND[kind]
    fake = rig.fakes[kind]
    job_id = target.add_active(fake)
    fake.clear_faults()
    fake.fail(fault)
    try:
        code, stdout, stderr, elapsed, peak = run_cli(rig, "show", target.reference, job_id)
    finally:
        fake.clear_faults()
    expected = HOSTILE[fault]
    if expected is None:
        assert code == 0, stderr
    else:
        assert code == 1, stderr
        assert stderr.splitlines()[-1].startswith(f"{expected}: "), stderr[-500:]
    assert "Traceback" not in stderr
    # The CLI starts a whole interpreter: its bound adds the start-up time a loaded machine needs.
    assert elapsed < BOUND + 10
    rig.cli_peak_growth_kib = max(rig.cli_peak_growth_kib, peak - cli_baseline_kib)
    assert peak - cli_baseline_kib < MEMORY_GROWTH_LIMIT_KIB, f"{fault}: {peak} KiB"
    assert leaks(stdout + stderr, target.token) == []


def test_cli_jobs_over_three_pages_of_a_keep_alive_provider(tmp_path: Path) -> None:
    """One event loop for the whole listing: 250 jobs, three pages of 100, over one kept-alive connection."""
    token = "cjm-PAGES-3e8a61b09d"
    with FakeVeryfront(token) as fake:
        ids = {fake.add_job("pages", "working") for _ in range(250)}
        config = tmp_path / "config.toml"
        config.write_text(f'[backends.veryfront]\nbase_url = "{fake.url}"\ntoken_env = "PAGES_TOKEN"\n')
        home = tmp_path / "home"
        home.mkdir()
        done = subprocess.run(
            [*CLI, "--config", str(config), "jobs", "--project", "veryfront:pages"],
            env=env_for(home, PAGES_TOKEN=token),
            capture_output=True,
            text=True,
            timeout=60,
        )
        listed = fake.requests_to("GET", "/jobs")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = done.stdout.splitlines()[1:]
    assert {row.split()[0] for row in rows} == ids
    assert len(listed) == 3
    assert len({request.peer for request in listed}) == 1, "the pages did not share a kept-alive connection"
