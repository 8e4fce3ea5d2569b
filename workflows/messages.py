"""The contract between the interpreter workflow and its activities.

Workflow code builds these requests and reads these results; activities implement them. They
live on the workflow side because the workflow must not import activity code (which does I/O),
while activities may import this module. Changing a field here changes history payloads: add
fields with defaults, never rename.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import Schema

# Stable activity names (they appear in histories and in the Temporal UI).
LLM_TURN = "iterloop.llm_turn"
SHELL_EXEC = "iterloop.shell_exec"
TOOL_CALL = "iterloop.tool_call"
ARTIFACT_PUT = "iterloop.artifact_put"

# Non-retryable application error types (also matched by the CLI to explain failures).
ERR_BAD_REQUEST = "BadRequest"
ERR_SCHEMA = "SchemaViolation"
ERR_COMMAND_FAILED = "CommandFailed"
ERR_POLICY = "PolicyDenied"
ERR_UNKNOWN_TOOL = "UnknownTool"
ERR_SCRIPT = "ScriptError"

# Analytics connector failures (activities/connectors). Auth and unknown names are permanent
# (non-retryable); rate limits and outages are retried, after the server's Retry-After delay.
ERR_CONNECTOR_AUTH = "ConnectorAuthFailed"
ERR_UNKNOWN_METRIC = "UnknownMetric"
ERR_UNKNOWN_FUNNEL = "UnknownFunnel"
ERR_RATE_LIMITED = "RateLimited"
ERR_CONNECTOR_UNAVAILABLE = "ConnectorUnavailable"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_Msg):
    """Tokens and cost of one model call; summed into the run's budget."""

    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: Usage) -> Usage:
        return Usage(
            model=other.model or self.model,
            provider=other.provider or self.provider,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


LLMPurpose = Literal["node", "route", "auto_answer", "auto_or_pause"]


class LLMTurnRequest(_Msg):
    """One model call for one node visit.

    ``model`` may hold `${ENV}` references: the activity resolves them on the worker so secrets
    and deployment choices never enter history. ``script`` carries offline outputs for the
    scripted provider (demo and tests); it is None for real runs.
    """

    run_id: str
    node_id: str
    node_kind: str
    purpose: LLMPurpose = "node"
    visit: int = 1  # 1-based count of this node's executions in the run
    model: str = ""
    backend: str = ""
    system: str = ""
    user: str = ""
    input: dict[str, Any] = Field(default_factory=dict)
    output_schema: Schema | None = None
    reasoning_effort: str = ""
    tools: list[str] = Field(default_factory=list)
    tool_max_steps: int = 0
    route_candidates: list[str] = Field(default_factory=list)
    multi_route: bool = False
    script: dict[str, Any] | None = None
    offload_threshold_bytes: int = 0  # outputs larger than this go to the artifact store (0 = never)


class LLMTurnResult(_Msg):
    output: dict[str, Any]
    usage: Usage = Field(default_factory=Usage)


class ShellRequest(_Msg):
    """A shell tool node. ``command`` is already rendered: template values were shell-quoted by
    the workflow; `${ENV}` references are expanded here, on the worker."""

    run_id: str
    node_id: str
    command: str
    cwd: str | None = None
    timeout_seconds: float = 600.0
    heartbeat_seconds: float = 5.0
    offload_threshold_bytes: int = 0  # outputs larger than this go to the artifact store (0 = never)


class ShellResult(_Msg):
    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    output: dict[str, Any]


class ToolCallRequest(_Msg):
    """A builtin tool call (tool node with `call:`, or an LLM tool use)."""

    run_id: str
    node_id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    offload_threshold_bytes: int = 0  # outputs larger than this go to the artifact store (0 = never)


class ToolCallResult(_Msg):
    output: dict[str, Any]
