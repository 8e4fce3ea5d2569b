"""Configuration read once, at the edge (CLI, worker, API), and passed down as one typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from workflows.contract import vocabulary
from workflows.contract.env_refs import truthy  # the one reading of on/off values, shared with the workers

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_TASK_QUEUE = "iterloop"
TEMPORAL_CLI_VERSION = "1.5.1"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class SettingsError(ValueError):
    """An environment variable holds a value iterloop cannot use; the message names it.

    The commands report it as one line, `iterloop: <message>`, and exit 2 (cli.py, runtime
    `command_settings`, `iterloop api`, worker.py)."""


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}={raw!r} is not a TCP port; expected a number from 1 to 65535")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, *, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{name}={raw!r} is not a number of seconds; expected 0 or more (0 turns it off)")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], *, default: str) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(allowed)}")
    return raw


def _artifacts_url(env: Mapping[str, str], name: str) -> str:
    """Empty (the local directory) or `s3://BUCKET[/PREFIX]`; the worker checks the bucket itself."""
    raw = (env.get(name) or "").strip()
    if raw and (not raw.startswith("s3://") or not raw[len("s3://"):].split("/", 1)[0]):
        raise SettingsError(f"{name}={raw!r} is not an S3 location; expected s3://BUCKET or s3://BUCKET/PREFIX "
                            "(leave it empty to keep artifacts in ITERLOOP_ARTIFACT_DIR)")
    return raw


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str], name: str) -> str:
    raw = (env.get(name) or "").strip().upper()
    if not raw:
        return "INFO"
    if raw not in LOG_LEVELS:
        raise SettingsError(f"{name}={raw!r} is not a log level; choose one of {', '.join(LOG_LEVELS)}")
    return raw


NOTIFY_EVENTS = vocabulary.NOTIFY_EVENTS


def _words(raw: str | None) -> tuple[str, ...]:
    return tuple(w for w in (raw or "").replace(",", " ").split() if w)


def _events(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    events = _words(env.get(name))
    unknown = [e for e in events if e not in NOTIFY_EVENTS]
    if unknown:
        raise SettingsError(f"{name} names unknown event(s) {', '.join(unknown)}; choose from {', '.join(NOTIFY_EVENTS)}")
    return events


@dataclass(frozen=True)
class Settings:
    """Where Temporal is and how iterloop uses it.

    ``address_configured`` is False when nobody said where the server is: then `iterloop run`
    starts (or reuses) the local dev server instead of failing.
    """

    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    address_configured: bool = False
    home: Path = field(default_factory=lambda: Path(".iterloop"))
    temporal_bin: str | None = None
    claude_bin: str | None = None  # ITERLOOP_CLAUDE_BIN: the Claude Code CLI (runtime/claude_code.py)
    codex_bin: str | None = None  # ITERLOOP_CODEX_BIN: the Codex CLI (runtime/codex_cli.py)
    offline: bool = False
    ui_port: int = 8233
    artifact_dir_override: Path | None = None
    # -- an S3-compatible artifact store instead of the directory (worker side; docs/deploy.md) ------
    artifacts_url: str = ""  # ITERLOOP_ARTIFACTS_URL: s3://bucket/prefix; empty = the directory above
    artifacts_s3_endpoint: str = ""  # ITERLOOP_ARTIFACTS_S3_ENDPOINT: an S3-compatible server; empty = AWS
    artifacts_s3_region: str = ""  # ITERLOOP_ARTIFACTS_S3_REGION: empty = AWS_REGION, else us-east-1
    artifacts_s3_addressing: str = "auto"  # ITERLOOP_ARTIFACTS_S3_ADDRESSING: auto | path | virtual
    mcp_cache_ttl_seconds: float = 3600.0  # ITERLOOP_MCP_CACHE_TTL_SECONDS: how long MCP tool lists are kept; 0: never
    # -- notifications (worker side; see docs/notifications.md) ------------------------------
    slack_bot_token: str = field(default="", repr=False)  # xoxb-…; none: Slack deliveries fail, saying so
    slack_api_url: str = DEFAULT_SLACK_API_URL  # tests point it at a local fake of Slack's Web API
    webhook_secret: str = field(default="", repr=False)  # X-Iterloop-Signature key; empty = unsigned
    notify_store_override: Path | None = None
    # -- observability (see docs/observability.md) -------------------------------------------
    metrics_port: int | None = None  # serve Prometheus /metrics from the worker on this port
    metrics_host: str = "127.0.0.1"
    tracing: str = "off"  # off | otlp | console
    otlp_endpoint: str = ""  # OTEL_EXPORTER_OTLP_ENDPOINT (the exporter reads its other OTEL_* vars)
    service_name: str = "iterloop-worker"
    log_format: str = "text"  # text | json
    log_level: str = "INFO"
    # -- where runs started from here report (client side; docs/notifications.md) -------------
    notify_slack_channel: str = ""  # ITERLOOP_NOTIFY_SLACK_CHANNEL: every run posts its gates there
    notify_webhooks: tuple[str, ...] = ()  # ITERLOOP_NOTIFY_WEBHOOKS: space- or comma-separated URLs
    notify_events: tuple[str, ...] = ()  # ITERLOOP_NOTIFY_EVENTS: a subset of the events; empty = all
    ui_url: str = ""  # ITERLOOP_TEMPORAL_UI_URL: the Web UI's address for links in notifications
    # ITERLOOP_MCP_AUTOLOAD=0/false: runs ignore the project's `.mcp.json` (client side; docs/language.md §3.6)
    mcp_autoload: bool = True
    # ITERLOOP_LOCAL_TOOLS=0/false: runs started here run every builtin tool call as an ordinary
    # activity, none as a local one (client side; docs/runtime.md, "What costs a server round trip")
    local_tools: bool = True

    @property
    def artifact_dir(self) -> Path:
        """Where workers store large node outputs (shared by all workers of a deployment)."""
        return self.artifact_dir_override or (self.home / "artifacts").resolve()

    @property
    def notify_store(self) -> Path:
        """Where workers remember delivered notifications, so a retried activity does not post twice
        (put it on the volume all workers share, next to the artifacts)."""
        return self.notify_store_override or (self.home / "notify.sqlite3").resolve()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        address = e.get("TEMPORAL_ADDRESS", "")
        return cls(
            address=address or DEFAULT_ADDRESS,
            namespace=e.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=e.get("ITERLOOP_TASK_QUEUE") or e.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
            address_configured=bool(address),
            home=Path(e.get("ITERLOOP_HOME") or ".iterloop"),
            temporal_bin=e.get("ITERLOOP_TEMPORAL_BIN") or None,
            claude_bin=e.get("ITERLOOP_CLAUDE_BIN") or None,
            codex_bin=e.get("ITERLOOP_CODEX_BIN") or None,
            offline=truthy(e.get("ITERLOOP_OFFLINE")),
            ui_port=_port(e, "ITERLOOP_UI_PORT") or 8233,
            artifact_dir_override=Path(e["ITERLOOP_ARTIFACT_DIR"]) if e.get("ITERLOOP_ARTIFACT_DIR") else None,
            artifacts_url=_artifacts_url(e, "ITERLOOP_ARTIFACTS_URL"),
            artifacts_s3_endpoint=(e.get("ITERLOOP_ARTIFACTS_S3_ENDPOINT") or "").strip(),
            artifacts_s3_region=(e.get("ITERLOOP_ARTIFACTS_S3_REGION") or "").strip(),
            artifacts_s3_addressing=_choice(e, "ITERLOOP_ARTIFACTS_S3_ADDRESSING", ("auto", "path", "virtual"),
                                            default="auto"),
            mcp_cache_ttl_seconds=_seconds(e, "ITERLOOP_MCP_CACHE_TTL_SECONDS", default=3600.0),
            # The API reads Slack's usual names; the worker takes those too, or its own.
            slack_bot_token=e.get("ITERLOOP_SLACK_BOT_TOKEN") or e.get("SLACK_BOT_TOKEN", ""),
            slack_api_url=e.get("ITERLOOP_SLACK_API_URL") or e.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
            webhook_secret=e.get("ITERLOOP_WEBHOOK_SECRET", ""),
            notify_store_override=Path(e["ITERLOOP_NOTIFY_STORE"]) if e.get("ITERLOOP_NOTIFY_STORE") else None,
            metrics_port=_port(e, "ITERLOOP_METRICS_PORT"),
            metrics_host=e.get("ITERLOOP_METRICS_HOST") or "127.0.0.1",
            tracing=_choice(e, "ITERLOOP_TRACING", ("off", "otlp", "console"),
                            default="otlp" if e.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "off"),
            otlp_endpoint=e.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            service_name=e.get("OTEL_SERVICE_NAME") or "iterloop-worker",
            log_format=_choice(e, "ITERLOOP_LOG_FORMAT", ("text", "json"), default="text"),
            log_level=_log_level(e, "ITERLOOP_LOG_LEVEL"),
            notify_slack_channel=(e.get("ITERLOOP_NOTIFY_SLACK_CHANNEL") or "").strip(),
            notify_webhooks=_words(e.get("ITERLOOP_NOTIFY_WEBHOOKS")),
            notify_events=_events(e, "ITERLOOP_NOTIFY_EVENTS"),
            ui_url=(e.get("ITERLOOP_TEMPORAL_UI_URL") or "").strip().rstrip("/"),
            mcp_autoload=(e.get("ITERLOOP_MCP_AUTOLOAD") or "").strip().lower() not in ("0", "false"),
            local_tools=(e.get("ITERLOOP_LOCAL_TOOLS") or "").strip().lower() not in ("0", "false"),
        )

    def with_overrides(self, *, address: str | None = None, namespace: str | None = None,
                       task_queue: str | None = None, offline: bool | None = None) -> Settings:
        s = self
        if address:
            s = replace(s, address=address, address_configured=True)
        if namespace:
            s = replace(s, namespace=namespace)
        if task_queue:
            s = replace(s, task_queue=task_queue)
        if offline is not None:
            s = replace(s, offline=offline)
        return s
