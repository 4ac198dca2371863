"""The Temporal backend's settings and its cancel flow, against the fake Temporal HTTP API on 127.0.0.1
(tests/fakes/temporal.py): what is sent, in which order, and what is never sent. The real server's
behaviour is tests/backends/test_temporal_e2e.py's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cancel_job_mcp.backends.base import BackendSettings
from cancel_job_mcp.backends.logs import LogQuery
from cancel_job_mcp.backends.temporal import ADDRESS, DEFAULT_HTTP_URL, TemporalBackend, create
from cancel_job_mcp.config import ConfigError, env_only_config, parse_config
from cancel_job_mcp.errors import BackendConfigError, ErrorCode, ToolError
from cancel_job_mcp.routing import Router

from ..fakes import FakeTemporal, Fault, backend_settings

TOKEN = "cjm-temporal-key-3b1f0c9d"
SOURCE = Path("/etc/cjm.toml")


# --- settings --------------------------------------------------------------------------------------


def test_a_temporal_table_with_its_grace_period() -> None:
    config = parse_config(
        '[backends.tmp]\nkind = "temporal"\nbase_url = "https://tmp.example:7243/"\nprojects = ["payments"]\n'
        "grace_period = 45\n",
        SOURCE,
        Path("/tmp/home"),
        {},
    )
    [settings] = [backend for backend in config.backends if backend.name == "tmp"]
    assert (settings.kind, settings.base_url, settings.projects) == (
        "temporal",
        "https://tmp.example:7243",
        ("payments",),
    )
    assert settings.options == {"grace_period": 45.0}
    assert settings.token_env is None, "TEMPORAL_API_KEY is optional"


@pytest.mark.parametrize("value", ["-1", "3601", '"10"', "nan"])
def test_a_bad_grace_period_is_refused_at_start(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(
            f'[backends.tmp]\nkind = "temporal"\ngrace_period = {value}\n', SOURCE, Path("/tmp/h"), {}
        )
    assert "grace_period must be a number of seconds from 0 to 3600" in str(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("key", [None, TOKEN])
async def test_temporal_address_alone_enables_the_temporal_backend_for_every_namespace(
    fake: FakeTemporal, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """With or without TEMPORAL_API_KEY (the key is optional: it is sent only when set)."""
    environ = {"TEMPORAL_ADDRESS": fake.url, **({"TEMPORAL_API_KEY": key} if key else {})}
    monkeypatch.delenv("TEMPORAL_API_KEY", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if key is None:  # a dev server: no auth at all
        monkeypatch.setattr(fake, "authorized", lambda headers: "authorization" not in headers)
    config = env_only_config(Path("/tmp/home"), environ)
    [temporal] = [backend for backend in config.backends if backend.kind == "temporal"]
    assert temporal.name == "temporal"
    router = Router(config.backends)
    try:
        for namespace in ("default", "other"):
            route = router.route(f"temporal:{namespace}")
            workflow_id = fake.add_workflow(namespace=namespace)
            assert (await route.backend.get_job(route.project, workflow_id))["project_id"] == namespace
    finally:
        await router.aclose()
    assert {request.headers.get("authorization") for request in fake.requests} == {
        f"Bearer {key}" if key else None
    }
    assert not [b for b in env_only_config(Path("/tmp/home"), {}).backends if b.kind == "temporal"]


def settings(base_url: str | None = None, **overrides: Any) -> BackendSettings:
    return BackendSettings(name="temporal", kind="temporal", base_url=base_url, **overrides)


def test_the_http_api_address() -> None:
    assert ADDRESS.url(settings(), {}) == DEFAULT_HTTP_URL
    assert ADDRESS.url(settings(), {"TEMPORAL_ADDRESS": "http://10.0.0.5:7243/"}) == "http://10.0.0.5:7243"
    assert (
        ADDRESS.url(settings("https://t.example"), {"TEMPORAL_ADDRESS": "http://x:1"}) == "https://t.example"
    )
    for wrong in ("127.0.0.1:7233", "localhost:7233", "dns:///t.example:7233"):
        with pytest.raises(BackendConfigError, match="not the gRPC host:port"):
            ADDRESS.url(settings(), {"TEMPORAL_ADDRESS": wrong})
    with pytest.raises(BackendConfigError, match="user:password@") as raised:
        ADDRESS.url(settings(), {"TEMPORAL_ADDRESS": "http://ada:s3cr3t-Pa55@t.example:7243"})
    assert "s3cr3t" not in str(raised.value)
    with pytest.raises(BackendConfigError, match="port that is not a number from 1 to 65535"):
        ADDRESS.url(settings(), {"TEMPORAL_ADDRESS": "http://t.example:99999"})


def test_an_api_key_never_goes_over_plain_http_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", TOKEN)
    with pytest.raises(BackendConfigError, match=r"would go unencrypted to tmp\.example") as raised:
        create(settings("http://tmp.example:7243"))
    assert TOKEN not in str(raised.value)
    for allowed in (
        "https://tmp.example:7243",
        "http://127.0.0.1:7243",
        "http://localhost:7243",
        "http://[::1]:7243",
    ):
        assert isinstance(create(settings(allowed)), TemporalBackend)


# --- the flows, against the fake ------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTemporal]:
    server = FakeTemporal(TOKEN)
    yield server
    server.close()


@pytest.fixture
async def backend(fake: FakeTemporal, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TemporalBackend]:
    monkeypatch.setenv("TEMPORAL_API_KEY", TOKEN)
    made = create(backend_settings("temporal", fake.url, options={"grace_period": 0.5}))
    assert isinstance(made, TemporalBackend)
    yield made
    await made.aclose()


def posts(fake: FakeTemporal) -> list[str]:
    return [request.path.rsplit("/", 1)[1] for request in fake.requests if request.method == "POST"]


@pytest.mark.anyio
async def test_the_api_key_is_sent_as_temporal_clouds_bearer_header(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    await backend.get_job("default", fake.add_workflow())
    assert fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_a_workflow_that_ignores_the_cancel_is_terminated_after_the_grace(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    workflow_id = fake.add_workflow()
    fake.on_cancel = "ignore"
    updates: list[tuple[float, float, str]] = []

    async def progress(done: float, total: float, message: str) -> None:
        updates.append((done, total, message))

    record = await backend.cancel_job_with_progress("default", workflow_id, progress)
    assert record["status"] == "canceled"
    assert record["config"]["_provider"]["status"] == "TERMINATED"
    assert record["config"]["_provider"]["stop"]["terminated"] is True
    assert posts(fake) == ["cancel", "terminate"]
    cancel, terminate = (request for request in fake.requests if request.method == "POST")
    first_run = fake.workflows[("default", workflow_id)]["firstRunId"]
    assert json.loads(cancel.body)["firstExecutionRunId"] == first_run
    assert json.loads(terminate.body)["firstExecutionRunId"] == first_run
    assert "grace period of 0.5 s" in json.loads(terminate.body)["reason"]
    assert updates
    assert updates[0][1] == 0.5
    assert [done for done, _, _ in updates] == sorted(done for done, _, _ in updates), "progress only grows"
    assert all(done <= total for done, total, _ in updates)


@pytest.mark.anyio
async def test_a_run_that_continues_as_new_during_the_grace_is_asked_to_cancel_too(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    workflow_id = fake.add_workflow()
    fake.on_cancel = "continue"
    record = await backend.cancel_job("default", workflow_id)
    assert record["status"] == "canceled"
    assert record["config"]["_provider"]["stop"]["terminated"] is False
    assert posts(fake) == ["cancel", "cancel"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code"), [("COMPLETED", "not_cancellable"), ("FAILED", "not_cancellable")]
)
async def test_a_closed_workflow_is_sent_nothing(
    fake: FakeTemporal, backend: TemporalBackend, status: str, code: str
) -> None:
    workflow_id = fake.add_workflow(status=status)
    with pytest.raises(ToolError) as raised:
        await backend.cancel_job("default", workflow_id)
    assert raised.value.code == code
    assert posts(fake) == []


@pytest.mark.anyio
async def test_a_canceled_or_terminated_workflow_returns_its_record(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    for status in ("CANCELED", "TERMINATED"):
        record = await backend.cancel_job("default", fake.add_workflow(status=status))
        assert record["status"] == "canceled"
    assert posts(fake) == []


@pytest.mark.anyio
async def test_another_namespaces_workflow_is_not_found_and_sent_nothing(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    elsewhere = fake.add_workflow(namespace="other")
    with pytest.raises(ToolError) as raised:
        await backend.cancel_job("default", elsewhere)
    assert raised.value.code == ErrorCode.NOT_FOUND
    assert "Nothing was canceled" in raised.value.message
    assert posts(fake) == []
    assert fake.workflows[("other", elsewhere)]["status"].endswith("RUNNING")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("project", "job_id"),
    [("default", "a/b"), ("default", ".hidden"), ("../x", "wf"), ("default", "x" * 129)],
)
async def test_bad_ids_are_refused_before_any_request(
    fake: FakeTemporal, backend: TemporalBackend, project: str, job_id: str
) -> None:
    for call in (backend.cancel_job, backend.get_job):
        with pytest.raises(ToolError) as raised:
            await call(project, job_id)
        assert raised.value.code == ErrorCode.INVALID_ARGUMENT
    assert fake.requests == []


@pytest.mark.anyio
async def test_list_sends_temporals_status_query_and_pages_with_its_token(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    fake.add_workflow()
    page = await backend.list_jobs("default", "canceled", 5, None)
    assert page["next_cursor"] is None
    [request] = fake.requests
    assert request.query["query"] == ["(ExecutionStatus = 'Canceled' OR ExecutionStatus = 'Terminated')"]
    assert request.query["pageSize"] == ["5"]
    await backend.list_jobs("default", None, 100, "tok3n==")
    assert fake.requests[1].query["query"] == ["ExecutionStatus != 'ContinuedAsNew'"]
    assert fake.requests[1].query["nextPageToken"] == ["tok3n=="]
    assert (await backend.list_jobs("default", "submitted", 5, None))["jobs"] == []
    assert len(fake.requests) == 2, "Temporal has no submitted workflows to ask for"


@pytest.mark.anyio
async def test_logs_are_not_supported_and_name_the_event_history(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    with pytest.raises(ToolError) as raised:
        await backend.get_job_logs("default", fake.add_workflow(), LogQuery())
    assert raised.value.code == ErrorCode.NOT_SUPPORTED
    assert "event history" in raised.value.message
    assert "/api/v1/namespaces/{namespace}/workflows/{workflow id}/history" in raised.value.message
    assert fake.requests == []


@pytest.mark.anyio
async def test_wait_for_stop_long_polls_the_close_event_once_per_pause(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    """A server that answers the long poll at once (with no close event, or with an error) is asked
    once per pause, not in a loop."""
    workflow_id = fake.add_workflow()
    await backend.wait_for_stop("default", workflow_id, 0.3)
    [poll] = fake.requests
    assert poll.path.endswith(f"/workflows/{workflow_id}/history")
    assert poll.query["waitNewEvent"] == ["true"]
    assert poll.query["historyEventFilterType"] == ["HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT"]
    fake.fail_always(Fault.SERVER_ERROR)
    await backend.wait_for_stop("default", workflow_id, 0.3)
    assert len(fake.requests) == 2


@pytest.mark.anyio
async def test_the_evidence_of_a_terminate_names_the_activities_still_pending(
    fake: FakeTemporal, backend: TemporalBackend
) -> None:
    fake.on_cancel = "ignore"
    record = await backend.cancel_job("default", fake.add_workflow())
    stop = record["config"]["_provider"]["stop"]
    record["config"]["_provider"]["stop"] = {**stop, "pending_activities_when_terminated": 2}
    escalation = backend.stop_escalation(record)
    assert escalation is not None
    assert escalation.facts["terminated"] is True
    assert escalation.words.endswith(
        "2 of its activities were still pending then: activity code in a worker that does not heartbeat may"
        " still be running."
    )
    assert backend.stop_escalation(await backend.get_job("default", record["id"])) is None, (
        "no cancel of ours"
    )
