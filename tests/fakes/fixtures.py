"""Fixtures shared by the provider tests: the fake of the test's `case`, and its backend against it.

A test module provides `case` (one provider, or parametrized over `PROVIDERS`); these do the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cancel_job_mcp.backends import registry
from cancel_job_mcp.backends.base import Backend

from . import CANARY_TOKEN, FakeProvider, ProviderCase, backend_settings


@pytest.fixture
def fake(case: ProviderCase) -> Iterator[FakeProvider]:
    server = case.fake(CANARY_TOKEN)
    yield server
    server.close()


@pytest.fixture
def token_env(case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(case.token_env, CANARY_TOKEN)
    return case.token_env


@pytest.fixture
async def backend(case: ProviderCase, fake: FakeProvider, token_env: str) -> AsyncIterator[Backend]:
    made = registry.create(backend_settings(case.kind, fake.url))
    yield made
    await made.aclose()
