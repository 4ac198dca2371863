"""The Slurm backend over HTTP against a fake slurmrestd on 127.0.0.1 speaking the v0.0.40+ shapes (the
documentation's examples, filled in): version detection, auth headers, scoping, errors, the cancel flow
and local paging. The real cluster (v0.0.38 over a unix socket) is tests/backends/slurm/test_e2e.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from cancel_job_mcp.audit import Attempt, AuditLog
from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.backends.slurm import SlurmBackend
from cancel_job_mcp.caller import cli_caller
from cancel_job_mcp.cursors import CursorCodec
from cancel_job_mcp.errors import BackendConfigError, ErrorCode, ToolError
from cancel_job_mcp.routing import Router
from cancel_job_mcp.service import JobService

from ...conftest import FIXTURES
from ...fakes.server import FakeProvider, HttpError, Reply

pytestmark = pytest.mark.anyio

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRhIn0.c2lnbmF0dXJlLW9mLWFkYQ"
DOC = json.loads((FIXTURES / "slurm" / "v0.0.41-doc-get-job.json").read_text())
SUBMITTED = 1_767_000_000


def number(value: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": value}


class FakeSlurmrestd(FakeProvider):
    """slurmrestd 24.05 as its reference describes it: /openapi/v3, and jobs in the v0.0.41 shapes.

    A DELETE turns a running job CANCELLED+COMPLETING; it reads CANCELLED `stop_reads` GETs later.
    """

    def __init__(self) -> None:
        super().__init__(TOKEN)
        self.jobs: dict[int, dict[str, Any]] = {}
        self.stop_reads = 2
        self.stopping: dict[int, int] = {}
        self.delete_errors: dict[int, list[dict[str, Any]]] = {}
        self.finish_on_delete: set[int] = set()
        self.versions = ("v0.0.39", "v0.0.40", "v0.0.41")
        self.socket_like = False

    def add(self, state: str = "RUNNING", account: str = "physics", **values: Any) -> int:
        job_id = 100 + len(self.jobs)
        job = copy.deepcopy(DOC["jobs"][0])
        job.update(
            job_id=job_id,
            name=f"job-{job_id}",
            account=account,
            partition="gpu",
            user_name="ada",
            command=f"/home/ada/job-{job_id}.sh",
            job_state=[state],
            state_reason="None",
            state_description="",
            array_job_id=number(0),
            submit_time=number(SUBMITTED + job_id),
            start_time=number(SUBMITTED + job_id + 1 if state != "PENDING" else 0),
            end_time=number(SUBMITTED + job_id + 60),
            time_limit=number(30),
            exit_code={"status": ["PENDING"], "return_code": {"set": False, "infinite": False, "number": 0}},
        )
        job.update(values)
        self.jobs[job_id] = job
        return job_id

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.socket_like:  # no token: the peer is who it is (as on slurmrestd's unix socket)
            return "x-slurm-user-token" not in headers
        return headers.get("x-slurm-user-token") == TOKEN and headers.get("x-slurm-user-name") == "ada"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        number = 1007 if status >= 500 else 9999
        return {"errors": [{"error": message, "error_number": number, "source": code}], "warnings": []}

    def strip_required(self, body: Any) -> Any:
        return {key: value for key, value in body.items() if key != "jobs"}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        if path == "/openapi/v3":
            paths = {f"/slurm/{v}/jobs": {} for v in self.versions} | {"/slurmdb/v0.0.42/jobs": {}}
            return Reply(200, {"openapi": "3.0.2", "paths": paths})
        version, _, rest = path.removeprefix("/slurm/").partition("/")
        if version not in self.versions:
            raise HttpError(404, "not_found", f"no {path}")
        if rest == "jobs" and method == "GET":
            return Reply(200, {"jobs": [self._read(job_id) for job_id in list(self.jobs)], "errors": []})
        job_id = int(rest.removeprefix("job/"))
        if job_id not in self.jobs:
            return Reply(500, self._errors({"error": "Invalid job id specified", "error_number": 2017}))
        if method == "DELETE":
            return self._delete(job_id)
        return Reply(200, {"jobs": [self._read(job_id)], "errors": [], "warnings": []})

    def _read(self, job_id: int) -> dict[str, Any]:
        if job_id in self.stopping:
            self.stopping[job_id] -= 1
            if self.stopping[job_id] <= 0:
                del self.stopping[job_id]
                self.jobs[job_id]["job_state"] = ["CANCELLED"]
        return self.jobs[job_id]

    def _delete(self, job_id: int) -> Reply:
        job = self.jobs[job_id]
        if job_id in self.delete_errors:
            return Reply(500, self._errors(*self.delete_errors[job_id]))
        if job_id in self.finish_on_delete:
            job["job_state"] = ["COMPLETED"]
            done = {"error": "Job/step already completing or completed", "error_number": 2021}
            return Reply(500, self._errors(done))
        job["job_state"] = ["CANCELLED", "COMPLETING"]
        job["exit_code"] = {"status": ["SIGNALED"], "signal": {"id": number(15), "name": "TERM"}}
        self.stopping[job_id] = self.stop_reads
        return Reply(200, {"errors": [], "warnings": []})

    @staticmethod
    def _errors(*errors: dict[str, Any]) -> dict[str, Any]:
        return {
            "errors": [{"description": "", "source": "slurm_kill_job", **e} for e in errors],
            "warnings": [],
        }


@pytest.fixture
def fake() -> Iterator[FakeSlurmrestd]:
    with FakeSlurmrestd() as server:
        yield server


def settings(fake: FakeSlurmrestd, **options: Any) -> BackendSettings:
    return BackendSettings(
        name="hpc",
        kind="slurm",
        base_url=fake.url,
        token_env="TEST_SLURM_JWT",
        projects=("physics", "chemistry"),
        settle_timeout=10,
        options={"user_name": "ada", "max_retries": 0, **options},
    )


@pytest.fixture
async def backend(fake: FakeSlurmrestd, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlurmBackend]:
    monkeypatch.setenv("TEST_SLURM_JWT", TOKEN)
    made = SlurmBackend(settings(fake))
    yield made
    await made.aclose()


async def error_of(call: Any) -> ToolError:
    with pytest.raises(ToolError) as raised:
        await call
    return raised.value


async def test_the_newest_version_is_detected_once_and_the_jwt_sent(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    job_id = fake.add()
    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(backend.get_job, "physics", str(job_id))
    record = await backend.get_job("physics", str(job_id))
    assert (record["id"], record["status"], record["target"]) == (
        str(job_id),
        "working",
        f"/home/ada/job-{job_id}.sh",
    )
    assert len(fake.requests_to("GET", "/openapi/v3")) == 1
    reads = fake.requests_to("GET", f"/job/{job_id}")
    assert {request.path for request in reads} == {f"/slurm/v0.0.41/job/{job_id}"}
    assert all(request.headers["x-slurm-user-token"] == TOKEN for request in reads)
    assert all(request.headers["x-slurm-user-name"] == "ada" for request in reads)


async def test_a_configured_version_is_used_as_is(
    fake: FakeSlurmrestd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLURM_JWT", TOKEN)
    backend = SlurmBackend(settings(fake, api_version="v0.0.40"))
    job_id = fake.add()
    assert (await backend.get_job("physics", str(job_id)))["status"] == "working"
    assert (await backend.list_jobs("physics", None, 10, None))["jobs"][0]["id"] == str(job_id)
    await backend.aclose()
    assert not fake.requests_to("GET", "/openapi/v3")
    assert [request.path for request in fake.requests] == [
        f"/slurm/v0.0.40/job/{job_id}",
        "/slurm/v0.0.40/jobs",
    ]


async def test_a_server_without_a_usable_version_is_named(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    fake.versions = ("v0.0.36", "v0.0.37")
    error = await error_of(backend.get_job("physics", "100"))
    assert error.code == ErrorCode.UPSTREAM_ERROR
    assert "lists no job API from v0.0.38 on" in error.message
    assert "v0.0.36, v0.0.37" in error.message


async def test_cancel_waits_through_completing_until_cancelled(
    fake: FakeSlurmrestd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_SLURM_JWT", TOKEN)
    victim, bystander = fake.add(), fake.add()
    fake.stop_reads = 3
    service = JobService(Router([settings(fake)]), CursorCodec(tmp_path / "key"), AuditLog(tmp_path))
    seen: list[str] = []

    async def progress(waited: float, budget: float, message: str) -> None:
        seen.append(message)

    stop = await service.cancel_job("physics", str(victim), Attempt("cancel_job", cli_caller()), progress)
    record = stop.record
    await service.aclose()
    assert (record["status"], record["exit_code"]) == ("canceled", 143)
    assert len(seen) >= 2, "no progress reported while Slurm said CANCELLED+COMPLETING"
    assert [r.path for r in fake.requests_to("DELETE")] == [f"/slurm/v0.0.41/job/{victim}"]
    assert fake.jobs[bystander]["job_state"] == ["RUNNING"]


async def test_a_job_of_another_account_is_not_found_and_nothing_is_sent_to_cancel_it(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    foreign = fake.add(account="biology")
    for tool in (backend.get_job, backend.cancel_job):
        error = await error_of(tool("physics", str(foreign)))
        assert error.code == ErrorCode.NOT_FOUND
        assert error.message.startswith(f"No job '{foreign}' in account 'physics' on Slurm at http://")
        assert "account 'physics'" in error.message
    assert not fake.requests_to("DELETE")
    assert fake.jobs[foreign]["job_state"] == ["RUNNING"]


@pytest.mark.parametrize(
    ("scope", "project", "found"),
    [("partition", "gpu", True), ("partition", "cpu", False), ("user", "ada", True), ("user", "bob", False)],
)
async def test_scope_by_partition_or_user(
    fake: FakeSlurmrestd, monkeypatch: pytest.MonkeyPatch, scope: str, project: str, found: bool
) -> None:
    monkeypatch.setenv("TEST_SLURM_JWT", TOKEN)
    backend = SlurmBackend(settings(fake, scope=scope))
    job_id = fake.add()
    listing = await backend.list_jobs(project, None, 10, None)
    assert [job["id"] for job in listing["jobs"]] == ([str(job_id)] if found else [])
    if found:
        assert (await backend.get_job(project, str(job_id)))["project_id"] == project
    else:
        assert (await error_of(backend.cancel_job(project, str(job_id)))).code == ErrorCode.NOT_FOUND
        assert not fake.requests_to("DELETE")
    await backend.aclose()


async def test_finished_jobs_are_not_cancellable_and_nothing_is_sent(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    done = fake.add("COMPLETED", exit_code={"status": ["SUCCESS"], "return_code": number(0)})
    error = await error_of(backend.cancel_job("physics", str(done)))
    assert error.code == ErrorCode.NOT_CANCELLABLE
    assert f"Job '{done}' in account 'physics' on Slurm at {fake.url} is already completed" in error.message
    assert not fake.requests_to("DELETE")


async def test_a_job_that_finishes_before_the_delete_is_not_cancellable(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    job_id = fake.add()
    fake.finish_on_delete.add(job_id)
    error = await error_of(backend.cancel_job("physics", str(job_id)))
    assert error.code == ErrorCode.NOT_CANCELLABLE
    # Worded as when the job had finished before the cancel: where it is, then its status.
    assert f"Job '{job_id}' in account 'physics' on Slurm at {fake.url} is already completed" in error.message


async def test_unknown_and_malformed_ids(backend: SlurmBackend, fake: FakeSlurmrestd) -> None:
    for tool in (backend.get_job, backend.cancel_job):
        error = await error_of(tool("physics", "4242"))
        assert error.code == ErrorCode.NOT_FOUND
        assert "'4242'" in error.message
    for bad in ("abc", "12/../13", "-1", "1" * 11):
        error = await error_of(backend.get_job("physics", bad))
        assert error.code == ErrorCode.INVALID_ARGUMENT
        assert error.message.startswith("job_id: must be a Slurm job id")
    assert not fake.requests_to("DELETE")
    assert all("4242" in request.path or request.path == "/openapi/v3" for request in fake.requests)


async def test_slurm_errors_are_quoted_without_secrets(backend: SlurmBackend, fake: FakeSlurmrestd) -> None:
    job_id = fake.add()
    other_jwt = "eyJraWQiOiJvdGhlciJ9.eyJzdWIiOiJib2IifQ.b3RoZXItc2lnbmF0dXJl"
    fake.delete_errors[job_id] = [
        {
            "error": "Access/permission denied",
            "error_number": 2002,
            "description": f"user ada with token {TOKEN} may not signal jobs of bob ({other_jwt})",
        }
    ]
    error = await error_of(backend.cancel_job("physics", str(job_id)))
    assert error.code == ErrorCode.UNAUTHORIZED
    assert error.message.startswith(
        "Slurm refused the request (HTTP 500): Access/permission denied (user ada with"
    )
    assert "[2002]" in error.message
    assert TOKEN not in str(error)
    assert TOKEN[:20] not in str(error)
    assert other_jwt[:20] not in str(error)
    assert "[redacted]" in error.message


async def test_an_unreachable_controller_is_unavailable(backend: SlurmBackend, fake: FakeSlurmrestd) -> None:
    job_id = fake.add()
    fake.delete_errors[job_id] = [
        {"error": "Unable to contact slurm controller (connect failure)", "error_number": 1007}
    ]
    error = await error_of(backend.cancel_job("physics", str(job_id)))
    assert error.code == ErrorCode.UPSTREAM_UNAVAILABLE
    assert "Unable to contact slurm controller" in error.message


async def test_rejected_credentials_name_the_variable_never_the_token(
    fake: FakeSlurmrestd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLURM_JWT", TOKEN[:-4] + "AAAA")
    backend = SlurmBackend(settings(fake))
    error = await error_of(backend.get_job("physics", "100"))
    await backend.aclose()
    assert error.code == ErrorCode.UNAUTHORIZED
    assert "TEST_SLURM_JWT" in error.message
    assert "'ada'" in error.message
    assert TOKEN[:20] not in str(error)


async def test_listing_pages_newest_first_with_a_status_filter(
    backend: SlurmBackend, fake: FakeSlurmrestd
) -> None:
    running = [fake.add() for _ in range(4)]
    pending = [fake.add("PENDING") for _ in range(3)]
    fake.add(account="biology")
    ids: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await backend.list_jobs("physics", None, 3, cursor)
        pages += 1
        ids += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == [str(job_id) for job_id in reversed(running + pending)]
    assert pages == 3
    page = await backend.list_jobs("physics", "submitted", 10, None)
    assert [job["id"] for job in page["jobs"]] == [str(job_id) for job_id in reversed(pending)]
    assert page["next_cursor"] is None
    for bad in ("x", "1:2:3", "9" * 30 + ":1"):
        assert (await error_of(backend.list_jobs("physics", None, 3, bad))).code == ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("options", "base_url", "problem"),
    [
        ({}, None, "needs base_url"),
        ({}, "unix:run/slurmrestd.sock", "absolute path"),
        ({"user_name": 7}, "http://127.0.0.1:6820", "user_name must be a string"),
    ],
)
def test_bad_settings_are_refused_by_name(
    options: dict[str, Any], base_url: str | None, problem: str
) -> None:
    with pytest.raises(BackendConfigError) as raised:
        SlurmBackend(BackendSettings(name="hpc", kind="slurm", base_url=base_url, options=options))
    assert problem in str(raised.value)


async def test_the_whole_queue_is_read_past_other_providers_limit_but_not_past_its_own(
    fake: FakeSlurmrestd,
) -> None:
    fake.socket_like = True
    for _ in range(50):  # 5 MiB of JSON: more than the 4 MiB other providers are read up to
        fake.add(account="biology", comment="x" * 100_000)
    mine = fake.add()
    open_settings = replace(settings(fake), token_env=None, options={})
    backend = SlurmBackend(open_settings)
    page = await backend.list_jobs("physics", None, 10, None)
    await backend.aclose()
    assert [job["id"] for job in page["jobs"]] == [str(mine)]
    backend = SlurmBackend(replace(open_settings, options={"max_response_bytes": 4 * 1024 * 1024}))
    error = await error_of(backend.list_jobs("physics", None, 10, None))
    await backend.aclose()
    assert error.code == ErrorCode.UPSTREAM_ERROR
    assert "max_response_bytes" in error.message
