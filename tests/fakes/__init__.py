"""Fake hosted providers (real HTTP servers on 127.0.0.1) and a harness to run one backend against one.

`PROVIDERS` describes each provider for the parametrized tests: how to make its fake, its backend,
an active and a finished job, and a bad job id. `backend_settings` keeps every timeout and wait tiny.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cancel_job_mcp.backends import digitalocean as digitalocean_backend
from cancel_job_mcp.backends import ionworks as ionworks_backend
from cancel_job_mcp.backends import talonic as talonic_backend
from cancel_job_mcp.backends import veryfront as veryfront_backend
from cancel_job_mcp.backends.base import BackendSettings

from .digitalocean import FakeDigitalOcean
from .ionworks import FakeIonworks
from .server import FakeProvider, Fault, HttpError, Recorded, Reply
from .talonic import FakeTalonic
from .veryfront import FakeVeryfront

CANARY_TOKEN = "cjm-CANARY-t0k3n-9f2c7e1a"

__all__ = [
    "CANARY_TOKEN",
    "PROVIDERS",
    "FakeDigitalOcean",
    "FakeIonworks",
    "FakeProvider",
    "FakeTalonic",
    "FakeVeryfront",
    "Fault",
    "HttpError",
    "ProviderCase",
    "Recorded",
    "Reply",
    "backend_settings",
    "documented_example",
]


def backend_settings(kind: str, base_url: str, **overrides: Any) -> BackendSettings:
    options = {"max_retries": 2, "max_retry_wait": 1.0, "retry_backoff": 0.01}
    options.update(overrides.pop("options", {}))
    values: dict[str, Any] = {
        "name": kind,
        "kind": kind,
        "base_url": base_url,
        "connect_timeout": 0.5,
        "read_timeout": 0.3,
        "settle_timeout": 0.0,
        "options": options,
    }
    values.update(overrides)
    return BackendSettings(**values)


@dataclass(frozen=True)
class ProviderCase:
    kind: str
    module: ModuleType
    token_env: str
    fake: Callable[[str], FakeProvider]
    project: str
    add_active: Callable[[Any], str]
    add_finished: Callable[[Any], str]
    bad_job_id: str
    # Requests one successful cancel makes (Ionworks reads the job first to check its project).
    cancel_requests: int = 1

    def __str__(self) -> str:
        return self.kind


PROVIDERS = [
    ProviderCase(
        kind="veryfront",
        module=veryfront_backend,
        token_env="VERYFRONT_API_TOKEN",
        fake=FakeVeryfront,
        project="proj-a",
        add_active=lambda f: f.add_job("proj-a", "working"),
        add_finished=lambda f: f.add_job("proj-a", "completed", completed_at="2026-01-01T00:00:00Z"),
        bad_job_id="not-a-uuid",
    ),
    ProviderCase(
        kind="digitalocean",
        module=digitalocean_backend,
        token_env="DIGITALOCEAN_TOKEN",
        fake=FakeDigitalOcean,
        project="4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf",
        add_active=lambda f: f.add_invocation("4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf", "RUNNING"),
        add_finished=lambda f: f.add_invocation(
            "4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf", "SUCCEEDED", completed_at="2026-01-01T00:00:00Z"
        ),
        bad_job_id="../secrets",
    ),
    ProviderCase(
        kind="ionworks",
        module=ionworks_backend,
        token_env="IONWORKS_API_KEY",
        fake=FakeIonworks,
        project="proj-a",
        add_active=lambda f: f.add_job("proj-a", "processing"),
        add_finished=lambda f: f.add_job("proj-a", "completed"),
        bad_job_id="job 1/2",
        cancel_requests=2,
    ),
    ProviderCase(
        kind="talonic",
        module=talonic_backend,
        token_env="TALONIC_API_KEY",
        fake=FakeTalonic,
        project="talonic",
        add_active=lambda f: f.add_job("processing"),
        add_finished=lambda f: f.add_job("complete", completed_at="2026-01-01T00:00:00Z"),
        bad_job_id="job-123",
    ),
]


def documented_example(filename: str, marker: str = "\n{") -> Any:
    """The first JSON object at or after `marker` in a provider document of tests/fixtures/api-docs."""
    import json
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "fixtures" / "api-docs" / filename).read_text()
    start = text.index("{", text.index(marker))
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value
