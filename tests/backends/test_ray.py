"""The Ray backend: the pure mapping on recorded Ray 2.60 payloads, the HTTP handling against a small fake
dashboard, and cancels against a real Ray head node (skipped when `.ci/install-ray.sh` has not run)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.backends.ray import (
    ADDRESS,
    DEFAULT_DASHBOARD_URL,
    RayBackend,
    create,
    listed_jobs,
    page_of,
    redact_runtime_env,
    to_record,
)
from cancel_job_mcp.config import load_config
from cancel_job_mcp.errors import BackendConfigError, ErrorCode, ToolError
from cancel_job_mcp.record import JobStatus
from cancel_job_mcp.routing import Router

from ..cluster_support import poll
from ..conftest import FIXTURES, client, stdio_server
from ..ray_cluster import RayHead, SharedJobs

pytestmark = pytest.mark.xdist_group("ray_head")

RAY_FIXTURES = FIXTURES / "ray"
PROJECT = "cluster1"


def payload(name: str) -> Any:
    return json.loads((RAY_FIXTURES / f"{name}.json").read_text())


def settings(base_url: str | None = None, **changes: Any) -> BackendSettings:
    fields: dict[str, Any] = {"name": "ray", "kind": "ray", "base_url": base_url, "read_timeout": 10.0}
    fields.update(changes)
    return BackendSettings(**fields)


# --- the mapping, on payloads recorded from a Ray 2.60.0 head node ---------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("pending", JobStatus.SUBMITTED),
        ("running", JobStatus.WORKING),
        ("succeeded", JobStatus.COMPLETED),
        ("failed", JobStatus.FAILED),
        ("stopped", JobStatus.CANCELED),
        ("driver", JobStatus.COMPLETED),
    ],
)
def test_recorded_payloads_map_to_valid_records(
    name: str, status: JobStatus, record_validator: Draft7Validator
) -> None:
    record = to_record(payload(name), PROJECT)
    record_validator.validate(record)
    assert record["status"] == status
    assert record["project_id"] == PROJECT
    assert (record["timeout_seconds"], record["backoff_limit"]) == (0, 0)
    assert record["config"]["_provider"]["status"] == payload(name)["status"]


def test_running_job_record() -> None:
    record = to_record(payload("running"), PROJECT)
    assert record["id"] == "raysubmit_x1ffYScERG28v8Rp"
    assert record["name"] == "sleeper"  # metadata.name
    assert record["target"] == "sleep 600"
    assert record["created_at"] == record["started_at"] == "2026-11-22T04:54:40.606Z"
    assert record["updated_at"] == record["created_at"]
    assert (record["completed_at"], record["exit_code"], record["failed_reason"]) == (None, None, None)
    assert record["config"]["metadata"] == {"name": "sleeper", "owner": "tests"}


def test_env_var_values_never_reach_the_record() -> None:
    raw = payload("running")
    assert raw["runtime_env"]["env_vars"]["API_TOKEN"] == "s3cret"
    record = to_record(raw, PROJECT)
    assert record["config"]["runtime_env"] == {"env_vars": {"API_TOKEN": "[redacted]"}}
    assert "s3cret" not in json.dumps(record)


def test_url_credentials_are_removed_from_the_runtime_env() -> None:
    runtime_env = {
        "working_dir": "https://user:ghp_secret@github.com/org/repo/archive/main.zip",
        "py_modules": ["s3://bucket/mod.zip", "https://tok@example.com/m.whl"],
        "pip": {"packages": ["requests"]},
    }
    cleaned = redact_runtime_env(runtime_env)
    assert cleaned["working_dir"] == "https://[redacted]@github.com/org/repo/archive/main.zip"
    assert cleaned["py_modules"] == ["s3://bucket/mod.zip", "https://[redacted]@example.com/m.whl"]
    assert cleaned["pip"] == {"packages": ["requests"]}
    assert "secret" not in json.dumps(cleaned)


def test_pending_job_has_not_started() -> None:
    record = to_record(payload("pending"), PROJECT)
    assert record["name"] == record["id"] == "pending-forever"  # no metadata.name
    assert record["started_at"] is None
    assert record["created_at"] == "2026-11-22T04:55:02.413Z"


def test_stopped_job_is_canceled_with_rays_message() -> None:
    record = to_record(payload("stopped"), PROJECT)
    assert record["status"] == JobStatus.CANCELED
    assert record["failed_reason"] == "Job was intentionally stopped."
    assert record["completed_at"] == record["updated_at"] == "2026-11-22T04:54:58.250Z"
    assert record["exit_code"] is None


def test_failed_job_keeps_exit_code_and_drops_the_logs() -> None:
    record = to_record(payload("failed"), PROJECT)
    assert record["exit_code"] == 3
    assert record["failed_reason"] == "Job entrypoint command failed with exit code 3"
    assert record["config"]["_provider"]["error_type"] == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert record["completed_at"] == "2026-11-22T04:54:44.139Z"


def test_succeeded_job() -> None:
    record = to_record(payload("succeeded"), PROJECT)
    assert (record["exit_code"], record["failed_reason"]) == (0, None)
    assert record["completed_at"] is not None


def test_driver_job_is_named_by_its_job_id() -> None:
    record = to_record(payload("driver"), PROJECT)
    assert record["id"] == record["name"] == "02000000"
    assert record["config"]["_provider"]["type"] == "DRIVER"


def test_resources_are_kept_in_config() -> None:
    raw = {**payload("pending"), "entrypoint_num_cpus": 0.5, "entrypoint_resources": {"gpu_a": 1}}
    config = to_record(raw, PROJECT)["config"]
    assert (config["entrypoint_num_cpus"], config["entrypoint_resources"]) == (0.5, {"gpu_a": 1})
    assert config["entrypoint"] == "sleep 1"


def test_unknown_status_counts_as_submitted() -> None:
    assert to_record({**payload("running"), "status": "QUEUED"}, PROJECT)["status"] == JobStatus.SUBMITTED


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {**payload("running"), "submission_id": None, "job_id": None},
        {**payload("running"), "status": None},
        {**payload("running"), "start_time": None},
        {**payload("running"), "start_time": "yesterday"},
    ],
)
def test_malformed_payloads_are_upstream_errors(bad: Any) -> None:
    with pytest.raises(ToolError) as caught:
        to_record(bad, PROJECT)
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR


# --- listing ---------------------------------------------------------------------------------------


def test_listing_pages_newest_first_without_gaps_or_repeats() -> None:
    listing = payload("list")
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = page_of(listing, PROJECT, None, 2, after)
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        if page["next_cursor"] is None:
            break
        start, _, last = page["next_cursor"].partition(":")
        after = (int(start), last)
    created = [to_record(item, PROJECT) for item in listing]
    expected = [r["id"] for r in sorted(created, key=lambda r: (r["created_at"], r["id"]), reverse=True)]
    assert seen == expected
    assert len(seen) == len(listing) == 5


def test_listing_filters_by_status() -> None:
    page = page_of(payload("list"), PROJECT, JobStatus.COMPLETED, 10, None)
    assert [job["id"] for job in page["jobs"]] == ["02000000", "echo-ok"]
    assert page["next_cursor"] is None
    assert page_of(payload("list"), PROJECT, JobStatus.WORKING, 10, None)["jobs"] == []


def test_listing_accepts_the_older_dict_form() -> None:
    jobs = {item["submission_id"]: {**item, "submission_id": None} for item in payload("list")[:3]}
    assert [job["submission_id"] for job in listed_jobs(jobs)] == list(jobs)
    assert listed_jobs({"jobs": payload("list")}) == payload("list")
    with pytest.raises(ToolError) as caught:
        listed_jobs("nope")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR


# --- settings --------------------------------------------------------------------------------------


def test_dashboard_address() -> None:
    assert ADDRESS.url(settings(), {}) == DEFAULT_DASHBOARD_URL
    assert ADDRESS.url(settings(), {"RAY_ADDRESS": "http://10.0.0.5:8265/"}) == "http://10.0.0.5:8265"
    assert (
        ADDRESS.url(settings("https://ray.example/"), {"RAY_ADDRESS": "http://x:1"}) == "https://ray.example"
    )
    for wrong in ("ray://10.0.0.5:10001", "10.0.0.5:6379", "auto"):
        with pytest.raises(BackendConfigError, match="dashboard"):
            ADDRESS.url(settings(), {"RAY_ADDRESS": wrong})


def test_a_port_out_of_range_is_named_through_the_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RAY_ADDRESS=http://host:99999 was internal_error on the first call; it is a misconfiguration
    named by the variable, with the port rule."""
    monkeypatch.setenv("RAY_ADDRESS", "http://ray-head:99999")
    router = Router(load_config(None, tmp_path, {"RAY_ADDRESS": "http://ray-head:99999"}).backends)
    with pytest.raises(ToolError) as raised:
        router.route("ray:cluster")
    assert raised.value.code == ErrorCode.BACKEND_MISCONFIGURED
    assert "RAY_ADDRESS='http://ray-head:99999' has a port that is not a number from 1 to 65535" in str(
        raised.value
    )


def test_a_configured_token_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_TEST_TOKEN", raising=False)
    with pytest.raises(BackendConfigError, match="RAY_TEST_TOKEN"):
        create(settings("http://127.0.0.1:1", token_env="RAY_TEST_TOKEN"))


# --- HTTP handling, against a small fake dashboard -------------------------------------------------


@dataclass
class FakeDashboard:
    """Serves canned answers by (method, path); records every request it gets."""

    routes: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.routes[(method, path)] = (status, "application/json", json.dumps(body))

    def text(self, method: str, path: str, body: str, status: int) -> None:
        self.routes[(method, path)] = (status, "text/plain; charset=utf-8", body)


@pytest.fixture
def fake() -> Iterator[FakeDashboard]:
    dashboard = FakeDashboard()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            dashboard.requests.append((self.command, self.path, dict(self.headers)))
            status, content_type, body = dashboard.routes.get(
                (self.command, self.path), (404, "text/plain", f"Job {self.path} does not exist")
            )
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    dashboard.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield dashboard
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_stop_answer_true_returns_the_record_read_right_after(fake: FakeDashboard) -> None:
    fake.json("POST", "/api/jobs/raysubmit_x1ffYScERG28v8Rp/stop", {"stopped": True})
    fake.json("GET", "/api/jobs/raysubmit_x1ffYScERG28v8Rp", payload("running"))
    backend = create(settings(fake.url))
    try:
        record = await backend.cancel_job(PROJECT, "raysubmit_x1ffYScERG28v8Rp")
    finally:
        await backend.aclose()
    # Ray has only been asked to stop it: the caller polls get_job until it is canceled.
    assert record["status"] == JobStatus.WORKING
    assert [(method, path) for method, path, _ in fake.requests] == [
        ("POST", "/api/jobs/raysubmit_x1ffYScERG28v8Rp/stop"),
        ("GET", "/api/jobs/raysubmit_x1ffYScERG28v8Rp"),
    ]
    headers = {key.lower(): value for key, value in fake.requests[0][2].items()}
    assert "authorization" not in headers
    assert headers["user-agent"].startswith("cancel-job-mcp/")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("failed", "already failed"),
        ("stopped", "already canceled"),
        # Ray stops nothing yet reports the job running: it has no supervisor for it (finishing now?).
        ("running", "Ray did not stop job 'raysubmit_x1ffYScERG28v8Rp': it reports the job working"),
    ],
)
async def test_stop_answer_false_is_not_cancellable(fake: FakeDashboard, name: str, said: str) -> None:
    job = payload(name)
    job_id = job["submission_id"]
    fake.json("POST", f"/api/jobs/{job_id}/stop", {"stopped": False})
    fake.json("GET", f"/api/jobs/{job_id}", job)
    backend = create(settings(fake.url))
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, job_id)
    await backend.aclose()
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert said in caught.value.message


@pytest.mark.anyio
async def test_plain_text_404_is_not_found(fake: FakeDashboard) -> None:
    backend = create(settings(fake.url))
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call(PROJECT, "raysubmit_unknown")
        assert caught.value.code == ErrorCode.NOT_FOUND
        assert "raysubmit_unknown" in caught.value.message
    await backend.aclose()


@pytest.mark.anyio
async def test_a_driver_job_cannot_be_stopped(fake: FakeDashboard) -> None:
    fake.text("POST", "/api/jobs/02000000/stop", "Can only stop submission type jobs", 400)
    fake.json("GET", "/api/jobs/02000000", payload("driver"))
    # Any other 400 (say, from a proxy in front of the dashboard) stays invalid_argument.
    fake.text("POST", "/api/jobs/echo-ok/stop", "Bad Request", 400)
    fake.json("GET", "/api/jobs/echo-ok", payload("succeeded"))
    backend = create(settings(fake.url))
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, "02000000")
    assert caught.value.code == ErrorCode.NOT_CANCELLABLE
    assert "ray.init" in caught.value.message
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, "echo-ok")
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    await backend.aclose()


@pytest.mark.anyio
async def test_server_errors_do_not_leak_tracebacks(fake: FakeDashboard) -> None:
    trace = 'Traceback (most recent call last):\n  File "/ray/job_head.py", line 1\nRuntimeError: boom'
    fake.text("POST", "/api/jobs/some-job/stop", trace, 500)
    fake.json("GET", "/api/jobs/weird", {"status": "RUNNING"})
    fake.json("POST", "/api/jobs/weird/stop", {"ok": 1})
    backend = create(settings(fake.url))
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, "some-job")
    assert caught.value.code == ErrorCode.UPSTREAM_UNAVAILABLE
    assert "Traceback" not in caught.value.message
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(PROJECT, "weird")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    await backend.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["../etc", "a/b", ".hidden", "x" * 129, "", "sp ace", "é"])
async def test_bad_job_ids_are_refused_before_any_request(fake: FakeDashboard, bad: str) -> None:
    backend = create(settings(fake.url))
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call(PROJECT, bad)
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    await backend.aclose()
    assert fake.requests == []


@pytest.mark.anyio
async def test_token_is_sent_only_when_configured(
    fake: FakeDashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_TEST_TOKEN", "tok-123")
    fake.json("GET", "/api/jobs/echo-ok", payload("succeeded"))
    bearer = create(settings(fake.url, token_env="RAY_TEST_TOKEN"))
    proxy = create(
        settings(
            fake.url, token_env="RAY_TEST_TOKEN", options={"auth_header": "X-Api-Key", "auth_scheme": ""}
        )
    )
    for backend in (bearer, proxy):
        await backend.get_job(PROJECT, "echo-ok")
        await backend.aclose()
    sent = [{key.lower(): value for key, value in headers.items()} for _, _, headers in fake.requests]
    assert sent[0]["authorization"] == "Bearer tok-123"
    assert sent[1]["x-api-key"] == "tok-123"
    assert "authorization" not in sent[1]


@pytest.mark.anyio
async def test_listing_over_http(fake: FakeDashboard) -> None:
    fake.json("GET", "/api/jobs/", payload("list"))
    backend = create(settings(fake.url))
    first = await backend.list_jobs(PROJECT, None, 3, None)
    rest = await backend.list_jobs(PROJECT, None, 3, first["next_cursor"])
    failed = await backend.list_jobs(PROJECT, "failed", 3, None)
    for bad in ({"cursor": "garbage"}, {"status": "done"}, {"limit": 0}):
        args: dict[str, Any] = {"status": None, "limit": 3, "cursor": None, **bad}
        with pytest.raises(ToolError) as caught:
            await backend.list_jobs(PROJECT, **args)
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    await backend.aclose()
    assert len(first["jobs"]) == 3
    assert first["next_cursor"] is not None
    assert len(rest["jobs"]) == 2
    assert rest["next_cursor"] is None
    assert {job["id"] for job in first["jobs"]}.isdisjoint(job["id"] for job in rest["jobs"])
    assert [job["id"] for job in failed["jobs"]] == ["exit-three"]


@pytest.mark.anyio
async def test_unreachable_dashboard_is_upstream_unavailable() -> None:
    from ..conftest import free_port

    backend = create(settings(f"http://127.0.0.1:{free_port()}", connect_timeout=2.0))
    with pytest.raises(ToolError) as caught:
        await backend.get_job(PROJECT, "echo-ok")
    await backend.aclose()
    assert caught.value.code == ErrorCode.UPSTREAM_UNAVAILABLE


# --- a real Ray head node --------------------------------------------------------------------------


@pytest.fixture
async def backend(ray_head: RayHead) -> Any:
    ray = RayBackend(settings(ray_head.url))
    yield ray
    await ray.aclose()


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_finished_ray_job_is_not_cancellable(
    ray_head: RayHead, ray_jobs: SharedJobs, backend: RayBackend
) -> None:
    for job_id, status in ((ray_jobs.failed, "failed"), (ray_jobs.succeeded[0], "completed")):
        with pytest.raises(ToolError) as caught:
            await backend.cancel_job(PROJECT, job_id)
        assert caught.value.code == ErrorCode.NOT_CANCELLABLE
        assert f"already {status}" in caught.value.message
    record = await backend.get_job(PROJECT, ray_jobs.failed)
    assert (record["status"], record["exit_code"]) == (JobStatus.FAILED, 3)
    assert ray_head.info(ray_jobs.failed)["status"] == "FAILED"  # unchanged
    assert ray_head.info(ray_jobs.succeeded[0])["status"] == "SUCCEEDED"


@pytest.mark.anyio
@pytest.mark.slow
async def test_an_unknown_ray_job_is_not_found(backend: RayBackend) -> None:
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as caught:
            await call(PROJECT, "raysubmit_doesnotexist01")
        assert caught.value.code == ErrorCode.NOT_FOUND


@pytest.mark.anyio
@pytest.mark.slow
async def test_list_ray_jobs(ray_head: RayHead, ray_jobs: SharedJobs, backend: RayBackend) -> None:
    """Newest first as Ray orders them (other tests' jobs among them), one page after another."""
    page = await backend.list_jobs(PROJECT, None, 1000, None)
    ids = [job["id"] for job in page["jobs"]]
    everything = ray_head.order()
    assert ids == everything
    first, second = ray_jobs.succeeded
    assert ids.index(second) < ids.index(first)  # newest first
    created = [job["created_at"] for job in page["jobs"]]
    assert created == sorted(created, reverse=True)
    one = await backend.list_jobs(PROJECT, None, 1, None)
    assert [job["id"] for job in one["jobs"]] == everything[:1]
    assert one["next_cursor"] is not None
    after = await backend.list_jobs(PROJECT, None, 1, one["next_cursor"])
    assert [job["id"] for job in after["jobs"]] == everything[1:2]


@pytest.mark.anyio
@pytest.mark.slow
async def test_cancel_over_stdio_with_ray_routing(
    ray_head: RayHead, ray_jobs: SharedJobs, tmp_path: Path, record_validator: Draft7Validator
) -> None:
    """The server, told RAY_ADDRESS, routes `ray:cluster1` to the Ray backend."""
    job_id, _ = ray_jobs.take_victim(ray_head)
    target = stdio_server(tmp_path, RAY_ADDRESS=ray_head.url)
    try:
        async with client(target) as session:
            result = await session.call_tool(
                "cancel_job", {"project_reference": "ray:cluster1", "job_id": job_id}
            )
        assert not result.is_error, result.content[0].text
        record = result.structured_content
        record_validator.validate(record)
        assert (record["id"], record["project_id"]) == (job_id, "cluster1")
        assert record["status"] in (JobStatus.WORKING, JobStatus.CANCELED)
        poll(lambda: ray_head.info(job_id)["status"] == "STOPPED", timeout=30, what=f"{job_id} to stop")
        backend = RayBackend(settings(ray_head.url))
        try:
            assert (await backend.get_job(PROJECT, job_id))["status"] == JobStatus.CANCELED
        finally:
            await backend.aclose()
    finally:
        ray_head.stop_if_active(job_id)
