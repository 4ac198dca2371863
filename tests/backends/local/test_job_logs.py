"""get_job_logs on the local runtime, through real MCP clients over stdio and Streamable HTTP: the tail of a
200,000-line log, the byte bound, the filter, invalid UTF-8, and credentials a job prints.

The jobs run once for the module; both servers read the same state directory."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from mcp.client.streamable_http import streamable_http_client

from cancel_job_mcp.backends import logs
from cancel_job_mcp.backends.logs import LogQuery, select_file, select_text
from cancel_job_mcp.schemas import load_schema

from ...conftest import client, show, start_http_server, stdio_server, stop_http_server, submit, wait_until

pytestmark = pytest.mark.xdist_group(__name__)

LINES = 200_000
PROVIDER_TOKEN = "vf_canary_Zq8xK2mP4nR7tW1yB5"
HTTP_TOKEN = "http-canary-Hj3kL9sD0fG2aQ7w"
BIG_JOB = f"import sys\nsys.stdout.write(''.join(f'line {{i}}\\n' for i in range({LINES})))\n"
GARBLED_JOB = (
    "import sys\n"
    "out = sys.stdout.buffer\n"
    "out.write(b'before \\xff\\xfe\\xc3 bytes\\n')\n"
    f"out.write(b'the provider token is {PROVIDER_TOKEN}\\n')\n"
    f"out.write(b'Authorization: Bearer {HTTP_TOKEN}\\n')\n"
    f"out.write(b'a piece: {PROVIDER_TOKEN[4:16]}\\n')\n"
    "out.write(b'after\\n')\n"
)
SERVER_ENV = {"VERYFRONT_API_TOKEN": PROVIDER_TOKEN, "CANCEL_JOB_MCP_HTTP_TOKENS": HTTP_TOKEN}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Jobs:
    home: Path
    big: str
    garbled: str


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    home = tmp_path_factory.mktemp("home")
    big = submit(home, "logs", "python3", "-c", BIG_JOB)["id"]
    garbled = submit(home, "logs", "python3", "-c", GARBLED_JOB)["id"]
    for job_id in (big, garbled):
        wait_until(lambda job_id=job_id: show(home, "logs", job_id)["status"] == "completed", timeout=60)
    return Jobs(home, big, garbled)


@pytest.fixture(scope="module")
def http_url(jobs: Jobs) -> Iterator[str]:
    server = start_http_server(jobs.home, **SERVER_ENV)
    yield server.url
    assert stop_http_server(server) == ""


@pytest.fixture(scope="module", params=["stdio", "http"])
async def session(request: pytest.FixtureRequest, jobs: Jobs) -> AsyncIterator[Any]:
    if request.param == "stdio":
        async with client(stdio_server(jobs.home, **SERVER_ENV)) as opened:
            yield opened
        return
    import httpx2

    url = request.getfixturevalue("http_url")
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"})
    async with http, client(streamable_http_client(url, http_client=http)) as opened:
        yield opened


async def read_logs(session: Any, job_id: str, **options: Any) -> dict[str, Any]:
    result = await session.call_tool(
        "get_job_logs", {"project_reference": "logs", "job_id": job_id, **options}
    )
    assert not result.is_error, result.content[0].text
    answer: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == answer
    Draft7Validator(load_schema("get_job_logs.output")).validate(answer)
    return answer


@pytest.mark.slow
@pytest.mark.anyio
async def test_tail_is_the_last_lines_of_a_200000_line_log(session: Any, jobs: Jobs) -> None:
    answer = await read_logs(session, jobs.big, tail_lines=10)
    path = jobs.home / "logs" / f"{jobs.big}.log"
    assert answer["lines"] == [f"line {i}" for i in range(LINES - 10, LINES)]
    assert answer["truncated"] is False
    assert answer["log_bytes"] == path.stat().st_size
    assert answer["source"] == str(path)
    assert (answer["project_id"], answer["job_id"]) == ("logs", jobs.big)
    default = await read_logs(session, jobs.big)
    assert default["lines"] == [f"line {i}" for i in range(LINES - 100, LINES)]


@pytest.mark.anyio
async def test_max_bytes_keeps_the_newest_lines_that_fit_and_says_so(session: Any, jobs: Jobs) -> None:
    answer = await read_logs(session, jobs.big, tail_lines=5000, max_bytes=100)
    kept = answer["lines"]
    assert kept == [f"line {i}" for i in range(LINES - len(kept), LINES)]
    assert sum(len(line) + 1 for line in kept) <= 100 < sum(len(line) + 1 for line in ["line 199990", *kept])
    assert answer["truncated"] is True
    whole = await read_logs(session, jobs.big, tail_lines=5000, max_bytes=262144)
    assert len(whole["lines"]) == 5000
    assert whole["truncated"] is False


@pytest.mark.anyio
async def test_contains_keeps_only_matching_lines_case_insensitively(session: Any, jobs: Jobs) -> None:
    answer = await read_logs(session, jobs.big, contains="LINE 12345", tail_lines=5000)
    assert answer["lines"] == ["line 12345", *(f"line {12345 * 10 + i}" for i in range(10))]
    assert answer["truncated"] is False
    assert (await read_logs(session, jobs.big, contains="no such text"))["lines"] == []


@pytest.mark.anyio
async def test_invalid_utf8_is_replaced_and_credentials_are_redacted(session: Any, jobs: Jobs) -> None:
    result = await session.call_tool("get_job_logs", {"project_reference": "logs", "job_id": jobs.garbled})
    text = result.content[0].text
    for secret in (PROVIDER_TOKEN, HTTP_TOKEN, PROVIDER_TOKEN[4:16], HTTP_TOKEN[5:15]):
        assert secret not in text
        assert secret not in json.dumps(result.structured_content)
    lines = result.structured_content["lines"]
    assert lines[0] == "before \ufffd\ufffd\ufffd bytes"
    assert lines[1] == "the provider token is [redacted]"
    assert lines[2] == "Authorization: Bearer [redacted]"
    assert lines[3] == "a piece: [redacted]"
    assert lines[4] == "after"
    # The filter sees the redacted text: it cannot be used to probe for a credential.
    probe = await read_logs(session, jobs.garbled, contains=PROVIDER_TOKEN[:12])
    assert probe["lines"] == []


@pytest.mark.anyio
async def test_another_projects_job_and_bad_bounds_are_refused(session: Any, jobs: Jobs) -> None:
    other = await session.call_tool("get_job_logs", {"project_reference": "other", "job_id": jobs.big})
    assert other.is_error
    assert other.content[0].text.startswith("not_found: ")
    for name, value in (("tail_lines", 0), ("tail_lines", 5001), ("max_bytes", 262145), ("contains", "")):
        bad = await session.call_tool(
            "get_job_logs", {"project_reference": "logs", "job_id": jobs.big, name: value}
        )
        assert bad.is_error
        assert bad.content[0].text.startswith(f"invalid_argument: {name}: "), bad.content[0].text


# --- the reader, in process: bounds that hold whatever the file ---------------------------------------


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every read the log reader makes."""
    reads: list[int] = []
    real = os.pread

    def pread(fd: int, count: int, offset: int) -> bytes:
        reads.append(count)
        return real(fd, count, offset)

    monkeypatch.setattr(logs.os, "pread", pread)
    return reads


def write_log(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def test_a_tail_reads_only_the_end_of_a_big_log(tmp_path: Path, counted_reads: list[int]) -> None:
    fd = write_log(tmp_path / "big.log", b"".join(b"line %d\n" % i for i in range(LINES)))
    try:
        selection, size = select_file(fd, LogQuery(tail_lines=10))
    finally:
        os.close(fd)
    assert selection.lines == [f"line {i}" for i in range(LINES - 10, LINES)]
    assert size > 2_000_000
    assert sum(counted_reads) <= logs.BLOCK_BYTES


def test_a_filter_stops_at_the_scan_limit_and_says_so(tmp_path: Path, counted_reads: list[int]) -> None:
    fd = write_log(tmp_path / "big.log", b"needle\n" + b"hay\n" * 100_000)
    try:
        selection, _ = select_file(fd, LogQuery(contains="needle"), scan_limit=100_000)
    finally:
        os.close(fd)
    assert selection.lines == []
    assert selection.truncated is True
    assert sum(counted_reads) == 100_000


def test_a_line_longer_than_max_bytes_keeps_its_end(tmp_path: Path, counted_reads: list[int]) -> None:
    fd = write_log(tmp_path / "long.log", b"first\n" + b"x" * 1_000_000 + b"END")
    try:
        selection, _ = select_file(fd, LogQuery(max_bytes=64))
    finally:
        os.close(fd)
    assert selection.lines == ["x" * 60 + "END"]
    assert selection.truncated is True
    assert sum(counted_reads) <= logs.BLOCK_BYTES


def test_an_older_line_too_long_to_read_whole_is_flagged(tmp_path: Path) -> None:
    fd = write_log(tmp_path / "long.log", b"a" * 200_000 + b"\nlast\n")
    try:
        selection, _ = select_file(fd, LogQuery(max_bytes=100_000))
    finally:
        os.close(fd)
    assert selection.lines == ["last"]  # the long line's end alone would not fit with it: left out
    assert selection.truncated is True


@pytest.mark.parametrize(
    ("text", "lines"),
    [("", []), ("\n", [""]), ("a", ["a"]), ("a\n\nb\r\n", ["a", "", "b"]), ("\n\nz", ["", "", "z"])],
)
def test_text_and_files_split_alike(tmp_path: Path, text: str, lines: list[str]) -> None:
    assert select_text(text, LogQuery()).lines == lines
    fd = write_log(tmp_path / "x.log", text.encode())
    try:
        assert select_file(fd, LogQuery())[0].lines == lines
    finally:
        os.close(fd)
