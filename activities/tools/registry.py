"""The builtin tool registry and the activity that calls a tool by name.

A tool is an async function with a pydantic input model and a pydantic output model; the input
model's JSON schema is what an LLM sees, and the same model validates arguments coming from a
tool node's `with` mappings. Registering is one decorator.

**Bound arguments.** Some arguments choose infrastructure — which analytics source to query
(`connector`), which flag service to write to (`provider`) — and a model must never choose them:
a prompt-injected model could point a connector at another host, with the worker's credentials
(`${VAR}` in connector settings is expanded on the worker). A tool declares them with
``bound=``, each argument with the run var it comes from (``bound=("connector",)`` when the names
agree, ``bound={"provider": "flag_provider"}`` when they do not). Then:

- the model is not shown them (`activities/llm/tool_specs.py` removes them from the schema) and
  the turn reports the run var names in `ToolInfo.bound`;
- for a model's call, the workflow drops whatever the model put under those var names and sets
  each to the run var's value, or to null when the run has no such var;
- `call_tool` moves a var-named value onto its argument (replacing anything the model wrote
  there) and refuses a null one with a non-retryable `BadRequest` naming the var to declare: a
  tool called by a model never falls back to its default (the mock connector, the local flag
  store).

A `call:` tool node passes arguments the `.iter` author wrote in `with`; there the argument's own
name is used and its default still applies when it is left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import artifacts
from workflows.contract.messages import ERR_BAD_REQUEST, ERR_UNKNOWN_TOOL, TOOL_CALL, ToolCallRequest, ToolCallResult

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
    #: (argument, run var) pairs a model never sets (see the module docstring); a tuple keeps
    #: the tool hashable, so the schema offered to models can be cached per tool.
    bound: tuple[tuple[str, str], ...] = ()

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    @property
    def bound_arguments(self) -> dict[str, str]:
        """Bound argument → the run var it comes from."""
        return dict(self.bound)

    @property
    def bound_vars(self) -> list[str]:
        """The run vars the workflow fills for a model's call (what `ToolInfo.bound` reports)."""
        return [var for _, var in self.bound]


_REGISTRY: dict[str, Tool] = {}


def tool(name: str, *, mutating: bool = False, bound: Sequence[str] | Mapping[str, str] = ()
         ) -> Callable[[Callable[[In], Awaitable[Out]]], Callable[[In], Awaitable[Out]]]:
    """Register ``fn(args: InputModel) -> OutputModel`` as builtin tool ``name``.

    ``bound`` names the arguments a model never sets: a list when each comes from the run var of
    the same name, else a mapping argument → run var."""

    def register(fn: Callable[[In], Awaitable[Out]]) -> Callable[[In], Awaitable[Out]]:
        hints = inspect.get_annotations(fn, eval_str=True)
        params = [p for p in inspect.signature(fn).parameters]
        input_model, output_model = hints[params[0]], hints["return"]
        if name in _REGISTRY:
            raise ValueError(f"builtin tool '{name}' is registered twice")
        names = (bound,) if isinstance(bound, str) else bound
        pairs = tuple(names.items()) if isinstance(names, Mapping) else tuple((a, a) for a in names)
        unknown = [a for a, _ in pairs if a not in input_model.model_fields]
        if unknown:
            raise ValueError(f"builtin tool '{name}': bound argument(s) {', '.join(unknown)} are not fields of "
                             f"{input_model.__name__}")
        _REGISTRY[name] = Tool(name, inspect.getdoc(fn) or "", input_model, output_model, fn,  # type: ignore[arg-type]
                               mutating, pairs)
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
        args = t.input_model.model_validate(_with_bound_values(t, arguments))
    except ValidationError as exc:
        raise ApplicationError(f"invalid arguments for tool '{name}': {exc}", type=ERR_BAD_REQUEST,
                               non_retryable=True) from None
    result = await t.fn(args)
    return result.model_dump(mode="json")


def _with_bound_values(t: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` with each bound value the workflow set under its run var's name moved onto
    its argument, replacing whatever was there; a null one (the run has no such var) is refused."""
    out = dict(arguments)
    for argument, var in t.bound:
        if var not in out:
            continue  # a `call:` node's own arguments: the argument as written, else its default
        value = out.pop(var)
        if value is None:
            raise ApplicationError(
                f"tool '{t.name}' got no '{argument}': a model never chooses it, the workflow fills it from the run "
                f"var '{var}', and this run has none. Declare `{var}` in the workflow's vars (see docs/models.md, "
                "Tools), or pass it in the tool node's `with`", type=ERR_BAD_REQUEST, non_retryable=True)
        out[argument] = value
    return out


@activity.defn(name=TOOL_CALL)
async def tool_call(req: ToolCallRequest) -> ToolCallResult:
    """Run a builtin tool for a node; arguments are validated against the tool's input model."""
    output = await call_tool(req.tool, artifacts.resolve(req.arguments))
    return ToolCallResult(output=artifacts.offload(output, run_id=req.run_id, node_id=req.node_id,
                                                   threshold=req.offload_threshold_bytes))
