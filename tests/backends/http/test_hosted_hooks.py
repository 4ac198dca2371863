"""HostedBackend's and HttpClient's hooks, on a provider that does not use them itself (Veryfront's fake, a
real HTTP server on 127.0.0.1): a provider's own reading of an error answer, and the cancel that reads
the job first. Ionworks and Slurm use them in earnest (tests/backends/test_ionworks.py and
tests/backends/slurm/test_backend.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cancel_job_mcp.backends.http.client import Answer, HttpClient
from cancel_job_mcp.backends.veryfront import SPEC, VeryfrontBackend
from cancel_job_mcp.errors import ErrorCode, ProviderError, ToolError
from cancel_job_mcp.record import JobRecord, JobStatus

from ...fakes import CANARY_TOKEN, CASES, FakeVeryfront, Fault, backend_settings

pytestmark = pytest.mark.anyio
CASE = CASES["veryfront"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVeryfront]:
    monkeypatch.setenv(CASE.token_env, CANARY_TOKEN)
    server = FakeVeryfront(CANARY_TOKEN)
    yield server
    server.close()


class ReadFirst(VeryfrontBackend):
    """Veryfront, as if it canceled by id alone: the job is read before any cancel is sent."""

    read_before_cancel = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent_for: list[JobRecord | None] = []

    async def send_cancel(self, project: str, job_id: str, current: JobRecord | None) -> JobRecord:
        self.sent_for.append(current)
        return await super().send_cancel(project, job_id, current)


@pytest.fixture
async def backend(fake: FakeVeryfront) -> AsyncIterator[ReadFirst]:
    made = ReadFirst(backend_settings("veryfront", fake.url))
    yield made
    await made.aclose()


async def test_a_providers_own_reading_of_an_error_answer_comes_before_the_common_table(
    fake: FakeVeryfront,
) -> None:
    own = ProviderError(ErrorCode.UPSTREAM_UNAVAILABLE, "the provider's own words", status=409)
    seen: list[int] = []

    def read_error(answer: Answer) -> ProviderError | None:
        seen.append(answer.status)
        return own if answer.status == 409 else None

    client = HttpClient(backend_settings("veryfront", fake.url), SPEC, read_error=read_error)
    path = f"/projects/{CASE.project}/jobs/{CASE.add_active(fake)}"
    try:
        fake.fail_always(Fault.CONFLICT, method="GET")
        with pytest.raises(ProviderError) as raised:
            await client.request_json("GET", path)
        assert raised.value is own
        fake.clear_faults()
        fake.fail_always(Fault.NOT_FOUND, method="GET")
        with pytest.raises(ToolError) as fallen:
            await client.request_json("GET", path, what="job 'x'")
        assert fallen.value.code == ErrorCode.NOT_FOUND  # None: the common table decides
        assert "Veryfront found no job 'x' (HTTP 404)" in fallen.value.message
        fake.clear_faults()
        assert (await client.request_json("GET", path))["status"] == "working"
        assert seen == [409, 404], "a 2xx never reaches the hook"
    finally:
        await client.aclose()


async def test_a_finished_job_read_first_is_refused_and_nothing_is_sent(
    fake: FakeVeryfront, backend: ReadFirst
) -> None:
    job_id = CASE.add_finished(fake)
    with pytest.raises(ToolError) as raised:
        await backend.cancel_job(CASE.project, job_id)
    assert raised.value.code == ErrorCode.NOT_CANCELLABLE
    assert f"Job {job_id!r} on Veryfront is already completed" in raised.value.message
    assert not fake.requests_to("POST")
    assert backend.sent_for == []


async def test_a_job_of_another_project_read_first_is_not_found_and_nothing_is_sent(
    fake: FakeVeryfront, backend: ReadFirst
) -> None:
    assert CASE.other_project is not None
    job_id = fake.add_job(CASE.other_project, "working")
    with pytest.raises(ToolError) as raised:
        await backend.cancel_job(CASE.project, job_id)
    assert raised.value.code == ErrorCode.NOT_FOUND
    assert "Nothing was canceled." in raised.value.message
    assert not fake.requests_to("POST")


async def test_an_active_job_read_first_is_canceled_with_the_record_read(
    fake: FakeVeryfront, backend: ReadFirst
) -> None:
    job_id = CASE.add_active(fake)
    record = await backend.cancel_job(CASE.project, job_id)
    assert record["status"] == JobStatus.CANCELED
    [current] = backend.sent_for
    assert current is not None
    assert (current["id"], current["status"]) == (job_id, JobStatus.WORKING)
    assert [request.method for request in fake.requests] == ["GET", "POST"]
    # Canceling it again answers its record, and sends nothing more.
    assert (await backend.cancel_job(CASE.project, job_id))["status"] == JobStatus.CANCELED
    assert len(fake.requests_to("POST")) == 1
