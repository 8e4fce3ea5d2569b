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


class DelegateResult(_Msg):
    status: Literal["final", "invalid"]
    output: dict[str, Any] = Field(default_factory=dict)
    text: str = ""  # the agent's final message (bounded)
    invalid_reason: str = ""  # when the answer does not match the output schema
    usage: Usage = Field(default_factory=Usage)
    session_id: str = ""
    steps: list[DelegateStep] = Field(default_factory=list)
    steps_dropped: int = 0
