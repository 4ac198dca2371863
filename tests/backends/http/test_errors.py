"""The shared HTTP machinery against every fake provider: error codes, retries, timeouts, secrets."""

from __future__ import annotations

import base64
import json
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from cancel_job_mcp import __version__
from cancel_job_mcp.backends import registry
from cancel_job_mcp.backends.base import Backend, BackendSettings
from cancel_job_mcp.backends.http.answer import TooLarge, decode_json, read_body
from cancel_job_mcp.backends.http.checks import encode_segment
from cancel_job_mcp.backends.http.client import HttpClient
from cancel_job_mcp.backends.http.credentials import Redactor, protected
from cancel_job_mcp.backends.http.payload import normalize_timestamp
from cancel_job_mcp.backends.http.retry import MAX_REPORTED_WAIT, parse_retry_after
from cancel_job_mcp.backends.registry import ProviderSpec
from cancel_job_mcp.errors import BackendConfigError, ErrorCode, ToolError

from ...conftest import free_port
from ...fakes import (
    CANARY_TOKEN,
    PROVIDERS,
    FakeProvider,
    FakeTalonic,
    Fault,
    ProviderCase,
    backend_settings,
    leaked_forms,
    leaks,
)
from ...fakes.server import gzip_bomb

pytestmark = pytest.mark.anyio


@pytest.fixture(params=PROVIDERS, ids=str)
def case(request: pytest.FixtureRequest) -> ProviderCase:
    param: ProviderCase = request.param
    return param


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert CANARY_TOKEN not in caplog.text


async def expect_error(awaitable: Any, code: ErrorCode) -> ToolError:
    with pytest.raises(ToolError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value.message
    assert CANARY_TOKEN not in str(caught.value)
    return caught.value


def set_wait(case: ProviderCase, fake: FakeProvider, seconds: float) -> None:
    if isinstance(fake, FakeTalonic):
        fake.reset_in = seconds
    else:
        fake.retry_after = str(seconds)


# --- the happy path: headers -------------------------------------------------------------------------


async def test_requests_carry_auth_and_user_agent(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    job_id = case.add_active(fake)
    record = await backend.cancel_job(case.project, job_id)
    assert record["status"] == "canceled"
    assert CANARY_TOKEN not in json.dumps(record)
    assert len(fake.requests) == case.cancel_requests
    for request in fake.requests:
        assert request.headers["user-agent"] == f"cancel-job-mcp/{__version__}"
        assert CANARY_TOKEN in (
            request.headers.get("authorization", "") + request.headers.get("x-api-key", "")
        )
    assert fake.requests_to("POST", "/cancel")[0].path.endswith(f"/{job_id}/cancel")


async def test_one_client_reused_and_closed(case: ProviderCase, fake: FakeProvider, token_env: str) -> None:
    made = registry.create(backend_settings(case.kind, fake.url))
    http: HttpClient = made.http  # type: ignore[attr-defined]
    assert http._client is None, "the client is created on first use"
    job_id = case.add_active(fake)
    await made.get_job(case.project, job_id)
    first = http._client
    await made.get_job(case.project, job_id)
    assert http._client is first is not None
    await made.aclose()
    assert first.is_closed
    assert http._client is None


# --- error mapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.BAD_REQUEST, ErrorCode.INVALID_ARGUMENT),
        (Fault.UNAUTHORIZED, ErrorCode.UNAUTHORIZED),
        (Fault.FORBIDDEN, ErrorCode.UNAUTHORIZED),
        (Fault.NOT_FOUND, ErrorCode.NOT_FOUND),
        (Fault.SERVER_ERROR, ErrorCode.UPSTREAM_UNAVAILABLE),
        (Fault.MALFORMED_JSON, ErrorCode.UPSTREAM_ERROR),
        (Fault.MISSING_FIELDS, ErrorCode.UPSTREAM_ERROR),
    ],
)
async def test_fault_maps_to_code_without_retry(
    case: ProviderCase, fake: FakeProvider, backend: Backend, fault: Fault, code: ErrorCode
) -> None:
    job_id = case.add_active(fake)
    fake.fail_always(fault, method="POST")
    await expect_error(backend.cancel_job(case.project, job_id), code)
    assert len(fake.requests_to("POST")) == 1, "only 429 and 503 are retried"
    fake.clear_faults()
    fake.fail_always(fault, method="GET")
    await expect_error(backend.get_job(case.project, job_id), code)
    assert len(fake.requests_to("GET")) == len(fake.requests) - 1


async def test_wrong_token_is_unauthorized_and_names_the_variable(
    case: ProviderCase, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(case.token_env, "wrong-token")
    made = registry.create(backend_settings(case.kind, fake.url))
    try:
        error = await expect_error(made.get_job(case.project, case.add_active(fake)), ErrorCode.UNAUTHORIZED)
    finally:
        await made.aclose()
    assert case.token_env in error.message
    assert "wrong-token" not in error.message


async def test_conflict_names_the_current_status(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    job_id = case.add_finished(fake)
    error = await expect_error(backend.cancel_job(case.project, job_id), ErrorCode.NOT_CANCELLABLE)
    assert "completed" in error.message
    assert job_id in error.message


async def test_injected_conflict_on_an_active_job(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    job_id = case.add_active(fake)
    fake.fail(Fault.CONFLICT, method="POST")
    error = await expect_error(backend.cancel_job(case.project, job_id), ErrorCode.NOT_CANCELLABLE)
    assert "working" in error.message


@pytest.mark.parametrize("fault", [Fault.RATE_LIMITED, Fault.UNAVAILABLE])
async def test_rate_limit_and_unavailable_are_retried(
    case: ProviderCase, fake: FakeProvider, backend: Backend, fault: Fault
) -> None:
    job_id = case.add_active(fake)
    fake.fail(fault, times=2)
    record = await backend.cancel_job(case.project, job_id)
    assert record["status"] == "canceled"
    assert len(fake.requests) == case.cancel_requests + 2


async def test_rate_limited_forever_gives_up(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    job_id = case.add_active(fake)
    fake.fail_always(Fault.RATE_LIMITED)
    await expect_error(backend.cancel_job(case.project, job_id), ErrorCode.RATE_LIMITED)
    assert len(fake.requests) == 3  # max_retries=2
    assert not fake.requests_to("POST") or case.cancel_requests == 1


async def test_wait_is_honoured(case: ProviderCase, fake: FakeProvider, backend: Backend) -> None:
    job_id = case.add_active(fake)
    set_wait(case, fake, 0.25)
    fake.fail(Fault.RATE_LIMITED)
    started = time.monotonic()
    await backend.get_job(case.project, job_id)
    # Talonic's ISO reset has one-second resolution at best; the others say 0.25 s.
    assert time.monotonic() - started >= 0.15
    assert len(fake.requests) == 2


async def test_wait_above_the_cap_is_not_slept(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    job_id = case.add_active(fake)
    set_wait(case, fake, 30)
    fake.fail_always(Fault.RATE_LIMITED)
    started = time.monotonic()
    error = await expect_error(backend.get_job(case.project, job_id), ErrorCode.RATE_LIMITED)
    # One request's time, however loaded the machine, and far from the 30 s a sleep would take.
    assert time.monotonic() - started < 10
    assert len(fake.requests) == 1
    assert "retry after 30 s" in error.message or "retry after 29 s" in error.message
    assert 28 <= error.retry_after <= 30  # type: ignore[attr-defined]


async def test_hang_past_read_timeout(case: ProviderCase, fake: FakeProvider, backend: Backend) -> None:
    job_id = case.add_active(fake)
    fake.fail(Fault.HANG)
    started = time.monotonic()
    error = await expect_error(backend.cancel_job(case.project, job_id), ErrorCode.UPSTREAM_UNAVAILABLE)
    assert time.monotonic() - started < 2
    assert "did not answer in time" in error.message
    assert len(fake.requests) == 1, "a timeout is not retried"


async def test_connection_refused(case: ProviderCase, token_env: str) -> None:
    # A refused connect answers at once; the generous connect timeout only keeps a loaded machine from
    # turning it into a timeout.
    settings = backend_settings(case.kind, f"http://127.0.0.1:{free_port()}", connect_timeout=10.0)
    made = registry.create(settings)
    try:
        job_id = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
        error = await expect_error(made.cancel_job(case.project, job_id), ErrorCode.UPSTREAM_UNAVAILABLE)
    finally:
        await made.aclose()
    assert "could not be reached" in error.message


async def test_bad_path_segment_sends_nothing(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    for call in (backend.cancel_job, backend.get_job):
        error = await expect_error(call(case.project, case.bad_job_id), ErrorCode.INVALID_ARGUMENT)
        assert error.message.startswith("job_id:")
    if case.other_project is not None:  # Talonic has no projects: none goes into its paths
        error = await expect_error(
            backend.cancel_job("proj/../x", case.add_active(fake)), ErrorCode.INVALID_ARGUMENT
        )
        assert error.message.startswith("project_reference:")
    assert fake.requests == []


async def test_missing_token_is_a_config_error(case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(case.token_env, raising=False)
    with pytest.raises(BackendConfigError, match=case.token_env):
        registry.create(backend_settings(case.kind, "http://127.0.0.1:9"))
    monkeypatch.setenv("MY_OTHER_VAR", CANARY_TOKEN)
    made = registry.create(backend_settings(case.kind, "http://127.0.0.1:9", token_env="MY_OTHER_VAR"))
    await made.aclose()


# --- secrets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.UNAUTHORIZED, Fault.BAD_REQUEST, Fault.SERVER_ERROR, Fault.CONFLICT])
async def test_echoed_secrets_are_not_repeated(
    case: ProviderCase, fake: FakeProvider, backend: Backend, fault: Fault
) -> None:
    def echoing(status: int, code: str, message: str, path: str) -> Any:
        return {
            "message": f"token {CANARY_TOKEN} rejected",
            "detail": f"Authorization: Bearer {CANARY_TOKEN}",
        }

    fake.error_body = echoing  # type: ignore[method-assign]
    job_id = case.add_active(fake)
    fake.fail_always(fault, method="POST")
    with pytest.raises(ToolError) as caught:
        await backend.cancel_job(case.project, job_id)
    assert CANARY_TOKEN not in str(caught.value)
    assert "Authorization" not in caught.value.message


async def test_provider_message_is_short_and_kept(
    case: ProviderCase, fake: FakeProvider, backend: Backend
) -> None:
    fake.error_body = lambda status, code, message, path: {"message": "limit\nmust be 1-100 " + "x" * 500}  # type: ignore[method-assign]
    fake.fail(Fault.BAD_REQUEST)
    error = await expect_error(
        backend.get_job(case.project, case.add_active(fake)), ErrorCode.INVALID_ARGUMENT
    )
    assert "limit must be 1-100" in error.message
    quoted = error.message.split(" said: ", 1)[1]
    assert len(quoted) == 300
    assert quoted.endswith("...")


# --- pure helpers --------------------------------------------------------------------------------------


def test_parse_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": "7"}, now) == 7
    http_date = format_datetime(datetime.fromtimestamp(now + 12, UTC), usegmt=True)
    assert parse_retry_after({"retry-after": http_date}, now) == pytest.approx(12, abs=1)
    assert parse_retry_after({"ratelimit-reset": str(int(now + 40))}, now) == 40
    assert parse_retry_after({"X-RateLimit-Reset": str(int((now + 5) * 1000))}, now) == pytest.approx(5)
    iso = (datetime.fromtimestamp(now, UTC) + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert parse_retry_after({"X-RateLimit-Reset": iso}, now) == pytest.approx(90)
    assert parse_retry_after({"X-RateLimit-Reset": "15"}, now) == 15  # a small number is a delta
    assert parse_retry_after({"Retry-After": "-3"}, now) == 0
    assert parse_retry_after({"ratelimit-reset": str(int(now - 100))}, now) == 0
    assert parse_retry_after({"Retry-After": "soon"}, now) is None
    assert parse_retry_after({}, now) is None


def test_segments_are_percent_encoded() -> None:
    assert encode_segment("a/b c%") == "a%2Fb%20c%25"
    assert encode_segment("abc-_.~") == "abc-_.~"


def test_timestamps_are_normalized_to_utc() -> None:
    assert normalize_timestamp("2025-09-11T11:04:05Z", "t", "P") == "2025-09-11T11:04:05.000Z"
    assert normalize_timestamp("2025-09-11T13:04:05+02:00", "t", "P") == "2025-09-11T11:04:05.000Z"
    assert normalize_timestamp("2025-09-11T11:04:05", "t", "P") == "2025-09-11T11:04:05.000Z"
    assert normalize_timestamp(1_757_588_645, "t", "P") == "2025-09-11T11:04:05.000Z"
    assert normalize_timestamp(1_757_588_645_123, "t", "P") == "2025-09-11T11:04:05.123Z"
    assert normalize_timestamp(None, "t", "P") is None
    with pytest.raises(ToolError) as caught:
        normalize_timestamp("<string>", "started_at", "P")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    assert "started_at" in caught.value.message


@pytest.mark.parametrize(
    "value",
    ["inf", "-inf", "1e400", "NaN", "garbage", "Mon, 99 Foo 2020 99:99:99 GMT", "9" * 400, "", "-1e400"],
)
def test_any_wait_header_value_is_clamped_or_ignored(value: str) -> None:
    now = 1_800_000_000.0
    for name in ("Retry-After", "ratelimit-reset", "X-RateLimit-Reset"):
        wait = parse_retry_after({name: value}, now)
        assert wait is None or 0 <= wait <= MAX_REPORTED_WAIT, (name, value, wait)


def test_far_and_past_waits_are_clamped() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, now) == MAX_REPORTED_WAIT
    assert parse_retry_after({"X-RateLimit-Reset": "9999-12-31T23:59:59-05:00"}, now) == MAX_REPORTED_WAIT
    assert parse_retry_after({"Retry-After": "1e30"}, now) == MAX_REPORTED_WAIT
    assert parse_retry_after({"Retry-After": "-5"}, now) == 0
    assert parse_retry_after({"Retry-After": "inf", "X-RateLimit-Reset": "3"}, now) == 3


@pytest.mark.parametrize(
    "value",
    [1e20, -1e15, -1, "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z"],
)
def test_absurd_timestamps_are_upstream_errors(value: Any) -> None:
    with pytest.raises(ToolError) as caught:
        normalize_timestamp(value, "created_at", "P")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    assert "'created_at' is not" in caught.value.message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "NaN"),
        (b'{"a": 1e400}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b"[" * 65 + b"]" * 65, "nested"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (("[" * 65 + "]" * 65).encode("utf-16"), "nested"),
        (b'[{"a": "]]]", "b": "\\\\", "c": "\\"}}"},' + b"[" * 64 + b"]" * 64 + b"]", "nested"),
    ],
)
def test_json_that_is_refused(body: bytes, said: str) -> None:
    with pytest.raises(ToolError) as caught:
        decode_json(body, "P")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    assert said in caught.value.message
    assert decode_json(b"[" * 64 + b"]" * 64, "P") is not None  # 64 levels are fine


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "' + b"[" * 100 + b'"}',  # brackets inside strings are not nesting
        b'["\\"[[[[", "\\\\", {"b": ["\\"}}}}"]}]',
        b"[" + b"[[]]," * 1000 + b"[]]",  # many brackets, three levels
        b'[""' + b',"",[""]' * 100 + b"]",
    ],
)
def test_json_with_many_brackets_but_shallow_is_read(body: bytes) -> None:
    assert decode_json(body, "P") == json.loads(body)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_token_behind_json_escapes_is_redacted(encoding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCAPED_TOKEN", CANARY_TOKEN)
    settings = BackendSettings(name="p", kind="slurm", token_env="ESCAPED_TOKEN")
    client = HttpClient(settings, ProviderSpec(kind="slurm", display_name="P", default_base_url="http://x"))
    bearer = base64.b64encode(f"Bearer {CANARY_TOKEN}".encode()).decode()
    unicode_escaped = "".join(f"\\u{ord(char):04x}" for char in CANARY_TOKEN[3:15])
    jobs = [{"name": f"job-{i}", "comment": "nightly report"} for i in range(50)]
    text = json.dumps({"jobs": jobs})[:-2]
    # No run of 8 characters of either form is left as it is in the body.
    escaped_bearer = "".join(
        f"\\u{ord(char):04x}" if i % 4 == 0 else char.replace("/", "\\/") for i, char in enumerate(bearer)
    )
    text += f', {{"name": "{unicode_escaped}", "{escaped_bearer}": 1}}]}}'
    assert leaks(text, CANARY_TOKEN) == []
    value = client._decoded(text.encode(encoding))
    assert leaks(json.dumps(value), CANARY_TOKEN) == []
    assert value["jobs"][:50] == jobs
    plain = json.dumps({"jobs": jobs}).encode(encoding)
    assert client._decoded(plain) == {"jobs": jobs}


async def test_a_gzip_bomb_is_read_no_further_than_the_limit() -> None:
    bomb = gzip_bomb()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 65536):
            yield bomb[start : start + 65536]

    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            await read_body(chunks(), "gzip", None, 4 * 1024 * 1024, "P")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    with pytest.raises(TooLarge):
        await read_body(chunks(), "gzip", str(10**12), 4 * 1024 * 1024, "P")  # refused before reading


def test_every_form_of_the_token_is_redacted() -> None:
    redactor = Redactor(CANARY_TOKEN)
    for form in leaked_forms(CANARY_TOKEN):
        text = redactor.text(f"said: {form}.")
        assert leaks(text, CANARY_TOKEN) == [], (form, text)
        assert text.startswith("said: ")
        assert "[redacted]" in text
    record = redactor.value({"name": CANARY_TOKEN.upper(), CANARY_TOKEN[:10]: [CANARY_TOKEN[-9:]]})
    assert leaks(json.dumps(record), CANARY_TOKEN) == []
    assert redactor.text("a job named nightly-report") == "a job named nightly-report"


@pytest.mark.parametrize("secret", [CANARY_TOKEN, "tok]^-\\[en.+*?(x)|{2}$/%end", "sh0rt!"])
def test_a_form_of_the_token_is_found_anywhere_in_a_long_text(secret: str) -> None:
    redactor = Redactor(secret)
    filler = '{"name": "nightly-report", "id": "job-1234"}, ' * 5000
    assert not redactor.found_in(filler)
    for form in leaked_forms(secret):
        if len(form) < min(8, len(secret)):
            continue  # shorter than a piece: not a secret's form
        middle = len(form) // 2
        pieces = {form, form.swapcase()}
        if len(secret) >= 16:  # then the middle of each form encodes the secret alone
            pieces.add(form[middle - 4 : middle + 4])
        for piece in pieces:
            assert redactor.found_in(f"{filler}q9{piece}9q{filler}"), (form, piece)
            assert leaks(redactor.text(f"said: {piece}."), secret) == [], (form, piece)


def test_log_records_are_redacted_once_a_backend_holds_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    protected(CANARY_TOKEN)
    bearer = base64.b64encode(f"Bearer {CANARY_TOKEN}".encode()).decode()
    logging.getLogger("some.library").debug("sent Authorization: Basic %s", bearer)
    try:
        raise ValueError(f"bad key {CANARY_TOKEN.upper()}")
    except ValueError:
        logging.getLogger("another.library").exception("request failed")
    assert "Basic [redacted]" in caplog.text
    assert "bad key [redacted]" in caplog.text
    assert leaks(caplog.text, CANARY_TOKEN) == []
