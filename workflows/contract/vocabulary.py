"""Every word the workflow, its activities and its clients must spell the same way, defined once.

Each vocabulary is a `Literal`; code that needs the values as data derives them with
`typing.get_args` (the CLI's `--status` choices, the API's filters, the settings' notify events),
so adding a status or an event type is one edit here. Renaming a value changes histories and
what clients match on: add, never rename.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from dsl.ir import ReasoningEffort as ReasoningEffort  # the language's own word, re-exported

#: The workflow type every run has (histories and the Temporal UI show it).
WORKFLOW_TYPE: Final = "iterloop.GraphRun"

# -- activity names ----------------------------------------------------------------------------
# Stable strings: histories, the Temporal UI and task-queue routing use them. Each is bound to its
# request and result types in `workflows.contract.activities`.
LLM_TURN: Final = "iterloop.llm_turn"
SHELL_EXEC: Final = "iterloop.shell_exec"
TOOL_CALL: Final = "iterloop.tool_call"
NOTIFY: Final = "iterloop.notify"
MCP_CALL: Final = "iterloop.mcp_call"
MCP_CHECK: Final = "iterloop.mcp_check"
DELEGATE: Final = "iterloop.delegate"

# -- run and node status -----------------------------------------------------------------------
RunStatus = Literal[
    "running", "waiting_human", "failed_resumable", "finished", "failed", "cancelled", "budget_exceeded",
    # live control: held at a node boundary by `iterloop pause`; parked by a budget until it is raised
    "paused", "waiting_budget",
]
RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)
#: Statuses after which a run does nothing more.
FINAL_STATUSES: Final[frozenset[RunStatus]] = frozenset({"finished", "failed", "cancelled", "budget_exceeded"})

NodeStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "skipped"]

# -- search attributes (registered on the dev server, documented for clusters) -----------------
SA_WORKFLOW: Final = "IterloopWorkflow"
SA_STATUS: Final = "IterloopStatus"
SA_OPEN_GATES: Final = "IterloopOpenGates"
SA_COST: Final = "IterloopCostUsd"
SEARCH_ATTRIBUTES: Final = {SA_WORKFLOW: "Keyword", SA_STATUS: "Keyword", SA_OPEN_GATES: "KeywordList",
                            SA_COST: "Double"}

# -- run events --------------------------------------------------------------------------------
#: What a run's event log can say (`iterloop events`, the API's stream, reports). `Event.type` is
#: kept a plain string on the wire so a client reads events of a newer worker; the workflow emits
#: only these.
EventType = Literal[
    # the run
    "run_started", "run_continued", "run_finished", "run_failed", "run_cancelled", "run_budget_exceeded",
    "continue_as_new", "run_rewound", "run_forked",
    # nodes and edges
    "node_started", "node_finished", "node_failed", "node_retried", "edge_selected", "artifact_written",
    # parallel branches
    "fan_out", "branch_started", "branch_finished", "branch_failed", "join_ready",
    # budget
    "budget_warning", "budget_exceeded",
    # live control (`iterloop budget|pause|resume`) and the loop budget guard
    "budget_raised", "loop_iterations_granted", "run_paused", "run_resumed", "loop_budget_guard",
    # model turns and tools
    "llm_step_finished", "llm_repair_requested", "session_not_found", "tool_called", "tool_denied", "tool_error",
    # a person's decision on a tool call that waits for approval (`tool_approval:`)
    "tool_call_reviewed",
    # delegated nodes (a coding agent's CLI): one event per step it streamed
    "delegate_step",
    # MCP servers: one the run could not reach before its first node
    "mcp_server_failed",
    # human gates
    "human_input_requested", "gate_answered", "gate_timed_out", "auto_answer_deferred", "answer_queued",
    "answer_rejected",
    # notifications
    "notified", "notify_failed",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)

# -- notifications -----------------------------------------------------------------------------
NotifyEvent = Literal["gate_opened", "run_finished", "run_failed"]
NOTIFY_EVENTS: Final[tuple[NotifyEvent, ...]] = get_args(NotifyEvent)

# -- model calls -------------------------------------------------------------------------------
REASONING_EFFORTS: Final[tuple[ReasoningEffort, ...]] = get_args(ReasoningEffort)
LLMPurpose = Literal["node", "route", "auto_answer", "auto_or_pause"]
LLMTurnStatus = Literal["final", "tool_calls", "invalid"]

# -- failures ----------------------------------------------------------------------------------
#: The `type` of every `ApplicationError` an activity or the workflow raises. Whether retrying can
#: help is a property of the type, decided here once: activities' error classes take it from
#: `RETRYABLE`, the run retries only those (`workflows.activity_retries`), and the CLI and API
#: explain a failure by its type.
ErrorType = Literal[
    # requests and configuration
    "BadRequest", "SchemaViolation", "CommandFailed", "PolicyDenied", "UnknownTool", "ScriptError",
    "PayloadSizeError",
    # model providers
    "ModelAuthFailed", "ModelPermissionDenied", "ModelNotFound", "ContextLengthExceeded", "ModelRateLimited",
    "ModelUnavailable",
    # analytics connectors
    "ConnectorAuthFailed", "UnknownMetric", "UnknownFunnel", "RateLimited", "ConnectorUnavailable",
    # feature-flag providers
    "FlagProviderAuthFailed", "FlagConflict", "FlagNotFound", "FlagProviderUnavailable",
    # notifications
    "NotifyRejected", "NotifyUnavailable",
    # MCP servers: one that cannot start or answer as configured; one lost mid-call (retried)
    "McpServerFailed", "McpServerUnavailable",
    # the artifact store (activities/artifact_stores.py): unreachable or failing for now (retried)
    "ArtifactStoreUnavailable",
    # the interpreter's own (a node parks with these; never raised by an activity)
    "NoOutgoingEdge", "GateTimeout",
    # an answer for a gate opening that is answered already or not open (refused, nothing recorded)
    "GateOpeningClosed",
]
ERROR_TYPES: Final[tuple[ErrorType, ...]] = get_args(ErrorType)

#: Retrying helps only for these: rate limits, outages, network trouble.
RETRYABLE: Final[frozenset[ErrorType]] = frozenset({
    "ModelRateLimited", "ModelUnavailable", "RateLimited", "ConnectorUnavailable", "FlagProviderUnavailable",
    "NotifyUnavailable", "McpServerUnavailable", "ArtifactStoreUnavailable",
})
#: What the run never retries (derived; order is the declaration's).
NON_RETRYABLE: Final[tuple[ErrorType, ...]] = tuple(t for t in ERROR_TYPES if t not in RETRYABLE)

ERR_BAD_REQUEST: Final[ErrorType] = "BadRequest"
ERR_SCHEMA: Final[ErrorType] = "SchemaViolation"
ERR_COMMAND_FAILED: Final[ErrorType] = "CommandFailed"
ERR_POLICY: Final[ErrorType] = "PolicyDenied"
ERR_UNKNOWN_TOOL: Final[ErrorType] = "UnknownTool"
ERR_SCRIPT: Final[ErrorType] = "ScriptError"
ERR_PAYLOAD_SIZE: Final[ErrorType] = "PayloadSizeError"
ERR_MODEL_AUTH: Final[ErrorType] = "ModelAuthFailed"  # 401: missing or wrong API key
ERR_MODEL_PERMISSION: Final[ErrorType] = "ModelPermissionDenied"  # 403: the key may not use this model
ERR_MODEL_NOT_FOUND: Final[ErrorType] = "ModelNotFound"  # 404: unknown model name
ERR_CONTEXT_LENGTH: Final[ErrorType] = "ContextLengthExceeded"  # the prompt does not fit the context window
ERR_MODEL_RATE_LIMITED: Final[ErrorType] = "ModelRateLimited"
ERR_MODEL_UNAVAILABLE: Final[ErrorType] = "ModelUnavailable"  # 5xx, overload, network
ERR_CONNECTOR_AUTH: Final[ErrorType] = "ConnectorAuthFailed"
ERR_UNKNOWN_METRIC: Final[ErrorType] = "UnknownMetric"
ERR_UNKNOWN_FUNNEL: Final[ErrorType] = "UnknownFunnel"
ERR_RATE_LIMITED: Final[ErrorType] = "RateLimited"
ERR_CONNECTOR_UNAVAILABLE: Final[ErrorType] = "ConnectorUnavailable"
ERR_FLAG_AUTH: Final[ErrorType] = "FlagProviderAuthFailed"
ERR_FLAG_CONFLICT: Final[ErrorType] = "FlagConflict"
ERR_FLAG_NOT_FOUND: Final[ErrorType] = "FlagNotFound"
ERR_FLAG_PROVIDER_UNAVAILABLE: Final[ErrorType] = "FlagProviderUnavailable"
ERR_NOTIFY_REJECTED: Final[ErrorType] = "NotifyRejected"
ERR_NOTIFY_UNAVAILABLE: Final[ErrorType] = "NotifyUnavailable"
ERR_MCP_SERVER_FAILED: Final[ErrorType] = "McpServerFailed"  # cannot start, refused, exits at once
ERR_MCP_SERVER_UNAVAILABLE: Final[ErrorType] = "McpServerUnavailable"  # the connection was lost mid-call
ERR_ARTIFACT_STORE_UNAVAILABLE: Final[ErrorType] = "ArtifactStoreUnavailable"  # 5xx, timeouts, no connection
ERR_NO_OUTGOING_EDGE: Final[ErrorType] = "NoOutgoingEdge"
ERR_GATE_TIMEOUT: Final[ErrorType] = "GateTimeout"
ERR_GATE_OPENING_CLOSED: Final[ErrorType] = "GateOpeningClosed"
