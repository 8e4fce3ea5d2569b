"""The builtin tool registry and the activity that calls a tool by name.

A tool is an async function with a pydantic input model and a pydantic output model; the input
model's JSON schema is what an LLM sees, and the same model validates arguments coming from a
tool node's `with` mappings. Registering is one decorator.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import artifacts
from workflows.messages import ERR_BAD_REQUEST, ERR_UNKNOWN_TOOL, TOOL_CALL, ToolCallRequest, ToolCallResult

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[BaseModel]]
    mutating: bool = False

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()


_REGISTRY: dict[str, Tool] = {}


def tool(name: str, *, mutating: bool = False) -> Callable[[Callable[[In], Awaitable[Out]]], Callable[[In], Awaitable[Out]]]:
    """Register ``fn(args: InputModel) -> OutputModel`` as builtin tool ``name``."""

    def register(fn: Callable[[In], Awaitable[Out]]) -> Callable[[In], Awaitable[Out]]:
        hints = inspect.get_annotations(fn, eval_str=True)
        params = [p for p in inspect.signature(fn).parameters]
        input_model, output_model = hints[params[0]], hints["return"]
        if name in _REGISTRY:
            raise ValueError(f"builtin tool '{name}' is registered twice")
        _REGISTRY[name] = Tool(name, inspect.getdoc(fn) or "", input_model, output_model, fn, mutating)  # type: ignore[arg-type]
        return fn

    return register


def registry() -> dict[str, Tool]:
    _load_builtins()
    return dict(_REGISTRY)


def tool_names() -> frozenset[str]:
    return frozenset(registry())


def _load_builtins() -> None:
    from activities.tools import builtins, growth  # noqa: F401  (they register on import)


async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    tools = registry()
    t = tools.get(name)
    if t is None:
        raise ApplicationError(f"unknown builtin tool '{name}'; available: {', '.join(sorted(tools))}",
                               type=ERR_UNKNOWN_TOOL, non_retryable=True)
    try:
        args = t.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise ApplicationError(f"invalid arguments for tool '{name}': {exc}", type=ERR_BAD_REQUEST,
                               non_retryable=True) from None
    result = await t.fn(args)
    return result.model_dump(mode="json")


@activity.defn(name=TOOL_CALL)
async def tool_call(req: ToolCallRequest) -> ToolCallResult:
    """Run a builtin tool for a node; arguments are validated against the tool's input model."""
    output = await call_tool(req.tool, artifacts.resolve(req.arguments))
    return ToolCallResult(output=artifacts.offload(output, run_id=req.run_id, node_id=req.node_id,
                                                   threshold=req.offload_threshold_bytes))
