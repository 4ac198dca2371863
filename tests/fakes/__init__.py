"""Fake hosted providers (real HTTP servers on 127.0.0.1) and a harness to run one backend against one.

`PROVIDERS` describes each provider for the tests (`CASES` by kind): how to make its fake and seed it,
its projects, and a bad job id. `backend_settings` keeps every timeout and wait tiny; the fixtures
`fake` and `backend` (tests/fakes/fixtures.py) run the backend of the test's `case` against its fake.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cancel_job_mcp.backends import registry
from cancel_job_mcp.backends.base import Backend, BackendSettings, JobPage

from .digitalocean import FakeDigitalOcean
from .ionworks import FakeIonworks
from .ray import FakeRay
from .server import FakeProvider, Fault, HttpError, Recorded, Reply, leaked_forms, now_iso
from .talonic import FakeTalonic
from .temporal import FakeTemporal
from .veryfront import FakeVeryfront

CANARY_TOKEN = "cjm-CANARY-t0k3n-9f2c7e1a"

__all__ = [
    "CANARY_TOKEN",
    "CASES",
    "PROVIDERS",
    "FakeDigitalOcean",
    "FakeIonworks",
    "FakeProvider",
    "FakeRay",
    "FakeTalonic",
    "FakeTemporal",
    "FakeVeryfront",
    "Fault",
    "HttpError",
    "ProviderCase",
    "Recorded",
    "Reply",
    "backend_settings",
    "documented_example",
    "every_page",
    "job_ids",
    "leaked_forms",
    "leaks",
    "provider_tables",
]


def backend_settings(kind: str, base_url: str, **overrides: Any) -> BackendSettings:
    # Tiny per-read timeouts keep hang tests fast; the total deadline stays generous for a loaded machine,
    # and so does the connect timeout: a fake on loopback is refused at once, and only a starved event
    # loop makes a connect slow (0.5 s gave ConnectTimeout in test_talonic and test_ionworks at load 12).
    options = {"max_retries": 2, "max_retry_wait": 1.0, "retry_backoff": 0.01, "total_timeout": 10.0}
    options.update(overrides.pop("options", {}))
    values: dict[str, Any] = {
        "name": kind,
        "kind": kind,
        "base_url": base_url,
        "connect_timeout": 5.0,
        "read_timeout": 0.3,
        "settle_timeout": 0.0,
        "options": options,
    }
    values.update(overrides)
    return BackendSettings(**values)


# add(fake, project, state, created_at) -> job id, where state is "active" or "finished".
AddJob = Callable[[Any, str, str, str | None], str]


@dataclass(frozen=True)
class ProviderCase:
    """One hosted provider as the tests see it: its fake, how to seed it, and its projects."""

    kind: str
    fake: Callable[[str], FakeProvider]
    add: AddJob
    # The job's current status on the fake, in the provider's words.
    provider_status: Callable[[Any, str], str]
    project: str
    pattern: str  # a glob in `projects` that matches `project`
    # Another project of the same provider; None where the provider has no projects (the key decides).
    other_project: str | None
    bad_job_id: str
    # True when the backend itself refuses another project's job (no cancel request is sent at all);
    # False when the project is part of the provider's URL and the provider answers 404.
    scoped_here: bool = False
    # Requests one successful cancel makes (Ionworks reads the job first to check its project).
    cancel_requests: int = 1

    @property
    def token_env(self) -> str:
        variable = registry.ENTRIES[self.kind].token_env
        assert variable is not None
        return variable

    def add_active(self, fake: Any, created_at: str | None = None) -> str:
        return self.add(fake, self.project, "active", created_at)

    def add_finished(self, fake: Any, created_at: str | None = None) -> str:
        return self.add(fake, self.project, "finished", created_at)

    def __str__(self) -> str:
        return self.kind


def _veryfront(fake: FakeVeryfront, project: str, state: str, created: str | None) -> str:
    if state == "active":
        return fake.add_job(project, "working", created_at=created)
    stamp = created or now_iso()
    return fake.add_job(project, "completed", created_at=stamp, completed_at=stamp)


def _digitalocean(fake: FakeDigitalOcean, project: str, state: str, created: str | None) -> str:
    if state == "active":
        return fake.add_invocation(project, "RUNNING", created_at=created)
    stamp = created or now_iso()
    return fake.add_invocation(project, "SUCCEEDED", created_at=stamp, completed_at=stamp)


def _ionworks(fake: FakeIonworks, project: str, state: str, created: str | None) -> str:
    return fake.add_job(project, "processing" if state == "active" else "completed", created_at=created)


def _talonic(fake: FakeTalonic, project: str, state: str, created: str | None) -> str:
    # Talonic has no projects: the key's organization holds every job.
    if state == "active":
        return fake.add_job("processing", created_at=created)
    stamp = created or now_iso()
    return fake.add_job("complete", created_at=stamp, completed_at=stamp)


PROVIDERS = [
    ProviderCase(
        kind="veryfront",
        fake=FakeVeryfront,
        add=_veryfront,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="proj-a",
        pattern="proj-*",
        other_project="proj-b",
        bad_job_id="not-a-uuid",
    ),
    ProviderCase(
        kind="digitalocean",
        fake=FakeDigitalOcean,
        add=_digitalocean,
        provider_status=lambda fake, job_id: fake.invocations[job_id]["invocation"]["phase"],
        project="4f6c71e2-1e90-4762-9fee-6cc4a0a9f2cf",
        pattern="4f6c71e2-*",
        other_project="9a1b2c3d-0000-4000-8000-00000000beef",
        bad_job_id="../secrets",
    ),
    ProviderCase(
        kind="ionworks",
        fake=FakeIonworks,
        add=_ionworks,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="proj-a",
        pattern="proj-?",
        other_project="proj-b",
        bad_job_id="job 1/2",
        scoped_here=True,
        cancel_requests=2,
    ),
    ProviderCase(
        kind="talonic",
        fake=FakeTalonic,
        add=_talonic,
        provider_status=lambda fake, job_id: fake.jobs[job_id]["status"],
        project="invoices",
        pattern="invoices",
        other_project=None,
        bad_job_id="job-123",
    ),
]
CASES = {case.kind: case for case in PROVIDERS}


async def every_page(
    backend: Backend, project: str, limit: int, status: str | None = None, validator: Any = None
) -> list[JobPage]:
    """Every page of a listing, following next_cursor to the end; each record checked by `validator`."""
    pages: list[JobPage] = []
    cursor = None
    while len(pages) < 50:
        page = await backend.list_jobs(project, status, limit, cursor)
        for job in page["jobs"] if validator is not None else ():
            validator.validate(job)
        pages.append(page)
        if (cursor := page["next_cursor"]) is None:
            return pages
    raise AssertionError("the listing never ends")


def job_ids(pages: list[JobPage]) -> list[str]:
    return [job["id"] for page in pages for job in page["jobs"]]


def provider_tables(fakes: Mapping[str, FakeProvider], env_prefix: str, settings: str) -> str:
    """A configuration with one `[backends.KIND]` table per fake: its URL, its token read from
    `$<env_prefix>_<KIND>`, and `settings` (TOML lines common to every table)."""
    return "".join(
        f'[backends.{kind}]\nkind = "{kind}"\nbase_url = "{fake.url}"\n'
        f'token_env = "{env_prefix}_{kind.upper()}"\n{settings}'
        for kind, fake in fakes.items()
    )


def leaks(text: str, token: str) -> list[str]:
    """Every piece of 8 characters of the token or of its encodings that `text` holds, in any case.

    Written apart from the server's redaction on purpose: the tests check the server with it.
    """
    raw = token.encode()
    forms = [token, quote(token, safe="")]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms += [encode(raw).decode(), encode(b"Bearer " + raw).decode()]
    lowered = text.lower()
    pieces = {form[i : i + 8].lower() for form in forms for i in range(len(form) - 7)}
    return sorted(piece for piece in pieces if piece in lowered)


def documented_example(filename: str, marker: str = "\n{") -> Any:
    """The first JSON object at or after `marker` in a provider document of tests/fixtures/api-docs."""
    import json
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "fixtures" / "api-docs" / filename).read_text()
    start = text.index("{", text.index(marker))
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value
