"""A fake Temporal HTTP API (the grpc-gateway JSON of a Temporal frontend) behind a token check, in the
shapes recorded from a real dev server (tests/fixtures/temporal): describe, close-event history, list,
cancel and terminate. A cancel closes a running workflow at once, as a workflow that handles it does,
unless `on_cancel` says "ignore" (it runs on) or "continue" (its run continues as new, once).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from .server import FakeProvider, HttpError, Reply, now_iso

PREFIX = "WORKFLOW_EXECUTION_STATUS_"
CLOSE_EVENTS = {
    "CANCELED": ("EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED", "workflowExecutionCanceledEventAttributes", {}),
    "TERMINATED": (
        "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED",
        "workflowExecutionTerminatedEventAttributes",
        {"reason": "terminated", "identity": "cancel-job-mcp"},
    ),
}
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 9, 429: 8, 500: 13, 503: 14}


class FakeTemporal(FakeProvider):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.on_cancel = "close"

    def add_workflow(self, namespace: str = "default", status: str = "RUNNING") -> str:
        workflow_id = f"wf-{uuid.uuid4().hex[:12]}"
        run_id = str(uuid.uuid4())
        info: dict[str, Any] = {
            "execution": {"workflowId": workflow_id, "runId": run_id},
            "type": {"name": "Pipeline"},
            "startTime": now_iso(),
            "status": PREFIX + status,
            "historyLength": "5",
            "executionTime": now_iso(),
            "memo": {"fields": {"owner": "data-team"}},
            "searchAttributes": {},
            "taskQueue": "pipelines",
            "firstRunId": run_id,
        }
        if status != "RUNNING":
            info["closeTime"] = now_iso()
        self.workflows[(namespace, workflow_id)] = info
        return workflow_id

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        return {"code": GRPC_CODES.get(status, 2), "message": message, "details": []}

    def strip_required(self, body: Any) -> Any:
        if isinstance(body, dict) and "workflowExecutionInfo" in body:
            return {key: value for key, value in body.items() if key != "workflowExecutionInfo"}
        if isinstance(body, dict) and isinstance(body.get("executions"), list):
            return {
                "executions": [
                    {k: v for k, v in item.items() if k != "status"} for item in body["executions"]
                ]
            }
        return body

    def is_job(self, value: dict[str, Any]) -> bool:
        return "execution" in value and "status" in value

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        return {**job, "type": {"name": text}, "taskQueue": text, "memo": {"fields": {"note": text}}}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] != "workflows":
            raise HttpError(404, "not_found", f"Method Not Found: {path}")
        namespace = parts[3]
        if len(parts) == 5 and method == "GET":
            executions = [
                {key: value for key, value in info.items() if key not in ("historyLength", "firstRunId")}
                for (ns, _), info in reversed(self.workflows.items())
                if ns == namespace
            ]
            return Reply(200, {"executions": executions})
        info = self.workflows.get((namespace, parts[5])) if len(parts) >= 6 else None
        if info is None:
            raise HttpError(
                404, "not_found", f"workflow not found for ID: {parts[5] if len(parts) > 5 else ''}"
            )
        status = info["status"].removeprefix(PREFIX)
        action = parts[6] if len(parts) == 7 else None
        if action is None and method == "GET":
            return Reply(
                200, {"executionConfig": {"workflowExecutionTimeout": "0s"}, "workflowExecutionInfo": info}
            )
        if action == "history" and method == "GET":
            return Reply(
                200, {"history": {"events": [self._close_event(info)]} if status in CLOSE_EVENTS else {}}
            )
        if action in ("cancel", "terminate") and method == "POST":
            if (body or {}).get("firstExecutionRunId") not in (None, info["firstRunId"]):
                raise HttpError(404, "not_found", "workflow execution not found")
            if action == "cancel" and status == "RUNNING" and self.on_cancel != "close":
                if self.on_cancel == "continue":
                    self.on_cancel = "close"
                    info["execution"] = {**info["execution"], "runId": str(uuid.uuid4())}
                return Reply(200, {})
            if status == "RUNNING":
                info.update(
                    status=PREFIX + ("CANCELED" if action == "cancel" else "TERMINATED"), closeTime=now_iso()
                )
            elif action == "terminate":
                raise HttpError(404, "not_found", "workflow execution already completed")
            return Reply(200, {})
        raise HttpError(404, "not_found", f"Method Not Found: {path}")

    @staticmethod
    def _close_event(info: dict[str, Any]) -> dict[str, Any]:
        event_type, key, attributes = CLOSE_EVENTS[info["status"].removeprefix(PREFIX)]
        return {"eventId": "6", "eventTime": info["closeTime"], "eventType": event_type, key: attributes}
