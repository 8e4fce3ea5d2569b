"""Each activity's stable name bound to its request and result types.

The workflow schedules an activity through its `ActivitySpec` (so a request of the wrong type
or a result read as the wrong type is a type error, not a history surprise), the worker registers
the implementations, and a test checks that every implementation's name and signature match its
spec here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from workflows.contract import vocabulary
from workflows.contract.delegation import DelegateRequest, DelegateResult
from workflows.contract.mcp import McpCallRequest, McpCallResult, McpCheckRequest, McpCheckResult
from workflows.contract.messages import (
    LLMTurnRequest,
    LLMTurnResult,
    NotifyRequest,
    NotifyResult,
    ShellRequest,
    ShellResult,
    ToolCallRequest,
    ToolCallResult,
)

Req = TypeVar("Req", bound=BaseModel)
Res = TypeVar("Res", bound=BaseModel)


@dataclass(frozen=True)
class ActivitySpec(Generic[Req, Res]):
    name: str
    request: type[Req]
    result: type[Res]


LLM_TURN = ActivitySpec(vocabulary.LLM_TURN, LLMTurnRequest, LLMTurnResult)
SHELL_EXEC = ActivitySpec(vocabulary.SHELL_EXEC, ShellRequest, ShellResult)
TOOL_CALL = ActivitySpec(vocabulary.TOOL_CALL, ToolCallRequest, ToolCallResult)
NOTIFY = ActivitySpec(vocabulary.NOTIFY, NotifyRequest, NotifyResult)
MCP_CALL = ActivitySpec(vocabulary.MCP_CALL, McpCallRequest, McpCallResult)
MCP_CHECK = ActivitySpec(vocabulary.MCP_CHECK, McpCheckRequest, McpCheckResult)
DELEGATE = ActivitySpec(vocabulary.DELEGATE, DelegateRequest, DelegateResult)

#: Every activity the interpreter schedules.
ALL: tuple[ActivitySpec[BaseModel, BaseModel], ...] = (LLM_TURN, SHELL_EXEC, TOOL_CALL, NOTIFY, MCP_CALL, MCP_CHECK, DELEGATE)  # type: ignore[assignment]
