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
from workflows.contract.mcp import McpServerSpec
from workflows.contract.vocabulary import (  # noqa: F401  (re-exported: the names requests use)
    ERR_BAD_REQUEST,
    ERR_COMMAND_FAILED,
    ERR_CONNECTOR_AUTH,
    ERR_CONNECTOR_UNAVAILABLE,
    ERR_CONTEXT_LENGTH,
    ERR_MODEL_AUTH,
    ERR_MODEL_NOT_FOUND,
    ERR_MODEL_PERMISSION,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_UNAVAILABLE,
    ERR_POLICY,
    ERR_RATE_LIMITED,
    ERR_SCHEMA,
    ERR_SCRIPT,
    ERR_UNKNOWN_FUNNEL,
    ERR_UNKNOWN_METRIC,
    ERR_UNKNOWN_TOOL,
    LLM_TURN,
    NOTIFY,
    SHELL_EXEC,
    TOOL_CALL,
    LLMPurpose,
    LLMTurnStatus,
    NotifyEvent,
)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_Msg):
    """Tokens and cost of model calls; summed per node and per run into the budget.

    ``input_tokens`` counts every prompt token, however it was billed; ``cached_tokens`` is the
    part read from the provider's prompt cache and ``cache_write_tokens`` the part written to it
    (both included in ``input_tokens``). ``reasoning_tokens`` are part of ``output_tokens``.
    ``cache_savings_usd`` is what the cached tokens would have cost at the full input price,
    minus what they cost. ``unpriced_calls`` counts calls whose model has no known price (costed
    at 0 USD): while it is not 0 the cost is incomplete.
    """

    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    cache_write_tokens: int = 0
    cache_savings_usd: float = 0.0
    calls: int = 0  # model calls (turns) summed here
    #: Calls of a model the price table has no price for: they count 0 USD, so ``cost_usd`` is a lower bound.
    unpriced_calls: int = 0

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
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_savings_usd=self.cache_savings_usd + other.cache_savings_usd,
            calls=self.calls + other.calls,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )


class ToolCall(_Msg):
    """One tool use the model asked for. ``name`` is the registry name (`get_funnel_data`,
    `mcp.github.create_issue`), never a provider's mangled spelling."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolInfo(_Msg):
    """What the workflow needs to know about a tool offered to a model: policy is checked
    against ``name`` and readonly nodes refuse ``mutating`` tools before any call."""

    name: str
    mutating: bool = False
    # Arguments the model never sees nor sets (where to read data, which flag service): the
    # workflow fills them from the run's vars of the same name, so a prompt-injected model
    # cannot point a tool at another host, and a tool never silently falls back to a default.
    bound: list[str] = Field(default_factory=list)
    # The arguments' JSON Schema as the model sees it, sent only for tools whose calls wait for a
    # person (`tool_approval:`): edited arguments are checked against it before the call runs.
    input_schema: dict[str, Any] | None = None


class ChatMessage(_Msg):
    """One message of a provider-neutral conversation (stored in the artifact store).

    Providers translate these to and from their wire formats. ``native`` keeps the producing
    provider's own content blocks for an assistant message (e.g. Anthropic thinking blocks and
    their signatures, which must be sent back verbatim in a tool-use loop); another provider
    ignores it and uses ``text``/``tool_calls``.
    """

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant messages that use tools
    tool_call_id: str = ""  # tool results: the call they answer
    tool_name: str = ""
    is_error: bool = False  # tool results that report a failure or a policy denial
    # Tool results: the tool's output object as the workflow got it (large values are artifact
    # stubs, resolved on the worker); the activity serialises it for the model. ``text`` is used
    # instead when this is None (errors, denials).
    result: dict[str, Any] | None = None
    provider: str = ""
    native: list[dict[str, Any]] | None = None


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
    # The exact `⟦artifact:…⟧` tokens the workflow itself put into system/user/input for stored
    # values; the activity expands these and no other token-shaped text (a value's look-alike).
    artifact_tokens: list[str] = Field(default_factory=list)
    output_schema: Schema | None = None
    reasoning_effort: str = ""
    max_output_tokens: int | None = None  # the node's `max_tokens`; None: the worker's setting
    tools: list[str] = Field(default_factory=list)
    tool_max_steps: int = 0
    route_candidates: list[str] = Field(default_factory=list)
    multi_route: bool = False
    script: dict[str, Any] | None = None
    offload_threshold_bytes: int = 0  # outputs larger than this go to the artifact store (0 = never)
    # -- the conversation (tool-use loops, repairs, sessions) --------------------------------
    # The conversation so far lives in the artifact store, so history carries a reference and the
    # few new messages of each turn instead of the whole, growing transcript. Turn 1 appends
    # ``user`` as a user message (after the messages of ``conversation_ref``, when a session is
    # inherited); every turn then appends ``new_messages`` (tool results, a repair request).
    turn: int = 1  # 1-based model turn within this node visit
    conversation_ref: str = ""  # artifact URI of list[ChatMessage]; "" = a new conversation
    new_messages: list[ChatMessage] = Field(default_factory=list)
    tool_policy: list[str] | None = None  # effective allowlist (node's, else workflow's); None = open
    readonly: bool = False  # offer no mutating tool
    tool_approval: list[str] = Field(default_factory=list)  # tools whose calls a person approves: their schemas come back
    allow_tools: bool = True  # False: the tool step budget is spent, the model must answer now
    heartbeat_seconds: float = 0.0  # > 0: heartbeat this often while the provider works
    # False: nothing will continue this conversation (no tool loop, no session reads it), so a
    # final answer need not be stored; an answer that needs a repair is stored regardless.
    keep_conversation: bool = True
    # The MCP servers the node may call (`workflows.contract.mcp_sets`): the activity lists the tools of
    # those its `tools:` name; ``cwd`` is the run's directory, where stdio servers start.
    mcp_servers: list[McpServerSpec] = Field(default_factory=list)
    cwd: str | None = None


class LLMTurnResult(_Msg):
    """One model turn. ``final``: ``output`` is the node's (schema-valid) output. ``tool_calls``:
    the workflow runs ``tool_calls`` and asks again. ``invalid``: the answer did not match the
    schema; the workflow asks for a repair quoting ``invalid_reason`` (a bounded number of times)."""

    output: dict[str, Any]
    usage: Usage = Field(default_factory=Usage)
    status: LLMTurnStatus = "final"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    text: str = ""  # the assistant's text this turn (shown in events; truncated)
    invalid_reason: str = ""
    conversation_ref: str = ""  # the conversation including this turn's reply
    tools: list[ToolInfo] = Field(default_factory=list)  # the tools offered this turn


class ShellValue(_Msg):
    """One template value of a shell command, handed to the command as an environment variable.

    ``value`` is the value as the run holds it: text or JSON, or a recorded artifact reference
    (`{"$artifact_ref": URI, "path": [...]}`, or a stored output's stub) that the activity resolves
    by structure. It is never text the activity searches for tokens.
    """

    env: str  # the variable the command reads, e.g. ITERLOOP_VALUE_1
    ref: str  # the template as written, e.g. {{vars.title}}, for messages
    value: Any


class ShellRequest(_Msg):
    """A shell tool node. ``command`` is rendered by the workflow: each `{{ref}}` became a quoted
    parameter expansion (`"${ITERLOOP_VALUE_1}"`) of a variable in ``values``, so the shell sees
    every value as data; `${ENV}` references are expanded here, on the worker."""

    run_id: str
    node_id: str
    command: str
    values: list[ShellValue] = Field(default_factory=list)
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
    # Tokens the workflow placed in `with` text of a `call:` node's input (none for a model's call).
    artifact_tokens: list[str] = Field(default_factory=list)


class ToolCallResult(_Msg):
    output: dict[str, Any]


class NotifyRequest(_Msg):
    """Tell the outside world (Slack, webhooks) that something happened to a run.

    Scheduled only when the run's options ask for notifications; a notification that cannot be
    delivered after its retries is logged as an event and never blocks or fails the run. Where to
    send (channel, webhook URLs) comes from the run options; secrets (bot token, signing keys)
    stay on the worker.
    """

    event: NotifyEvent
    run_id: str
    workflow: str
    status: str = ""
    reason: str = ""
    gate: str = ""
    interaction_id: str = ""
    instructions: str = ""
    questions: dict[str, Any] = Field(default_factory=dict)
    answer_schema: Schema | None = None
    usage: Usage = Field(default_factory=Usage)
    slack_channel: str = ""
    webhooks: list[str] = Field(default_factory=list)
    ui_url: str = ""  # the run in the Temporal Web UI, when known


class NotifyResult(_Msg):
    """``failed`` is always empty: a target that was not delivered fails the activity
    (`NotifyUnavailable` is retried, `NotifyRejected` is not), so the reason is in the failure.
    The field stays so recorded results keep decoding."""

    delivered: list[str] = Field(default_factory=list)  # "slack:#growth", "webhook:https://…"
    failed: list[str] = Field(default_factory=list)
