"""Delegating a node to an external coding agent (`backend: "claude_code"` / `"codex"`).

A delegated node is one activity per visit (`iterloop.delegate`): the worker runs the agent's CLI
in the run's working directory with the node's prompts, its output schema as the required answer
format, its tools mapped to the CLI's allowed tools, `readonly` as a read-only permission mode and
the node's MCP servers passed through. The CLI works for as long as it needs (many model turns and
tool uses of its own), heartbeating; the activity returns the final answer, usage and cost for
the run's budget, the CLI's session id (so `session: inherit|fork` resume it), and a bounded
list of the steps it streamed, which the workflow records as events.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import Schema
from workflows.contract.mcp import McpServerSpec
from workflows.contract.messages import Usage

DelegateBackend = Literal["claude_code", "codex"]
DELEGATE_BACKENDS: tuple[DelegateBackend, ...] = ("claude_code", "codex")

#: Steps of the CLI's stream kept in a result (the rest are counted, not kept: history stays small).
MAX_STEPS_KEPT = 50
#: How many times one visit of a node with `interaction:` may stop to ask a person.
MAX_INTERACTIONS = 10
#: The keys a delegated agent sets in its answer to ask a person (`interaction:` other than none).
NEEDS_INTERACTION = "_needs_interaction"
INTERACTION_QUESTIONS = "_interaction_questions"
#: Added to the system prompt of a node with `interaction:`: how the agent asks, and what follows.
INTERACTION_PROTOCOL = (
    "If you cannot finish without a decision or information only a person can give, stop and ask: "
    f'answer with "{NEEDS_INTERACTION}": true and your questions as a list of strings in '
    f'"{INTERACTION_QUESTIONS}" (the other fields of the answer may hold placeholders then). The run '
    "waits for a person's answers and resumes this session with them. Otherwise leave "
    f'"{NEEDS_INTERACTION}" false and give your answer.')


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DelegateStep(BaseModel):
    """One thing the delegated agent did, as its CLI streamed it (a tool use, a message)."""

    kind: Literal["message", "tool_use", "tool_result", "thinking", "other"]
    summary: str  # one line, bounded (a tool name and its main argument; a message's first line)
    tool: str = ""


class DelegateRequest(_Msg):
    run_id: str
    node_id: str
    node_kind: str
    backend: DelegateBackend
    visit: int = 1
    model: str = ""  # may hold `${ENV}`; "" lets the CLI choose its default
    system: str = ""
    user: str = ""
    input: dict[str, Any] = Field(default_factory=dict)
    artifact_tokens: list[str] = Field(default_factory=list)
    output_schema: Schema | None = None
    tools: list[str] = Field(default_factory=list)  # the node's `tools:` (mapped to the CLI's allowed tools)
    readonly: bool = False
    reasoning_effort: str = ""
    mcp_servers: list[McpServerSpec] = Field(default_factory=list)
    cwd: str | None = None
    resume_session: str = ""  # the CLI's session id to continue (`session: inherit|fork`)
    fork_session: bool = False  # continue a copy, leaving the original session as it was
    timeout_seconds: float = 1800.0
    heartbeat_seconds: float = 10.0
    script: dict[str, Any] | None = None  # offline: the scripted answer (clearly labelled), no CLI runs
    offload_threshold_bytes: int = 0
    interaction: bool = False  # the node has `interaction:`: the agent may stop to ask a person
    interaction_round: int = 0  # how many times this visit has asked so far (the answers are in `user`)
    max_turns: int = 0  # the node's `tool_max_steps`: the CLI's own turn limit, where it has one (0: none)


class DelegateResult(_Msg):
    status: Literal["final", "invalid", "needs_interaction"]
    output: dict[str, Any] = Field(default_factory=dict)
    text: str = ""  # the agent's final message (bounded)
    invalid_reason: str = ""  # when the answer does not match the output schema
    usage: Usage = Field(default_factory=Usage)
    session_id: str = ""
    steps: list[DelegateStep] = Field(default_factory=list)
    steps_dropped: int = 0
    questions: dict[str, str] = Field(default_factory=dict)  # `needs_interaction`: what the agent asks


def interaction_questions(answer: dict[str, Any]) -> dict[str, str] | None:
    """The questions an answer asks a person with, or None when it does not ask (a real `true` only).
    Questions come as a list of strings (or a map, as Iterion's agents wrote them)."""
    if answer.get(NEEDS_INTERACTION) is not True:
        return None
    raw = answer.get(INTERACTION_QUESTIONS)
    if isinstance(raw, dict):
        questions = {str(k): str(v) for k, v in raw.items()}
    elif isinstance(raw, list):
        questions = {f"question_{i}": str(q) for i, q in enumerate(raw, 1)}
    else:
        questions = {}
    return questions or {"input": "The agent needs your input to continue."}


def without_interaction_keys(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in (NEEDS_INTERACTION, INTERACTION_QUESTIONS)}


def interaction_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An answer's JSON Schema with the two optional keys an agent asks a person with."""
    return {**schema, "properties": {
        **schema.get("properties", {}),
        NEEDS_INTERACTION: {"type": "boolean", "description": "true: stop and ask a person the questions"},
        INTERACTION_QUESTIONS: {"type": "array", "items": {"type": "string"},
                                "description": "what to ask a person, when needs_interaction is true"}}}
