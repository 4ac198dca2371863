"""A fake Ionworks API: global job ids with a project_id, X-API-Key auth, limit/offset listing."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, HttpError, Reply, now_iso

ACTIVE = ("pending", "processing", "waiting")


class FakeIonworks(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.jobs: dict[str, dict[str, Any]] = {}
        # "array" (what the SDK expects) or "object" ({"jobs": [...], "total": n}, what the docs describe).
        self.list_shape = "array"

    def add_job(
        self, project_id: str | None, status: str = "processing", created_at: str | None = None, **extra: Any
    ) -> str:
        job_id = str(uuid.uuid4())
        created = created_at or now_iso()
        terminal = status in ("completed", "failed", "canceled")
        self.jobs[job_id] = {
            "job_id": job_id,
            "job_type": "simulate",
            "status": status,
            "priority": 5,
            "created_at": created,
            "updated_at": created,
            "user_id": "user-1",
            "organization_id": "org-1",
            "is_terminal": terminal,
            "is_failed": status in ("failed", "canceled"),
            "started_at": created if status != "pending" else None,
            "completed_at": created if terminal else None,
            "compute_time": None,
            "error": None,
            "error_code": None,
            "result": {},
            "callback_url": None,
            "parent_job_id": None,
            "project_id": project_id,
            "access_level": "project" if project_id else "organization",
            "params_path": None,
            "metadata_path": None,
            **extra,
        }
        return job_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("x-api-key") == self.token

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        if status == 409:
            return {"error_code": "CONFLICT", "message": message, "detail": message}
        return {"detail": message}

    def strip_required(self, body: Any) -> Any:
        if isinstance(body, list):
            return [{k: v for k, v in j.items() if k != "job_id"} for j in body]
        if "jobs" in body:
            return {**body, "jobs": [{k: v for k, v in j.items() if k != "job_id"} for j in body["jobs"]]}
        return {k: v for k, v in body.items() if k != "job_id"}

    def is_job(self, value: dict[str, Any]) -> bool:
        return "job_id" in value

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "job_type": text, "error": text}

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise HttpError(404, "not_found", "Job not found")
        return job

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["jobs"] and method == "GET":
            return self._list(query)
        if len(parts) == 2 and parts[0] == "jobs" and method == "GET":
            return Reply(200, self._job(parts[1]))
        if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "cancel" and method == "POST":
            job = self._job(parts[1])
            if job["status"] not in ACTIVE:
                raise HttpError(409, "conflict", f"Job is already {job['status']}")
            stamp = now_iso()
            job.update(
                status="canceled", is_terminal=True, is_failed=True, completed_at=stamp, updated_at=stamp
            )
            return Reply(200, job)
        raise HttpError(404, "not_found", "Not Found")

    def _list(self, query: dict[str, list[str]]) -> Reply:
        limit = int(query.get("limit", ["50"])[0])
        offset = int(query.get("offset", ["0"])[0])
        status = query.get("status", [None])[0]
        jobs = [j for j in self.jobs.values() if status is None or j["status"] == status]
        jobs.sort(key=lambda j: (j["created_at"], j["job_id"]), reverse=True)
        page = jobs[offset : offset + limit]
        if self.list_shape == "object":
            return Reply(200, {"jobs": page, "total": len(jobs)})
        return Reply(200, page)
