"""Routing: which backend serves a project reference, decided in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import anyio
import pytest

from cancel_job_mcp.backends.base import BackendSettings, JobSpec, StopHooks
from cancel_job_mcp.config import load_config, parse_config
from cancel_job_mcp.errors import BackendConfigError, ErrorCode, ToolError
from cancel_job_mcp.routing import Router

TOKENS = {"VERYFRONT_API_TOKEN": "vf-token", "TALONIC_API_KEY": "tl-token"}
TWO_PROVIDERS = """
[backends.vf]
kind = "veryfront"
projects = ["web-*", "docs"]

[backends.talonic]
projects = ["web-special", "invoices"]
"""


class FakeBackend(StopHooks):
    made: ClassVar[list[str]] = []

    def __init__(self, settings: BackendSettings) -> None:
        self.name = settings.name
        self.kind = settings.kind
        self.closed = False
        FakeBackend.made.append(settings.name)

    async def aclose(self) -> None:
        self.closed = True


def router_for(text: str) -> Router:
    return Router(
        parse_config(text, Path("cfg.toml"), Path("/tmp/home"), TOKENS).backends, factory=FakeBackend
    )


def route(router: Router, reference: str) -> tuple[str, str]:
    found = router.route(reference)
    return found.backend.name, found.project


def test_an_explicit_backend_name_wins() -> None:
    router = router_for(TWO_PROVIDERS)
    assert route(router, "talonic:web-1") == ("talonic", "web-1")
    assert route(router, "local:docs") == ("local", "docs")


def test_glob_patterns_in_file_order_then_local() -> None:
    router = router_for(TWO_PROVIDERS)
    assert route(router, "web-special") == ("vf", "web-special"), "the first matching table wins"
    assert route(router, "docs") == ("vf", "docs")
    assert route(router, "invoices") == ("talonic", "invoices")
    assert route(router, "anything-else") == ("local", "anything-else")


def test_a_local_table_first_in_the_file_does_not_swallow_the_others() -> None:
    router = router_for('[backends.local]\nhome = "/srv/jobs"\n' + TWO_PROVIDERS)
    assert route(router, "web-1") == ("vf", "web-1")
    assert route(router, "mine") == ("local", "mine")


def test_a_local_table_with_projects_serves_only_those() -> None:
    router = router_for('[backends.local]\nprojects = ["scratch-*"]\n')
    assert route(router, "scratch-1") == ("local", "scratch-1")
    with pytest.raises(ToolError) as raised:
        router.route("other")
    assert raised.value.code == ErrorCode.UNKNOWN_PROJECT
    assert "local (scratch-*)" in raised.value.message


def test_an_unknown_project_names_the_backends_and_patterns() -> None:
    router = router_for(
        TWO_PROVIDERS + '\n[backends.lab]\nkind = "local"\n\n[backends.local]\nenabled = false\n'
    )
    with pytest.raises(ToolError) as raised:
        router.route("nobody-serves-this")
    assert raised.value.code == ErrorCode.UNKNOWN_PROJECT
    assert "vf (web-*, docs)" in raised.value.message
    assert "talonic (web-special, invoices)" in raised.value.message
    assert "lab (only as lab:REF)" in raised.value.message
    with pytest.raises(ToolError, match="There is no backend named 'local'"):
        router.route("local:x")


def test_a_backend_is_made_once_on_first_use_and_closed_with_the_router() -> None:
    FakeBackend.made = []
    router = router_for(TWO_PROVIDERS)
    assert FakeBackend.made == [], "nothing is made before it is used"
    first = router.route("web-1").backend
    assert router.route("docs").backend is first
    assert FakeBackend.made == ["vf"]
    anyio.run(router.aclose)
    assert isinstance(first, FakeBackend)
    assert first.closed


def test_a_backend_that_cannot_start_is_backend_misconfigured() -> None:
    def refuse(settings: BackendSettings) -> FakeBackend:
        raise BackendConfigError("RAY_ADDRESS='ray://head:10001' is not the HTTP address of a Ray dashboard")

    router = Router([BackendSettings(name="ray", kind="ray")], factory=refuse)
    with pytest.raises(ToolError) as raised:
        router.route("ray:cluster")
    assert raised.value.code == ErrorCode.BACKEND_MISCONFIGURED
    assert raised.value.message.startswith("Backend 'ray' cannot start: RAY_ADDRESS='ray://head:10001'")
    assert raised.value.message.endswith("Fix its configuration and restart the server.")


def test_a_bug_in_a_backend_is_not_reported_as_a_misconfiguration() -> None:
    def broken(settings: BackendSettings) -> FakeBackend:
        return int("not a number")  # type: ignore[return-value]

    router = Router([BackendSettings(name="ray", kind="ray")], factory=broken)
    with pytest.raises(ValueError, match="invalid literal for int"):
        router.route("ray:cluster")


def test_a_real_backend_that_cannot_start_is_backend_misconfigured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    router = Router(load_config(None, tmp_path, {"RAY_ADDRESS": "ray://head:10001"}).backends)
    with pytest.raises(ToolError) as raised:
        router.route("ray:cluster")
    assert raised.value.code == ErrorCode.BACKEND_MISCONFIGURED
    assert "ray://head:10001" in raised.value.message


def test_what_spans_every_project_goes_to_each_local_state_directory_once() -> None:
    router = Router(
        [
            BackendSettings(name="first", kind="local", options={"home": "/srv/a"}),
            BackendSettings(name="vf", kind="veryfront"),
            BackendSettings(name="again", kind="local", options={"home": "/srv/a"}),
            BackendSettings(name="second", kind="local", options={"home": "/srv/b"}),
        ],
        factory=FakeBackend,
    )
    FakeBackend.made.clear()
    assert [backend.name for backend in router.local_backends()] == ["first", "second"]
    assert FakeBackend.made == ["first", "second"]  # the provider is not made, nor asked anything


@pytest.mark.parametrize(
    ("operation", "words"),
    [
        (lambda backend: backend.submit_job("p", JobSpec(("true",))), "does not offer submit"),
        (lambda backend: backend.prune_jobs(timedelta(days=1)), "does not offer prune"),
        (lambda backend: backend.list_every_project(None, 10, None), "does not offer a listing across"),
    ],
)
def test_a_backend_that_does_not_run_jobs_itself_answers_not_supported(
    operation: Callable[[FakeBackend], Awaitable[object]], words: str
) -> None:
    backend = FakeBackend(BackendSettings(name="cluster", kind="ray"))
    with pytest.raises(ToolError) as raised:
        anyio.run(operation, backend)
    assert raised.value.code == ErrorCode.NOT_SUPPORTED
    assert raised.value.message.startswith(f"backend 'cluster' (ray) {words}")
