"""What the tools and the CLI do, once: check identifiers, route, call the backend."""

from __future__ import annotations

from .arguments import check_identifier
from .record import JobRecord
from .routing import Route, Router


class JobService:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def cancel_job(self, project_reference: str, job_id: str) -> JobRecord:
        route = self._route(project_reference, job_id)
        return await route.backend.cancel_job(route.project, job_id)

    async def get_job(self, project_reference: str, job_id: str) -> JobRecord:
        route = self._route(project_reference, job_id)
        return await route.backend.get_job(route.project, job_id)

    def _route(self, project_reference: str, job_id: str) -> Route:
        check_identifier("project_reference", project_reference)
        check_identifier("job_id", job_id)
        return self.router.route(project_reference)

    async def aclose(self) -> None:
        await self.router.aclose()
