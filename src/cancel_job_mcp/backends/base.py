"""The one small async interface every backend implements."""

from __future__ import annotations

from typing import Protocol

from ..record import JobRecord


class Backend(Protocol):
    """A place jobs run. `project` is the project reference with any `NAME:` prefix removed.

    Methods raise `ToolError` for every failure the caller can act on.
    """

    name: str
    kind: str

    async def cancel_job(self, project: str, job_id: str) -> JobRecord: ...

    async def get_job(self, project: str, job_id: str) -> JobRecord: ...

    async def aclose(self) -> None: ...
