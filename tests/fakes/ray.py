"""A fake Ray dashboard (Jobs REST API) behind a token-checking proxy: submission ids, stop, one listing."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, HttpError, Reply

ACTIVE = ("PENDING", "RUNNING")


class FakeRay(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.jobs: dict[str, dict[str, Any]] = {}

    def add_job(self, status: str = "RUNNING") -> str:
        job_id = f"raysubmit_{uuid.uuid4().hex[:16]}"
        now = int(time.time() * 1000)
        self.jobs[job_id] = {
            "type": "SUBMISSION",
            "job_id": None,
            "submission_id": job_id,
            "status": status,
            "entrypoint": "sleep 600",
            "message": "Job is currently running.",
            "error_type": None,
            "start_time": now,
            "end_time": None if status in ACTIVE else now,
            "metadata": {"name": "sleeper"},
            "runtime_env": {},
            "driver_exit_code": None,
        }
        return job_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {"message": message, "error": code}

    def strip_required(self, body: Any) -> Any:
        return {k: v for k, v in body.items() if k != "status"} if isinstance(body, dict) else body

    def is_job(self, value: dict[str, Any]) -> bool:
        return "submission_id" in value

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "entrypoint": text, "metadata": {"name": text}}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["api", "jobs"] and method == "GET":
            return Reply(200, list(self.jobs.values()))
        if len(parts) >= 3 and parts[:2] == ["api", "jobs"] and parts[2] in self.jobs:
            job = self.jobs[parts[2]]
            if len(parts) == 3 and method == "GET":
                return Reply(200, job)
            if len(parts) == 4 and parts[3] == "stop" and method == "POST":
                stopped = job["status"] in ACTIVE
                if stopped:
                    job.update(status="STOPPED", message="Job was intentionally stopped.")
                    job["end_time"] = int(time.time() * 1000)
                return Reply(200, {"stopped": stopped})
        raise HttpError(404, "not_found", f"Job {path} does not exist")
