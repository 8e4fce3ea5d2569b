"""Traces, metrics and logs of the worker: GenAI attributes on spans, Temporal's tracing
interceptor on a real run, Prometheus `/metrics` of a real `python -m worker`, JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from runs import finish, free_port, poll, start, stop_process  # noqa: E402
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.telemetry import record_llm_usage  # noqa: E402
from runtime.settings import Settings, SettingsError  # noqa: E402
from worker import JsonLogFormatter, build_worker, tracer_provider, tracing_interceptor  # noqa: E402
from workflows.contract.messages import Usage  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

ONE_AGENT = """
agent writer:
  model: "scripted"
workflow single:
  entry: writer
  writer -> done
"""


def in_memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_record_llm_usage_puts_gen_ai_attributes_on_the_current_span() -> None:
    provider, exporter = in_memory_tracing()
    usage = Usage(model="claude-sonnet-4-5-20250929", input_tokens=1200, output_tokens=340, cached_tokens=1000,
                  cache_write_tokens=100, reasoning_tokens=50, cost_usd=0.0123, calls=1)

    with provider.get_tracer("test").start_as_current_span("RunActivity:iterloop.llm_turn"):
        record_llm_usage(usage, node_id="planner", provider="anthropic", model="claude-sonnet-4-5")

    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.system"] == "anthropic" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert attrs["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (1200, 340)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert attrs["iterloop.llm.cost_usd"] == 0.0123 and attrs["iterloop.llm.cached_tokens"] == 1000
    assert attrs["iterloop.node.id"] == "planner"


def test_record_llm_usage_without_a_recording_span_does_nothing() -> None:
    record_llm_usage(Usage(input_tokens=1), node_id="n", provider="openai", model="gpt-5")


async def test_traced_worker_records_workflow_and_activity_spans(temporal_env: WorkflowEnvironment,
                                                                 task_queue: str) -> None:
    provider, exporter = in_memory_tracing()
    # On the client, the interceptor also reaches the worker built from it (and the start call).
    client = Client(**{**temporal_env.client.config(), "interceptors": [tracing_interceptor(provider)]})

    async with build_worker(client, task_queue, offline=True):
        handle = await start(client, task_queue, ONE_AGENT, script={"writer": {"text": "hello"}})
        result = await finish(handle)

    assert result.status == "finished"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    for name in ("StartWorkflow:iterloop.GraphRun", "RunWorkflow:iterloop.GraphRun",
                 "StartActivity:iterloop.llm_turn", "RunActivity:iterloop.llm_turn"):
        assert name in spans, sorted(spans)
    run_activity = spans["RunActivity:iterloop.llm_turn"]
    assert run_activity.context.trace_id == spans["StartWorkflow:iterloop.GraphRun"].context.trace_id
    assert (run_activity.attributes or {})["temporalWorkflowID"] == handle.id


def test_tracing_settings_choose_the_exporter() -> None:
    assert tracer_provider(Settings.from_env({})) is None
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}).tracing == "otlp"
    provider = tracer_provider(Settings.from_env({"ITERLOOP_TRACING": "console", "OTEL_SERVICE_NAME": "w1"}))
    assert provider is not None and provider.resource.attributes["service.name"] == "w1"
    provider.shutdown()
    with pytest.raises(SettingsError, match="ITERLOOP_TRACING"):
        Settings.from_env({"ITERLOOP_TRACING": "zipkin"})
    with pytest.raises(SettingsError, match="ITERLOOP_METRICS_PORT"):
        Settings.from_env({"ITERLOOP_METRICS_PORT": "http"})


def test_a_log_level_logging_does_not_know_is_a_settings_error() -> None:
    from runtime.command_errors import UsageError
    from worker import check_configuration

    with pytest.raises(SettingsError, match="ITERLOOP_LOG_LEVEL='LOUD' is not a log level"):
        Settings.from_env({"ITERLOOP_LOG_LEVEL": "loud"})
    assert Settings.from_env({"ITERLOOP_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with pytest.raises(UsageError, match="ITERLOOP_LOG_LEVEL='LOUD' is not a log level"):
            check_configuration(Settings(log_level="LOUD"))  # settings built in code, not read from the environment
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_json_log_lines_carry_temporals_activity_info() -> None:
    record = logging.LogRecord("temporalio.activity", logging.WARNING, __file__, 1, "notify failed: %s", ("x",),
                               None)
    record.temporal_activity = {"activity_type": "iterloop.notify", "attempt": 2}

    line = json.loads(JsonLogFormatter().format(record))

    assert line["level"] == "WARNING" and line["message"] == "notify failed: x"
    assert line["temporal_activity"] == {"activity_type": "iterloop.notify", "attempt": 2}
    assert line["time"].endswith("Z")


async def test_worker_process_serves_prometheus_metrics_and_json_logs(temporal_env: WorkflowEnvironment,
                                                                      tmp_path: Path) -> None:
    task_queue = f"tq-metrics-{uuid.uuid4().hex[:8]}"
    port = free_port()
    log_file = tmp_path / "worker.log"
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": "default", "ITERLOOP_TASK_QUEUE": task_queue, "ITERLOOP_OFFLINE": "1",
           "ITERLOOP_HOME": str(tmp_path), "ITERLOOP_METRICS_PORT": str(port), "ITERLOOP_LOG_FORMAT": "json"}
    with log_file.open("wb") as log:
        # `iterloop worker`, as the container runs it.
        proc = subprocess.Popen([str(Path(sys.executable).parent / "iterloop"), "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        handle = await start(temporal_env.client, task_queue, ONE_AGENT, script={"writer": {"text": "hi"}})
        result = await finish(handle)

        async def scrape() -> str | None:
            async with httpx.AsyncClient() as http:
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
                except httpx.TransportError:
                    return None
            return text if "iterloop_runs_ended" in text else None

        metrics = await poll(scrape, "iterloop_runs_ended on the worker's /metrics", timeout=30, interval=0.3)
    finally:
        exit_code = await stop_process(proc)

    assert result.status == "finished" and exit_code == 0
    samples = [line for line in metrics.splitlines() if not line.startswith("#")]
    ended = [line for line in samples if line.startswith("iterloop_runs_ended")
             and 'workflow="single"' in line and 'status="finished"' in line and f'task_queue="{task_queue}"' in line]
    assert ended and float(ended[0].rsplit(" ", 1)[1]) == 1
    assert any(line.startswith("iterloop_runs_started") and 'workflow="single"' in line for line in samples)
    assert "temporal_activity_execution_latency" in metrics  # the SDK's own
    assert "temporal_workflow_completed" in metrics
    # The CLI's own banner goes to stderr as text; every log record is one JSON object.
    lines = [line for line in log_file.read_text().splitlines() if line.strip() and not line.startswith("iterloop:")]
    assert lines, "the worker logged nothing"
    for line in lines:
        assert isinstance(json.loads(line), dict), line
