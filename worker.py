"""The iterloop worker: one process hosting the GraphRun interpreter and every activity.

`iterloop worker` runs it against the configured Temporal server; `iterloop run` starts one in the
background when it manages the local dev server itself. Shutdown on SIGINT/SIGTERM is graceful:
the worker stops polling and lets running activities finish (up to a grace period), and anything
cut short is retried by Temporal on the next worker.

Observability is switched on here, from settings (docs/observability.md): Prometheus metrics
(`ITERLOOP_METRICS_PORT`), OpenTelemetry traces through Temporal's tracing interceptor
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `ITERLOOP_TRACING=console`) and JSON logs
(`ITERLOOP_LOG_FORMAT=json`).

A configuration the worker cannot use (an unknown `ITERLOOP_TRACING`, a bad log level, model
settings or a price file that do not parse, an artifact bucket it cannot reach) stops it before it
connects, with one line
`iterloop: <what is wrong>` and exit code 2 (`run_worker` raises `UsageError`, `main` prints it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.llm.pricing import PriceFileError
from activities.llm.settings import LLMSettingsError
from runtime.command_errors import EXIT_USAGE, CommandError, UsageError
from runtime.connect import connect
from runtime.settings import Settings, SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from activities.artifact_stores import ArtifactStore
    from activities.notify import NotifyConfig

GRACEFUL_SHUTDOWN = timedelta(seconds=10)

#: Everything workflow code imports is passed through the sandbox: the pure data and semantics modules
#: shared with activities (one class identity for the pydantic models on both sides), the stateless
#: node kinds, and the interpreter itself (`workflows.graph_run`). The sandbox would otherwise import
#: graph_run.py afresh for every run it holds: its code objects and class, ~150 KB per parked run (about
#: half a parked run's memory, benchmarks/bench_scale.py) and a fresh compile per run start. Safe because
#: none of these modules does I/O or holds mutable module-level state, and what the sandbox's call
#: restrictions would catch in them (clocks, randomness, the environment, files) is refused by
#: tests/test_workflow_determinism.py instead; replaying recorded histories (tests/workflows/test_replay.py)
#: checks the rest.
PASSTHROUGH_MODULES = ("dsl", "workflows")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox configuration shared by the worker and the replayer."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES))


def notify_config(settings: Settings) -> NotifyConfig:
    from activities.notify import NotifyConfig

    return NotifyConfig(slack_bot_token=settings.slack_bot_token, slack_api_url=settings.slack_api_url,
                        webhook_secret=settings.webhook_secret, store_path=settings.notify_store)


def build_worker(client: Client, task_queue: str, *, offline: bool = False,
                 extra_workflows: Sequence[type] = (), artifact_dir: Path | None = None,
                 notify: NotifyConfig | None = None, interceptors: Sequence[Interceptor] = (),
                 identity: str | None = None, mcp_cache_ttl_seconds: float | None = None,
                 artifact_store: ArtifactStore | None = None, eager_activities: bool = True) -> Worker:
    """A worker with the interpreter workflow and all activities registered.

    ``extra_workflows`` lets benchmarks and tests host their own workflows next to GraphRun on
    the same task queue with exactly the same configuration. ``notify`` defaults to the
    environment's settings; ``interceptors`` add e.g. tracing (`tracing_interceptor`); ``identity``
    is how the server lists it among the task queue's pollers (default `PID@HOST`);
    ``mcp_cache_ttl_seconds`` how long MCP tool lists are kept (default: the environment's). Every activity's
    results, failures and heartbeats are redacted (`activities.redacting_interceptor`). Large outputs go
    to ``artifact_store``, else the local directory ``artifact_dir``, else the store the environment's
    settings choose (`open_artifact_store`; a bucket is checked here, before the worker polls).
    """
    from activities import artifacts, mcp
    from activities.delegate.activity import delegate
    from activities.llm.activity import configure, llm_turn
    from activities.notify import Notifier
    from activities.redacting_interceptor import RedactingInterceptor
    from activities.shell import shell_exec
    from activities.tools.registry import tool_call
    from workflows.graph_run import GraphRun

    configure(offline=offline)
    if artifact_store is None and artifact_dir is not None:
        artifact_store = artifacts.LocalArtifactStore(artifact_dir)
    if artifact_store is None:
        env_settings = Settings.from_env()
        artifact_store = open_artifact_store(env_settings, check=bool(env_settings.artifacts_url))
    artifacts.configure(artifact_store)
    mcp.configure(cache_ttl_seconds=Settings.from_env().mcp_cache_ttl_seconds if mcp_cache_ttl_seconds is None
                  else mcp_cache_ttl_seconds)
    configure_delegation(Settings.from_env(), offline=offline)
    notifier = Notifier(notify or notify_config(Settings.from_env()))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[GraphRun, *extra_workflows],
        activities=[llm_turn, shell_exec, tool_call, notifier.notify, mcp.mcp_call, mcp.mcp_check, delegate],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        # Eager activity execution: an activity a workflow task schedules comes back to this worker in
        # the server's answer to that task, skipping matching, when the server allows it (dynamic config
        # `system.enableActivityEagerExecution`, docs/runtime.md); `eager_activities=False` never asks.
        # At most 3 per workflow task (the SDK's default): reserving a whole fan-out's slots measured no
        # faster here, and would keep its branches on one worker of several.
        disable_eager_activity_execution=not eager_activities,
        # Redaction last, i.e. innermost: every other interceptor sees results and failures without secrets.
        interceptors=[*interceptors, RedactingInterceptor()],
        **({"identity": identity} if identity else {}),
    )


def open_artifact_store(settings: Settings, *, check: bool = True) -> ArtifactStore:
    """The one place a worker's artifact store is built from settings (the directory, or an S3 bucket);
    ``check``: fail now (`UsageError`, naming the setting) when it cannot be used, not at a run's
    first large output."""
    from activities.artifact_stores import ArtifactStoreSettings, open_store
    from activities.errors import ActivityError

    try:
        store = open_store(ArtifactStoreSettings(
            local_dir=settings.artifact_dir, url=settings.artifacts_url, endpoint=settings.artifacts_s3_endpoint,
            region=settings.artifacts_s3_region, addressing=settings.artifacts_s3_addressing))
        if check:
            store.check()
    except ActivityError as exc:
        raise UsageError(f"artifact store: {exc.message}") from None
    return store


def configure_delegation(settings: Settings, *, offline: bool = False) -> None:
    """Find the coding agents' CLIs once (a node that delegates to a missing one fails, saying why)."""
    from activities.delegate import activity as delegation
    from runtime.claude_code import ClaudeCodeNotFound, find_claude_binary
    from runtime.codex_cli import CodexNotFound, find_codex_binary

    problems: dict[str, str] = {}
    claude: Path | None = None
    codex: Path | None = None
    try:
        claude = find_claude_binary(settings)
    except ClaudeCodeNotFound as e:
        problems["claude_code"] = str(e)
    try:
        codex = find_codex_binary(settings)
    except CodexNotFound as e:
        problems["codex"] = str(e)
    delegation.configure(claude_bin=claude, codex_bin=codex, problems=problems, offline=offline)


def identity_for(settings: Settings) -> str:
    """`PID@HOST iterloop:DIGEST`: the digest of the worker's model settings (`runtime.worker_fingerprint`;
    no secret), so a command can tell whether this worker suits its run before relying on it."""
    import os
    import socket

    from runtime.worker_fingerprint import worker_fingerprint, worker_identity

    return worker_identity(os.getpid(), socket.gethostname(), worker_fingerprint(os.environ, offline=settings.offline))


# -- observability ---------------------------------------------------------------------------


def install_telemetry_runtime(settings: Settings) -> bool:
    """Make the Temporal runtime export Prometheus metrics and/or log through Python's logging.

    Prometheus (`ITERLOOP_METRICS_PORT`): `/metrics` serves the SDK's metrics and the `iterloop_*`
    run metrics the workflow records. JSON logs: the SDK core's own log lines are forwarded to
    the `temporalio.core` logger so they come out as JSON too. The runtime must be the default
    before the worker's client connects; returns False when neither is asked for.
    """
    if settings.metrics_port is None and settings.log_format != "json":
        return False
    metrics = None
    if settings.metrics_port is not None:
        metrics = PrometheusConfig(bind_address=f"{settings.metrics_host}:{settings.metrics_port}",
                                   durations_as_seconds=True)
    logging_config = LoggingConfig.default
    if settings.log_format == "json":
        logging_config = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                                       forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))
    # Replacing an earlier default is fine: clients connected before (`iterloop worker` checks the
    # server first) keep theirs, and the worker's client connects after this.
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=metrics, logging=logging_config)),
                        error_if_already_set=False)
    return True


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """The OpenTelemetry tracer provider for ``settings.tracing`` (None when off)."""
    if settings.tracing == "off":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter: SpanExporter
    if settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Like the exporter's own reading of OTEL_EXPORTER_OTLP_ENDPOINT: a base URL for all signals.
        base = settings.otlp_endpoint or "http://localhost:4318"
        exporter = OTLPSpanExporter(endpoint=f"{base.rstrip('/')}/v1/traces")
    else:
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def tracing_interceptor(provider: TracerProvider) -> Interceptor:
    """Temporal's tracing interceptor: spans for workflows, activities, signals and updates; the
    activity span is current while an activity runs (`activities.telemetry` adds to it)."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(provider.get_tracer("iterloop"))


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and Temporal's workflow/activity info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("temporal_workflow", "temporal_activity"):  # set by workflow.logger / activity.logger
            if isinstance(getattr(record, key, None), dict):
                entry[key] = getattr(record, key)
        if record.exc_info or record.exc_text:  # exc_text: set (redacted) by `RedactingLogFilter`
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger, text or JSON; its filter redacts secrets from every line
    (an activity failure is logged with its message and traceback)."""
    from activities.redaction import RedactingLogFilter

    handler = logging.StreamHandler()
    handler.addFilter(RedactingLogFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    try:
        logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    except (ValueError, TypeError):
        raise SettingsError(f"ITERLOOP_LOG_LEVEL={settings.log_level!r} is not a log level; choose DEBUG, INFO, "
                            "WARNING, ERROR or CRITICAL") from None


#: What a worker's configuration can be wrong with: its settings, the model settings, the price file.
CONFIGURATION_ERRORS = (SettingsError, LLMSettingsError, PriceFileError)


def check_configuration(settings: Settings) -> ArtifactStore:
    """Logging, the model layer and the artifact store, set up before anything connects: `UsageError`
    with the reason. Returns the artifact store, checked (a missing bucket or refused credentials stop
    the worker here, not at a run's first large output)."""
    from activities.llm.activity import configure

    try:
        configure_logging(settings)
        configure(offline=settings.offline)
    except CONFIGURATION_ERRORS as exc:
        raise UsageError(str(exc)) from None
    return open_artifact_store(settings)


async def run_worker(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM; a configuration it cannot use is a `UsageError` before it connects."""
    store = check_configuration(settings)
    install_telemetry_runtime(settings)
    provider = tracer_provider(settings)
    client = await connect(settings)
    worker = build_worker(client, settings.task_queue, offline=settings.offline, artifact_store=store,
                          notify=notify_config(settings),
                          interceptors=[tracing_interceptor(provider)] if provider else [],
                          identity=identity_for(settings), mcp_cache_ttl_seconds=settings.mcp_cache_ttl_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            if ready is not None:
                ready.set()
            await stop.wait()
    finally:
        from activities.llm.activity import close_clients

        await close_clients()  # the pooled provider HTTP clients
        from activities.mcp import close_pool

        await close_pool()  # stop the MCP servers this worker started
        if provider is not None:
            provider.shutdown()  # flush the spans still queued


def main() -> None:
    """`python -m worker` (how `iterloop run` starts a background worker): errors in one line, exit 2."""
    try:
        asyncio.run(run_worker(Settings.from_env()))
    except (SettingsError, CommandError) as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code if isinstance(exc, CommandError) else EXIT_USAGE) from None


if __name__ == "__main__":
    main()
