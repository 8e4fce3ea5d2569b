"""The builtin tool registry and the activity that calls a tool by name.

A tool is an async function with a pydantic input model and a pydantic output model
(`activities.tools.spec.Tool`); the input model's JSON schema is what an LLM sees, and the same
model validates arguments coming from a tool node's `with` mappings. Each tool module collects
its tools in a `ToolSet`; this module assembles them into one table, in the tool catalog's order,
and refuses a catalog entry without an implementation (and `Tool` refuses an implementation
without a catalog entry), so `workflows.contract.tool_catalog` is the one list of what exists.

**Bound arguments.** Some arguments choose infrastructure — which analytics source to query
(`connector`), which flag service to write to (`provider`) — and a model must never choose them:
a prompt-injected model could point a connector at another host, with the worker's credentials
(`${VAR}` in connector settings is expanded on the worker). The catalog's `BOUND_ARGUMENTS`
declares them, each argument with the run var it comes from (``{"provider": "flag_provider"}``).
Then:

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

from functools import cache
from typing import Any

from pydantic import ValidationError
from temporalio import activity

from activities import artifacts
from activities.errors import BadRequestError, UnknownToolError
from activities.tools import builtins, experiments, feature_flags, funnels, learning, statistics
from activities.tools.spec import Tool, ToolSet
from workflows.contract.messages import TOOL_CALL, ToolCallRequest, ToolCallResult
from workflows.contract.tool_catalog import BUILTIN_TOOLS
from workflows.contract.tool_docs import BuiltinToolSchema

#: Every module that defines builtin tools.
TOOL_SETS: tuple[ToolSet, ...] = (builtins.TOOLS, funnels.TOOLS, experiments.TOOLS, statistics.TOOLS,
                                  feature_flags.TOOLS, learning.TOOLS)


def assemble(sets: tuple[ToolSet, ...]) -> dict[str, Tool]:
    """Name → tool for every tool in ``sets``, in the catalog's order. A tool defined twice, or a
    catalog entry that no module implements, is a programming error caught at the first call."""
    found: dict[str, Tool] = {}
    for tool_set in sets:
        for t in tool_set.tools:
            if t.name in found:
                raise ValueError(f"builtin tool '{t.name}' is defined twice")
            found[t.name] = t
    missing = [name for name in BUILTIN_TOOLS if name not in found]
    if missing:
        raise ValueError(f"the tool catalog lists {', '.join(missing)}, which no tool module implements")
    return {name: found[name] for name in BUILTIN_TOOLS}


@cache
def _table() -> dict[str, Tool]:
    return assemble(TOOL_SETS)


def registry() -> dict[str, Tool]:
    """Every builtin tool by name (a copy: callers may change it)."""
    return dict(_table())


def tool_names() -> frozenset[str]:
    return frozenset(_table())


def tool_schemas() -> list[BuiltinToolSchema]:
    """Every builtin tool with the JSON Schemas of its input and output models, in the catalog's
    order: what the agent skill's tool reference is generated from (`iterloop skill generate`)."""
    return [BuiltinToolSchema(name=t.name, description=t.description, mutating=t.mutating,
                              bound_arguments=t.bound_arguments, input_schema=t.input_model.model_json_schema(),
                              output_schema=t.output_model.model_json_schema())
            for t in _table().values()]


async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate ``arguments`` against tool ``name``'s input model, run it, and return its output as JSON."""
    tools = _table()
    t = tools.get(name)
    if t is None:
        raise UnknownToolError(f"unknown builtin tool '{name}'; available: {', '.join(sorted(tools))}")
    try:
        args = t.input_model.model_validate(_with_bound_values(t, arguments))
    except ValidationError as exc:
        raise BadRequestError(f"invalid arguments for tool '{name}': {exc}") from None
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
            raise BadRequestError(
                f"tool '{t.name}' got no '{argument}': a model never chooses it, the workflow fills it from the run "
                f"var '{var}', and this run has none. Declare `{var}` in the workflow's vars (see docs/models.md, "
                "Tools), or pass it in the tool node's `with`")
        out[argument] = value
    return out


@activity.defn(name=TOOL_CALL)
async def tool_call(req: ToolCallRequest) -> ToolCallResult:
    """Run a builtin tool for a node; arguments are validated against the tool's input model."""
    output = await call_tool(req.tool, await artifacts.resolve_async(req.arguments, tokens=req.artifact_tokens))
    return ToolCallResult(output=await artifacts.offload_async(output, run_id=req.run_id, node_id=req.node_id,
                                                   threshold=req.offload_threshold_bytes))
