"""The shared part of the fake providers: a real HTTP server on 127.0.0.1, faults, a request log.

A provider subclass implements `authorized`, `error_body`, `rate_limit_headers`, `strip_required` and
`route`. Tests tell a fake what to answer next with `fail(fault, times, method)` (queued, consumed in
order by matching requests) or `fail_always(fault, method)`, and read back what it received in
`requests`.

Transport faults (added for the fault battery): `RESET` closes the connection with a TCP reset instead
of answering, `TRUNCATED` announces the full Content-Length and sends half the body, `NOT_JSON` answers
200 with an HTML page, `SLOW` answers normally after `slow_seconds`. With `echo_headers` set, every
error body (and the `NOT_JSON` page) repeats the request's headers, as some misbehaving APIs do.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HANG_LIMIT_SECONDS = 10.0


class Fault(StrEnum):
    BAD_REQUEST = "400"
    UNAUTHORIZED = "401"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    CONFLICT = "409"
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    HANG = "hang"
    MALFORMED_JSON = "malformed_json"
    MISSING_FIELDS = "missing_fields"
    RESET = "reset"
    TRUNCATED = "truncated"
    NOT_JSON = "not_json"
    SLOW = "slow"


_FAULT_CODES = {
    Fault.BAD_REQUEST: "bad_request",
    Fault.UNAUTHORIZED: "unauthorized",
    Fault.FORBIDDEN: "forbidden",
    Fault.NOT_FOUND: "not_found",
    Fault.CONFLICT: "conflict",
    Fault.RATE_LIMITED: "rate_limited",
    Fault.SERVER_ERROR: "internal_error",
    Fault.UNAVAILABLE: "service_unavailable",
}


class HttpError(Exception):
    """Raised by a route to answer with the provider's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as sent, still percent-encoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Rule:
    fault: Fault
    method: str | None
    remaining: int | None  # None: forever


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeProvider:
    """Base class: subclasses define the provider's routes, auth and error format."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.retry_after = "0"
        self.slow_seconds = 2.0
        self.echo_headers = False
        self._rules: deque[_Rule] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.fake = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name=f"fake-{self.port}", daemon=True
        )
        self._thread.start()

    # --- control ---------------------------------------------------------------------------------

    def fail(self, fault: Fault, times: int = 1, method: str | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(fault, method, times))

    def fail_always(self, fault: Fault, method: str | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(fault, method, None))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def requests_to(self, method: str, suffix: str = "") -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == method and r.path.endswith(suffix)]

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- provider hooks ----------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def error_body(self, status: int, code: str, message: str, path: str) -> Any:
        raise NotImplementedError

    def rate_limit_headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after}

    def strip_required(self, body: Any) -> Any:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        raise NotImplementedError

    # --- dispatch ------------------------------------------------------------------------------------

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            for rule in list(self._rules):
                if rule.method is not None and rule.method != method:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule.fault
        return None

    def _dispatch(self, recorded: Recorded) -> tuple[int, bytes, dict[str, str]] | Fault | None:
        self.requests.append(recorded)
        fault = self._next_fault(recorded.method)
        if fault is Fault.HANG:
            self._release.wait(HANG_LIMIT_SECONDS)
            return None
        if fault is Fault.RESET:
            return Fault.RESET
        if fault is Fault.SLOW:
            self._release.wait(self.slow_seconds)
        answer = self._answer(recorded, fault)
        if fault is Fault.NOT_JSON:
            page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
            if self.echo_headers:
                page += f"<pre>{json.dumps(recorded.headers)}</pre>"
            return 200, page.encode(), {"Content-Type": "text/html"}
        if fault is Fault.TRUNCATED:
            status, payload, headers = answer
            return status, payload[: len(payload) // 2], {**headers, "Content-Length": str(len(payload))}
        return answer

    def _answer(self, recorded: Recorded, fault: Fault | None) -> tuple[int, bytes, dict[str, str]]:
        self._local.headers = recorded.headers
        if not self.authorized(recorded.headers):
            return self._error(401, "unauthorized", "Missing or invalid API key.", recorded.path)
        if fault is not None and fault in _FAULT_CODES:
            status = int(fault.value)
            headers = self.rate_limit_headers() if status == 429 else {}
            if status == 503:
                headers = {"Retry-After": self.retry_after}
            return self._error(status, _FAULT_CODES[fault], f"Injected {status}.", recorded.path, headers)
        try:
            parsed = json.loads(recorded.body) if recorded.body else None
        except ValueError:
            return self._error(400, "bad_request", "Body is not JSON.", recorded.path)
        try:
            reply = self.route(recorded.method, recorded.path, recorded.query, parsed)
        except HttpError as error:
            return self._error(error.status, error.code, error.message, recorded.path, error.headers)
        if fault is Fault.MALFORMED_JSON:
            return reply.status, b'{"id": "truncated', {"Content-Type": "application/json", **reply.headers}
        body = self.strip_required(reply.body) if fault is Fault.MISSING_FIELDS else reply.body
        return reply.status, json.dumps(body).encode(), {"Content-Type": "application/json", **reply.headers}

    def _error(
        self, status: int, code: str, message: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        echoed = getattr(self._local, "headers", None) if self.echo_headers else None
        if echoed is not None:
            message = f"{message} Request headers: {json.dumps(echoed)}"
        body_value = self.error_body(status, code, message, path)
        if echoed is not None and isinstance(body_value, dict):
            body_value = {**body_value, "request_headers": echoed}
        body = json.dumps(body_value).encode()
        return status, body, {"Content-Type": "application/json", **(headers or {})}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeProvider/1.0"

    def _serve(self) -> None:
        fake: FakeProvider = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        recorded = Recorded(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        answer = fake._dispatch(recorded)
        if answer is None:
            self.close_connection = True
            return
        if answer is Fault.RESET:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        assert not isinstance(answer, Fault)
        status, payload, headers = answer
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(payload)))
            else:
                self.close_connection = True  # a truncated body: the connection ends after it
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
    do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None
