"""The SDK's OpenTelemetry spans: opened only when a tracer provider is configured before the server is
built (by code, OTEL_PYTHON_TRACER_PROVIDER or opentelemetry-instrument)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cancel_job_mcp.app import AppOptions, build_mcp_server
from cancel_job_mcp.config import load_config

from .conftest import client

ARGUMENTS = {"project_reference": "demo", "job_id": "job_missing"}

# A fresh interpreter: a tracer provider, once set, is process-wide.
TRACED_CALL = """
import json, sys
from pathlib import Path

import anyio
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cancel_job_mcp.app import AppOptions, build_mcp_server
from cancel_job_mcp.config import load_config

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
home = Path(sys.argv[1])
server, _ = build_mcp_server(AppOptions(home=home, config=load_config(None, home)))


async def call() -> None:
    async with Client(server, mode="legacy", cache=None) as session:
        await session.call_tool("cancel_job", json.loads(sys.argv[2]))


anyio.run(call)
spans = [
    {
        "name": span.name,
        "tool": span.attributes.get("gen_ai.tool.name"),
        "error": span.attributes.get("error.type"),
    }
    for span in exporter.get_finished_spans()
]
print(json.dumps(spans))
"""


@pytest.mark.slow
def test_with_a_tracer_provider_every_tool_call_has_its_span(home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRACED_CALL, str(home), json.dumps(ARGUMENTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout)
    assert {"name": "tools/call cancel_job", "tool": "cancel_job", "error": "tool_error"} in spans
    assert any(span["name"] == "initialize" for span in spans)


@pytest.mark.anyio
async def test_without_one_no_span_is_opened(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mcp.server._otel as sdk_tracing
    from opentelemetry import trace

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    opened: list[str] = []
    real_span = sdk_tracing.otel_span

    def recording_span(name: str, **options: Any) -> Any:
        opened.append(name)
        return real_span(name, **options)

    monkeypatch.setattr(sdk_tracing, "otel_span", recording_span)
    server, _ = build_mcp_server(AppOptions(home=home, config=load_config(None, home)))
    async with client(server, "legacy") as session:
        result = await session.call_tool("cancel_job", ARGUMENTS)
    assert result.content[0].text.startswith("not_found: ")
    assert opened == []
