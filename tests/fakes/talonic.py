"""A fake Talonic API v1: UUID job ids, Bearer auth, cancel as failed + "Cancelled via API", cursors."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, HttpError, Reply, now_iso

ACTIVE = ("pending", "queued", "processing")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class FakeTalonic(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.jobs: dict[str, dict[str, Any]] = {}
        # X-RateLimit-Reset as "iso" (the error-codes page) or "epoch" (the Python SDK); no Retry-After.
        self.reset_format = "iso"
        self.reset_in = 0.0

    def add_job(self, status: str = "processing", created_at: str | None = None, **extra: Any) -> str:
        job_id = str(uuid.uuid4())
        created = created_at or now_iso()
        self.jobs[job_id] = {
            "id": job_id,
            "name": None,
            "status": status,
            "progress": 40 if status == "processing" else None,
            "estimated_seconds_remaining": None,
            "schema": {"id": "sch_uuid_1", "name": "Invoice"},
            "document_count": 10,
            "completed_documents": 4,
            "grid_stats": None,
            "current_phase": "phase_2_extract" if status == "processing" else None,
            "error": None,
            "created_at": created,
            "started_at": created if status == "processing" else None,
            "completed_at": None,
            "links": {"self": f"/v1/jobs/{job_id}", "cancel": f"/v1/jobs/{job_id}/cancel"},
            **extra,
        }
        return job_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {
            "statusCode": status,
            "code": code.upper(),
            "error": code,
            "message": message,
            "retryable": status in (429, 500, 503),
            "request_id": "req_abc123",
            "timestamp": now_iso(),
            "path": path,
        }

    def rate_limit_headers(self) -> dict[str, str]:
        reset = time.time() + self.reset_in
        if self.reset_format == "epoch":
            value = str(int(reset))
        else:
            value = datetime.fromtimestamp(reset, UTC).isoformat().replace("+00:00", "Z")
        return {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value}

    def strip_required(self, body: Any) -> Any:
        if "data" in body:
            return {**body, "data": [{k: v for k, v in j.items() if k != "status"} for j in body["data"]]}
        return {k: v for k, v in body.items() if k != "status"}

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "name": text, "current_phase": text}

    def _job(self, job_id: str) -> dict[str, Any]:
        if not _UUID.fullmatch(job_id):
            raise HttpError(400, "validation_error", "Invalid job ID format. Must be a UUID.")
        job = self.jobs.get(job_id)
        if job is None:
            raise HttpError(404, "not_found", "No job with this ID exists for your organization.")
        return job

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["v1", "jobs"] and method == "GET":
            return self._list(query)
        if len(parts) == 3 and parts[:2] == ["v1", "jobs"] and method == "GET":
            return Reply(200, self._job(parts[2]))
        if len(parts) == 4 and parts[:2] == ["v1", "jobs"] and parts[3] == "cancel" and method == "POST":
            job = self._job(parts[2])
            if job["status"] not in ACTIVE:
                raise HttpError(
                    409, "conflict", "Job is already completed or failed and cannot be cancelled."
                )
            links = {k: v for k, v in job["links"].items() if k != "cancel"}
            job.update(
                status="failed",
                progress=None,
                error={"code": "job_failed", "message": "Cancelled via API"},
                completed_at=now_iso(),
                links=links,
            )
            return Reply(200, job)
        raise HttpError(404, "not_found", "Route not found")

    def _list(self, query: dict[str, list[str]]) -> Reply:
        limit = int(query.get("limit", ["20"])[0])
        status = query.get("status", [None])[0]
        jobs = [j for j in self.jobs.values() if status is None or j["status"] == status]
        jobs.sort(key=lambda j: (j["created_at"], j["id"]), reverse=True)
        cursor = query.get("cursor", [None])[0]
        start = 0
        if cursor:
            ids = [j["id"] for j in jobs]
            start = ids.index(cursor.removeprefix("cur_")) + 1
        page = jobs[start : start + limit]
        more = start + limit < len(jobs)
        pagination = {
            "total": len(jobs),
            "limit": limit,
            "has_more": more,
            "next_cursor": f"cur_{page[-1]['id']}" if more and page else None,
        }
        return Reply(200, {"data": page, "pagination": pagination})


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
