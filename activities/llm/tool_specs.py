"""Which tools a model may call on a turn, described the way models read them.

A node's `tools:` names resolve against the builtin registry (`activities/tools/registry.py`):
its description and the JSON Schema of its pydantic input model are what the model sees. MCP tools
(`mcp.SERVER.TOOL`) resolve against what the node's servers list (`mcp_tools.py`): the server's
description and input schema, mutating unless the server marks the tool read-only. A name ending
in `.*` takes every tool of that namespace (`mcp.github.*`: every tool of `github`). The workflow's policy (the node's
`tool_policy`, else the workflow's) and `readonly` then decide what is offered: a tool the policy
denies, or a mutating tool on a readonly node, is never shown to the model (the workflow checks
again before running any call).

A tool's bound arguments (where its data comes from, which flag service it writes to: see
`activities/tools/registry.py`) are left out of the schema the model sees; the turn reports the
run vars that fill them in `ToolInfo.bound`, and the workflow sets them. The schema is built once
per tool and shared by every turn.

Registry names may hold dots (`mcp.github.create_issue`) that model APIs refuse in tool names;
`provider.wire_name` turns them into underscores and `ToolNames` maps a model's call back.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from activities.errors import BadRequestError
from activities.llm.provider import ToolSpec, wire_name
from activities.tools.registry import registry
from activities.tools.spec import Tool
from workflows.contract.mcp import McpToolInfo
from workflows.contract.messages import LLMTurnRequest, ToolInfo
from workflows.contract.tool_policy import tool_allowed


def node_tools(req: LLMTurnRequest, *, skip_unknown: bool = False,
               mcp_tools: list[McpToolInfo] | None = None) -> list[ToolSpec]:
    """The node's declared tools, in declared order (stable, so prompt caches keep hitting).

    ``mcp_tools`` are the tools the node's MCP servers list; a bare name (`get_current_time`) is
    the one of them with that name, as in Iterion (exact names, builtins included, win; a name two
    servers list is refused as ambiguous). An unknown name is a permanent
    `BadRequest` naming node and tool, unless ``skip_unknown`` (offline runs: a scripted model
    calls only what its script says, and examples may name tools that only exist where they are
    deployed, such as MCP servers' tools)."""
    builtin = registry()
    listed = {t.registry_name: t for t in mcp_tools or []}
    known: dict[str, Any] = {**builtin, **listed}
    specs: list[ToolSpec] = []
    for name in req.tools:
        if name.endswith(".*"):
            matched = sorted(n for n in known if n.startswith(name[:-1]))
            if not matched and not skip_unknown:
                raise _unknown(req, name, known, "matches no registered tool")
        elif name in known:
            matched = [name]
        elif (bare := [t.registry_name for t in mcp_tools or [] if t.name == name]) and not name.startswith("mcp."):
            if len(bare) > 1:  # Iterion's rule: a bare name is one server's tool, never a guess
                raise _unknown(req, name, known, f"is a tool of several MCP servers ({', '.join(bare)}); "
                                                 "write the one you mean in full")
            matched = bare
        elif skip_unknown:
            matched = []
        else:
            raise _unknown(req, name, known, "is not a registered tool")
        for n in matched:
            if all(s.name != n for s in specs):
                specs.append(tool_spec(builtin[n]) if n in builtin else mcp_tool_spec(listed[n]))
    return specs


def mcp_tool_spec(t: McpToolInfo) -> ToolSpec:
    """An MCP tool as models see it: what its server lists (no bound arguments: the server is the
    node's, chosen by the run)."""
    schema = copy.deepcopy(t.input_schema) or {}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return ToolSpec(name=t.registry_name, description=t.description or t.name, parameters=schema,
                    mutating=t.mutating)


@cache
def tool_spec(t: Tool) -> ToolSpec:
    """``t`` as models see it: its description and the JSON Schema of its input without the bound
    arguments (built once per tool: generating a schema is the costly part of offering a tool)."""
    return ToolSpec(name=t.name, description=t.description or t.name, parameters=model_parameters(t),
                    mutating=t.mutating, bound=tuple(t.bound_vars))


def permitted_tools(specs: list[ToolSpec], req: LLMTurnRequest) -> list[ToolSpec]:
    """The tools the policy and readonly allow; the model never sees the others."""
    return [s for s in specs if tool_allowed(s.name, req.tool_policy) and not (req.readonly and s.mutating)]


def tool_infos(specs: list[ToolSpec], approval: list[str] | None = None) -> list[ToolInfo]:
    """What the workflow needs about the offered tools: policy, readonly, the run vars to fill, and
    for the tools whose calls a person approves (``approval`` patterns) the schema edits must fit."""
    return [ToolInfo(name=s.name, mutating=s.mutating, bound=list(s.bound),
                     input_schema=s.parameters if approval and tool_allowed(s.name, approval) else None)
            for s in specs]


def model_parameters(t: Tool) -> dict[str, Any]:
    """The JSON Schema of ``t``'s input as a model sees it: no title, no bound arguments (nor the
    definitions only they used)."""
    schema = copy.deepcopy(t.json_schema())
    schema.pop("title", None)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    hidden = set(t.bound_arguments)
    if hidden:
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in hidden}
        if "required" in schema:
            schema["required"] = [k for k in schema["required"] if k not in hidden]
        _drop_unused_definitions(schema)
    return schema


def _drop_unused_definitions(schema: dict[str, Any]) -> None:
    """Remove the `$defs` entries nothing outside them refers to any more (transitively)."""
    defs = schema.get("$defs")
    if not defs:
        return
    used: set[str] = set()
    pending = _refs({k: v for k, v in schema.items() if k != "$defs"})
    while pending:
        name = pending.pop()
        if name not in used and name in defs:
            used.add(name)
            pending |= _refs(defs[name])
    kept = {k: v for k, v in defs.items() if k in used}
    if kept:
        schema["$defs"] = kept
    else:
        del schema["$defs"]


def _refs(node: Any) -> set[str]:
    """The `#/$defs/<name>` names referred to inside ``node``."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _unknown(req: LLMTurnRequest, name: str, tools: dict[str, Any], what: str) -> BadRequestError:
    return BadRequestError(
        f"node '{req.node_id}': tool '{name}' {what}; registered tools: {', '.join(sorted(tools))}. "
        "Fix the node's `tools:` list")


class ToolNames:
    """Maps wire names back to registry names for the tools declared on one call."""

    def __init__(self, specs: list[ToolSpec]) -> None:
        self._by_wire: dict[str, str] = {}
        for s in specs:
            wire = wire_name(s.name)
            other = self._by_wire.setdefault(wire, s.name)
            if other != s.name:
                raise BadRequestError(f"tools '{other}' and '{s.name}' have the same name for the model ('{wire}'); "
                                       "offer only one of them")

    def registry_name(self, wire: str) -> str:
        """The registry name of a called tool; an unknown name comes back as the model wrote it
        (the workflow refuses it as not offered, and the model hears why)."""
        return self._by_wire.get(wire, wire)
