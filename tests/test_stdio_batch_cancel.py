"""A 2025-03-26 batch whose member is cancelled by the client: the batch is still answered.

The SDK sends no answer for a cancelled request, so a batch that waited for every member's answer held
back the answers of all the others forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from .conftest import IGNORES_TERM, submit, wait_for_process_group
from .mcp_wire import initialize
from .test_stdio import RawPipe

pytestmark = pytest.mark.slow
PROJECT = "batch-cancel"


def call(request_id: int, tool: str, job_id: str) -> dict[str, object]:
    arguments = {"project_reference": PROJECT, "job_id": job_id}
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def test_a_cancelled_member_does_not_hold_back_the_batch(home: Path) -> None:
    # Ignores SIGTERM, so the cancel waits out the grace period: long enough to be cancelled first.
    slow = submit(home, PROJECT, sys.executable, "-c", IGNORES_TERM, options=("--grace-period", "20"))
    pgid = wait_for_process_group(home, slow["id"])
    pipe = RawPipe(home)
    try:
        pipe.send(initialize(version="2025-03-26"))
        assert pipe.receive()["result"]["protocolVersion"] == "2025-03-26"
        pipe.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        pipe.send([call(10, "cancel_job", slow["id"]), call(11, "get_job", slow["id"])])
        cancelled = {"requestId": 10, "reason": "the user gave up"}
        pipe.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancelled})
        answers = pipe.receive(timeout=15)  # before the fix: never
    finally:
        pipe.process.kill()
        pipe.process.wait()
        with contextlib.suppress(ProcessLookupError):  # the cancel may never have reached it
            os.killpg(pgid, signal.SIGKILL)
    assert isinstance(answers, list), answers
    by_id = {answer["id"]: answer for answer in answers}
    assert 11 in by_id, "the member that was not cancelled is answered"
    assert json.loads(by_id[11]["result"]["content"][0]["text"])["id"] == slow["id"]
    assert set(by_id) <= {10, 11}
