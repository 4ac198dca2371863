"""The MCP conformance suite (@modelcontextprotocol/conformance 0.1.16), server mode, against our HTTP server.

The suite's active server scenarios run against `cancel-job-mcp serve --transport http`. Scenarios that
drive the suite's own fixtures (test_* tools, test:// resources, test_* prompts) or capabilities this server
does not offer are listed, each with its reason, in conformance-expected-failures.yml; the suite itself fails
the run on any other failure and on a listed scenario that passes (a stale entry).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import HttpServer, start_http_server, stop_http_server
from ..node_tools import CONFORMANCE, require

pytestmark = pytest.mark.slow
NODE = require(CONFORMANCE)
EXPECTED_FAILURES = Path(__file__).with_name("conformance-expected-failures.yml")
# The scenarios that test what a server like ours must do; each must pass, not merely be absent from the list.
MUST_PASS = {
    "server-initialize",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
}
SUMMARY_LINE = re.compile(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed$")


def expected_failures() -> list[str]:
    """The scenario names under `server:` (a flat YAML list; read without a YAML library)."""
    names = re.findall(r"^\s+-\s+([\w.-]+)\s*$", EXPECTED_FAILURES.read_text(), flags=re.MULTILINE)
    assert names, f"no scenarios in {EXPECTED_FAILURES}"
    return names


def conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(CONFORMANCE), *args], cwd=cwd, capture_output=True, text=True, timeout=150
    )


@pytest.fixture
def server(home: Path) -> Iterator[HttpServer]:
    server = start_http_server(home)
    yield server
    assert stop_http_server(server) == "", "the HTTP server wrote to stdout"


def test_every_listed_failure_has_a_reason_and_is_a_real_scenario(tmp_path: Path) -> None:
    listed = expected_failures()
    assert len(listed) == len(set(listed)), "duplicate entries"
    lines = EXPECTED_FAILURES.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\s+-\s", line):
            assert lines[index - 1].strip().startswith("#"), f"no reason comment above: {line.strip()}"
    known = conformance("list", "--server", cwd=tmp_path).stdout
    scenarios = set(re.findall(r"^\s+- (\S+)", known, flags=re.MULTILINE))
    assert scenarios, known
    assert set(listed) <= scenarios, set(listed) - scenarios
    assert not MUST_PASS & set(listed)


def test_active_server_suite(server: HttpServer, tmp_path: Path) -> None:
    done = conformance(
        "server", "--url", server.url, "-o", str(tmp_path / "results"),
        "--expected-failures", str(EXPECTED_FAILURES),
        cwd=tmp_path,
    )  # fmt: skip
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    summary = {
        match[2]: (match[1] == "✓", int(match[3]), int(match[4]))
        for match in map(SUMMARY_LINE.match, output.splitlines())
        if match
    }
    report = f"exit {done.returncode}\n{output[output.find('=== SUMMARY ===') :]}\n{done.stderr[-3000:]}"

    assert done.returncode == 0, report
    assert "Baseline check passed" in output, report
    for scenario in MUST_PASS:
        passed, checks_passed, checks_failed = summary[scenario]
        assert (passed, checks_failed) == (True, 0), (scenario, report)
        assert checks_passed > 0, (scenario, report)
    passing = {name for name, (passed, _, _) in summary.items() if passed}
    assert passing.isdisjoint(expected_failures()), report
    assert set(summary) == passing | set(expected_failures()), report

    # The per-scenario checks.json files agree: no failure outside the list.
    for checks_file in (tmp_path / "results").glob("*/checks.json"):
        checks = json.loads(checks_file.read_text())
        scenario = re.sub(r"^server-|-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name)
        if scenario not in expected_failures():
            assert all(check["status"] in ("SUCCESS", "INFO") for check in checks), (scenario, checks)
