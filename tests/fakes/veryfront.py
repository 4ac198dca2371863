"""A fake Veryfront REST API: project-scoped jobs, Bearer auth, cursor pagination."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, HttpError, Reply, now_iso

ACTIVE = ("submitted", "working")


class FakeVeryfront(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.jobs: dict[str, dict[str, Any]] = {}

    def add_job(
        self, project_id: str, status: str = "working", created_at: str | None = None, **extra: Any
    ) -> str:
        job_id = str(uuid.uuid4())
        created = created_at or now_iso()
        self.jobs[job_id] = {
            "id": job_id,
            "canonical_run_id": "run_1",
            "project_id": project_id,
            "environment_id": None,
            "branch_id": None,
            "cron_job_id": None,
            "batch_id": None,
            "name": f"job {len(self.jobs) + 1}",
            "status": status,
            "target": "knowledge/ingest",
            "config": {"sources": ["a.pdf"]},
            "context_id": None,
            "timeout_seconds": 600,
            "backoff_limit": 2,
            "exit_code": None,
            "failed_reason": None,
            "started_at": created if status != "submitted" else None,
            "completed_at": None,
            "created_by": "user_1",
            "created_at": created,
            "updated_at": created,
            "kind": "knowledge_ingest",
            "failure_detail": None,
            "result_summary": None,
            "result": None,
            **extra,
        }
        return job_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {"error": code, "message": message}

    def strip_required(self, body: Any) -> Any:
        if isinstance(body, dict) and "data" in body:
            return {"data": [{k: v for k, v in j.items() if k != "status"} for j in body["data"]]}
        return {k: v for k, v in body.items() if k != "status"}

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "name": text, "failed_reason": text, "config": {"note": text}}

    def _job(self, ref: str, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job["project_id"] != ref:
            raise HttpError(404, "not_found", "Job not found")
        return job

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) >= 3 and parts[0] == "projects" and parts[2] == "jobs":
            ref = parts[1]
            if len(parts) == 3 and method == "GET":
                return self._list(ref, query)
            if len(parts) == 4 and method == "GET":
                return Reply(200, self._job(ref, parts[3]))
            if len(parts) == 5 and parts[4] == "cancel" and method == "POST":
                job = self._job(ref, parts[3])
                if job["status"] not in ACTIVE:
                    raise HttpError(409, "conflict", f"Job is already {job['status']}")
                stamp = now_iso()
                job.update(status="canceled", completed_at=stamp, updated_at=stamp, failed_reason="Canceled")
                return Reply(200, job)
        raise HttpError(404, "not_found", "No such route")

    def _list(self, ref: str, query: dict[str, list[str]]) -> Reply:
        limit = int(query.get("limit", ["20"])[0])
        if not 1 <= limit <= 100:
            raise HttpError(400, "validation_error", "limit must be 1-100")
        status = query.get("status", [None])[0]
        jobs = [
            j
            for j in self.jobs.values()
            if j["project_id"] == ref and (status is None or j["status"] == status)
        ]
        jobs.sort(key=lambda j: (j["created_at"], j["id"]), reverse=True)
        cursor = query.get("cursor", [None])[0]
        start = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
        page = jobs[start : start + limit]
        more = start + limit < len(jobs)
        next_cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
        return Reply(200, {"data": page, "next_cursor": next_cursor})
