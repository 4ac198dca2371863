"""A fake DigitalOcean App Platform job-invocations API: app-scoped, page/per_page, three wrappers."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, Fault, HttpError, Recorded, Reply, now_iso

ACTIVE = ("PENDING", "RUNNING", "UNKNOWN")


class FakeDigitalOcean(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.invocations: dict[str, dict[str, Any]] = {}  # id -> {"app_id", "invocation"}
        # How single invocations are wrapped: "object" (godo), "list" (spec example) or "bare" (spec schema).
        self.wrapper = "object"
        # After a cancel, this many answers (the cancel's own included) still show the old phase.
        self.cancel_lag = 0
        self._lagging: dict[str, int] = {}
        # Log files, served without auth under /files/NAME as pre-signed URLs are; an invocation's logs
        # answer lists its files' URLs. Two names are hostile: "huge" (200 MB) and "endless" (a byte a
        # second, never done).
        self.files: dict[str, bytes] = {}
        self.logs_of: dict[str, list[str]] = {}  # invocation id -> its files' names
        self.live_file: dict[str, str] = {}  # invocation id -> the name its live_url points to

    def add_invocation(
        self, app_id: str, phase: str = "RUNNING", created_at: str | None = None, **extra: Any
    ) -> str:
        inv_id = str(uuid.uuid4())
        created = created_at or now_iso()
        self.invocations[inv_id] = {
            "app_id": app_id,
            "invocation": {
                "id": inv_id,
                "job_name": "nightly-report",
                "deployment_id": "c020763f-ddb7-4112-a0df-7f01c69fc00b",
                "phase": phase,
                "created_at": created,
                "started_at": created if phase != "PENDING" else None,
                "completed_at": None,
                "trigger": {"type": "MANUAL", "manual": {"user": {"uuid": "u1", "email": "a@b.c"}}},
                **extra,
            },
        }
        return inv_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {"id": code, "message": message, "request_id": "4d9d8375-3c56-4925-a3e7-eb137fed17e9"}

    def rate_limit_headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": "250",
            "ratelimit-remaining": "0",
            "ratelimit-reset": "1",  # a delta here keeps tests fast; epoch forms are unit-tested
            "retry-after": self.retry_after,
        }

    def strip_required(self, body: Any) -> Any:
        def strip(inv: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in inv.items() if k != "phase"}

        if "job_invocations" in body:
            return {**body, "job_invocations": [strip(i) for i in body["job_invocations"]]}
        if "job_invocation" in body:
            inner = body["job_invocation"]
            return {"job_invocation": [strip(i) for i in inner] if isinstance(inner, list) else strip(inner)}
        return strip(body)

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "job_name": text}

    def _wrap(self, invocation: dict[str, Any]) -> Any:
        if self.wrapper == "list":
            return {"job_invocation": [invocation]}
        if self.wrapper == "bare":
            return invocation
        return {"job_invocation": invocation}

    def _shown(self, inv_id: str) -> dict[str, Any]:
        inv = self.invocations[inv_id]["invocation"]
        if self._lagging.get(inv_id, 0) > 0:
            self._lagging[inv_id] -= 1
            return {**inv, "phase": "RUNNING", "completed_at": None}
        return inv

    def _find(self, app_id: str, inv_id: str) -> str:
        entry = self.invocations.get(inv_id)
        if entry is None or entry["app_id"] != app_id:
            raise HttpError(404, "not_found", "The resource you were accessing could not be found.")
        return inv_id

    def _dispatch(self, recorded: Recorded) -> tuple[int, bytes, dict[str, str]] | Fault | None:
        if not recorded.path.startswith("/files/"):
            return super()._dispatch(recorded)
        self.requests.append(recorded)
        name = recorded.path.removeprefix("/files/")
        if name == "huge":
            return Fault.HUGE_BODY
        if name == "endless":
            return Fault.TRICKLE
        return 200, self.files[name], {"Content-Type": "text/plain"}

    def trickled(self, recorded: Recorded) -> tuple[int, bytes, dict[str, str]]:
        if recorded.path == "/files/endless":
            return 200, b"drip\n" * 100_000, {"Content-Type": "text/plain"}
        return super().trickled(recorded)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        # GET /v2/apps/{app}/jobs/{job_name}/invocations/{id}/logs?type=JOB_INVOCATION
        if len(parts) == 8 and parts[3] == "jobs" and parts[5] == "invocations" and parts[7] == "logs":
            inv_id = self._find(parts[2], parts[6])
            if parts[4] != self.invocations[inv_id]["invocation"]["job_name"] or query.get("type") != [
                "JOB_INVOCATION"
            ]:
                raise HttpError(400, "bad_request", "job_name and type=JOB_INVOCATION are required")
            answer: dict[str, Any] = {
                "historic_urls": [f"{self.url}/files/{name}" for name in self.logs_of.get(inv_id, [])]
            }
            if inv_id in self.live_file:
                answer["live_url"] = f"{self.url}/files/{self.live_file[inv_id]}"
            return Reply(200, answer)
        if len(parts) >= 4 and parts[:2] == ["v2", "apps"] and parts[3] == "job-invocations":
            app_id = parts[2]
            if len(parts) == 4 and method == "GET":
                return self._list(app_id, query)
            if len(parts) == 5 and method == "GET":
                return Reply(200, self._wrap(self._shown(self._find(app_id, parts[4]))))
            if len(parts) == 6 and parts[5] == "cancel" and method == "POST":
                inv_id = self._find(app_id, parts[4])
                inv = self.invocations[inv_id]["invocation"]
                if inv["phase"] in ACTIVE:
                    inv.update(phase="CANCELED", completed_at=now_iso())
                    if self.cancel_lag:
                        self._lagging[inv_id] = self.cancel_lag
                return Reply(200, self._wrap(self._shown(inv_id)))
        raise HttpError(404, "not_found", "The resource you were accessing could not be found.")

    def _list(self, app_id: str, query: dict[str, list[str]]) -> Reply:
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["20"])[0])
        if per_page > 200 or page < 1:
            raise HttpError(400, "bad_request", "per_page must be at most 200")
        items = [e["invocation"] for e in self.invocations.values() if e["app_id"] == app_id]
        items.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {}
        if page * per_page < len(items):
            links = {"pages": {"next": f"{self.url}/v2/apps/{app_id}/job-invocations?page={page + 1}"}}
        return Reply(200, {"job_invocations": chunk, "links": links, "meta": {"total": len(items)}})
