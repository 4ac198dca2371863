"""The shared part of the fake providers: a real HTTP server on 127.0.0.1, faults, a request log.

A provider subclass implements `authorized`, `error_body`, `rate_limit_headers`, `strip_required` and
`route`. Tests tell a fake what to answer next with `fail(fault, times, method)` (queued, consumed in
order by matching requests) or `fail_always(fault, method)`, and read back what it received in
`requests`.

The fakes speak HTTP/1.1 and keep connections alive, as real providers do.

Transport faults (added for the fault battery): `RESET` closes the connection with a TCP reset instead
of answering, `TRUNCATED` announces the full Content-Length and sends half the body, `NOT_JSON` answers
200 with an HTML page, `SLOW` answers normally after `slow_seconds`. With `echo_headers` set, every
error body (and the `NOT_JSON` page) repeats the request's headers, as some misbehaving APIs do.

Hostile answers (issue 11): `GZIP_BOMB` (a ~400 KB gzip body that inflates to 400 MB), `HUGE_BODY`
(200 MB, chunked), `TRICKLE` (the right answer, one byte a second), `BAD_GZIP`, `NAN` (a NaN in the
job), `DEEP` (JSON nested 100,000 levels), `TS_HUGE`/`TS_NEGATIVE`/`TS_9999` (absurd timestamps),
`ECHO_ERROR` (a 400 whose message holds the token in pieces and encodings) and `ECHO_FIELDS` (a 200
whose job fields hold them). `wait_header`, when set, is the value of every rate-limit header of a
429 or 503 (`Retry-After`, `ratelimit-reset`, `X-RateLimit-Reset`), whatever it is.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import socket
import struct
import sys
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

HANG_LIMIT_SECONDS = 10.0
BOMB_BYTES = 400 * 1024 * 1024
HUGE_BYTES = 200 * 1024 * 1024


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
    GZIP_BOMB = "gzip_bomb"
    HUGE_BODY = "huge_body"
    TRICKLE = "trickle"
    BAD_GZIP = "bad_gzip"
    NAN = "nan"
    DEEP = "deep"
    TS_HUGE = "ts_1e20"
    TS_NEGATIVE = "ts_-1e15"
    TS_9999 = "ts_9999"
    ECHO_ERROR = "echo_error"
    ECHO_FIELDS = "echo_fields"
    LONE_SURROGATE = "lone_surrogate"  # legal JSON ("\\ud800" in the job's fields), not Unicode text


# What an absurd-timestamp fault writes into every timestamp of the answer.
_ABSURD_TIMES: dict[Fault, Any] = {
    Fault.TS_HUGE: 1e20,
    Fault.TS_NEGATIVE: -1e15,
    Fault.TS_9999: "9999-12-31T23:59:59-05:00",
}
_TIME_KEYS = ("created_at", "started_at", "completed_at", "updated_at", "start_time", "end_time", "startTime",
             "closeTime")  # fmt: skip


def leaked_forms(token: str) -> list[str]:
    """The token as a careless provider may write it back: pieces, encodings and case variants."""
    raw = token.encode()
    half = len(token) // 2
    return [
        token[:12],
        token[half:],
        token[3 : 3 + half],
        token.upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"Bearer " + raw).decode(),
        base64.b64encode(b"key=" + raw).decode(),  # the token at another byte offset
        quote(token, safe=""),
        quote(f"Bearer {token}", safe=""),
    ]


@cache
def gzip_bomb() -> bytes:
    """A gzip body of about 400 KB that inflates to BOMB_BYTES of a JSON-looking text (made once).

    Each 1 MiB block of spaces is compressed once after a full flush (which resets the compressor), so
    its compressed form can be repeated; only the CRC is computed over the whole text.
    """
    block = b" " * (1024 * 1024)
    count = BOMB_BYTES // len(block)
    head, tail = b'{"data": "', b'"}'
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + count * len(block) + len(tail)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size % 2**32)
    return header + start + repeated * count + end + trailer


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
    peer: int = 0  # the client's port: requests with the same peer came over one kept-alive connection


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
        self.wait_header: str | None = None
        self.slow_seconds = 2.0
        self.echo_headers = False
        self._rules: deque[_Rule] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._local = threading.local()
        self._server = _Server(("127.0.0.1", 0), _Handler)
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

    def echo_into(self, job: dict[str, Any], text: str) -> dict[str, Any]:
        """The job with `text` in fields that reach the record (its name, its failure reason...)."""
        raise NotImplementedError

    def is_job(self, value: dict[str, Any]) -> bool:
        """True for a job object of this provider's answers."""
        return "id" in value

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
        if fault in (Fault.RESET, Fault.HUGE_BODY, Fault.TRICKLE):
            return fault  # the handler streams these itself
        if fault is Fault.SLOW:
            self._release.wait(self.slow_seconds)
        if fault is Fault.GZIP_BOMB:
            return 200, gzip_bomb(), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if fault is Fault.BAD_GZIP:
            payload = gzip.compress(b'{"id": "x"}')
            broken = payload[:10] + bytes(byte ^ 0x5A for byte in payload[10:])
            return 200, broken, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if fault is Fault.DEEP:
            return 200, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"}
        if fault is Fault.ECHO_ERROR:
            self._local.headers = recorded.headers
            text = f"Invalid key: {' / '.join(leaked_forms(self.token))}"
            return self._error(400, "bad_request", text, recorded.path)
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

    def trickled(self, recorded: Recorded) -> tuple[int, bytes, dict[str, str]]:
        """The answer a TRICKLE fault sends one byte a second."""
        return self._answer(recorded, None)

    def _spoiled(self, body: Any, fault: Fault) -> Any:
        """The reply body with a hostile fault's damage done to every job in it."""
        if isinstance(body, list):
            return [self._spoiled(item, fault) for item in body]
        if not isinstance(body, dict):
            return body
        spoiled = {key: self._spoiled(value, fault) for key, value in body.items()}
        if not self.is_job(body):
            return spoiled
        if fault is Fault.NAN:
            spoiled["nan_field"] = math.nan
            spoiled["timeout_seconds"] = math.nan
        elif fault in _ABSURD_TIMES:
            for key in _TIME_KEYS:
                if key in spoiled:
                    spoiled[key] = _ABSURD_TIMES[fault]
        elif fault is Fault.ECHO_FIELDS:
            spoiled = self.echo_into(spoiled, " ".join(leaked_forms(self.token)))
        elif fault is Fault.LONE_SURROGATE:
            spoiled = self.echo_into(spoiled, "caf\ud800")
        return spoiled

    def _answer(self, recorded: Recorded, fault: Fault | None) -> tuple[int, bytes, dict[str, str]]:
        self._local.headers = recorded.headers
        if not self.authorized(recorded.headers):
            return self._error(401, "unauthorized", "Missing or invalid API key.", recorded.path)
        if fault is not None and fault in _FAULT_CODES:
            status = int(fault.value)
            headers = self.rate_limit_headers() if status == 429 else {}
            if status == 503:
                headers = {"Retry-After": self.retry_after}
            if status in (429, 503) and self.wait_header is not None:
                names = ("Retry-After", "ratelimit-reset", "X-RateLimit-Reset")
                headers = dict.fromkeys(names, self.wait_header)
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
        if fault is not None:
            body = self._spoiled(body, fault)
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


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a kept-alive connection (or gives up on a hostile answer) is expected.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeProvider/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers
    # http.server writes the headers and the body separately: with Nagle on, a kept-alive client's
    # delayed ACK held each answer's body back ~40 ms.
    disable_nagle_algorithm = True

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
            peer=self.client_address[1],
        )
        answer = fake._dispatch(recorded)
        try:
            if answer is None:
                self.close_connection = True
            elif answer is Fault.RESET:
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
            elif answer is Fault.HUGE_BODY:
                self._send_huge()
            elif answer is Fault.TRICKLE:
                self._send_trickle(fake, fake.trickled(recorded))
            else:
                assert not isinstance(answer, Fault)
                self._send(*answer)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        elif int(headers["Content-Length"]) != len(payload):
            self.close_connection = True  # a truncated body: the connection ends after it
        self.end_headers()
        self.wfile.write(payload)

    def _send_huge(self) -> None:
        """200 MB of a JSON string, chunked, until it is all sent or the client goes away."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"a" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        self.wfile.write(b'1\r\n"\r\n')
        for _ in range(HUGE_BYTES // len(chunk)):
            self.wfile.write(frame)
        self.wfile.write(b'1\r\n"\r\n0\r\n\r\n')

    def _send_trickle(self, fake: FakeProvider, answer: tuple[int, bytes, dict[str, str]]) -> None:
        """The whole answer, one byte a second (until the fake closes)."""
        self.close_connection = True
        status, payload, headers = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.flush()
        for index in range(len(payload)):
            self.wfile.write(payload[index : index + 1])
            self.wfile.flush()
            if fake._release.wait(1.0):
                return

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
    do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None
