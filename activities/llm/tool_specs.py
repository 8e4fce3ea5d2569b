"""Which tools a model may call on a turn, described the way models read them.

A node's `tools:` names resolve against the builtin registry (`activities/tools/registry.py`):
its description and the JSON Schema of its pydantic input model are what the model sees. A name
ending in `.*` takes every registered tool of that namespace. The workflow's policy (the node's
`tool_policy`, else the workflow's) and `readonly` then decide what is offered: a tool the policy
denies, or a mutating tool on a readonly node, is never shown to the model (the workflow checks
again before running any call).

Registry names may hold dots (`mcp.github.create_issue`) that model APIs refuse in tool names;
`wire_tool_name` turns them into underscores and `ToolNames` maps a model's call back.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.llm.provider import ToolSpec
from activities.tools.registry import registry
from workflows.messages import ERR_BAD_REQUEST, LLMTurnRequest, ToolInfo
from workflows.scheduler import tool_allowed


def node_tools(req: LLMTurnRequest, *, skip_unknown: bool = False) -> list[ToolSpec]:
    """The node's declared tools, in declared order (stable, so prompt caches keep hitting).

    An unknown name is a permanent `BadRequest` naming node and tool, unless ``skip_unknown``
    (offline runs: a scripted model calls only what its script says, and examples may name tools
    that only exist where they are deployed, such as MCP servers' tools)."""
    tools = registry()
    specs: list[ToolSpec] = []
    for name in req.tools:
        if name.endswith(".*"):
            matched = sorted(n for n in tools if n.startswith(name[:-1]))
            if not matched and not skip_unknown:
                raise _unknown(req, name, tools, "matches no registered tool")
        elif name in tools:
            matched = [name]
        elif skip_unknown:
            matched = []
        else:
            raise _unknown(req, name, tools, "is not a registered tool")
        for n in matched:
            if all(s.name != n for s in specs):
                t = tools[n]
                specs.append(ToolSpec(name=n, description=t.description or n, parameters=_parameters(t.json_schema()),
                                      mutating=t.mutating))
    return specs


def permitted_tools(specs: list[ToolSpec], req: LLMTurnRequest) -> list[ToolSpec]:
    """The tools the policy and readonly allow; the model never sees the others."""
    return [s for s in specs if tool_allowed(s.name, req.tool_policy) and not (req.readonly and s.mutating)]


def tool_infos(specs: list[ToolSpec]) -> list[ToolInfo]:
    return [ToolInfo(name=s.name, mutating=s.mutating) for s in specs]


def _parameters(schema: dict[str, Any]) -> dict[str, Any]:
    schema = {k: v for k, v in schema.items() if k != "title"}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _unknown(req: LLMTurnRequest, name: str, tools: dict[str, Any], what: str) -> ApplicationError:
    return ApplicationError(
        f"node '{req.node_id}': tool '{name}' {what}; registered tools: {', '.join(sorted(tools))}. "
        "Fix the node's `tools:` list", type=ERR_BAD_REQUEST, non_retryable=True)


def wire_tool_name(name: str) -> str:
    """A registry name as model APIs accept it (`^[A-Za-z0-9_-]{1,64}$`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "_"


class ToolNames:
    """Maps wire names back to registry names for the tools declared on one call."""

    def __init__(self, specs: list[ToolSpec]) -> None:
        self._by_wire: dict[str, str] = {}
        for s in specs:
            wire = wire_tool_name(s.name)
            other = self._by_wire.setdefault(wire, s.name)
            if other != s.name:
                raise ApplicationError(f"tools '{other}' and '{s.name}' have the same name for the model ('{wire}'); "
                                       "offer only one of them", type=ERR_BAD_REQUEST, non_retryable=True)

    def registry_name(self, wire: str) -> str:
        """The registry name of a called tool; an unknown name comes back as the model wrote it
        (the workflow refuses it as not offered, and the model hears why)."""
        return self._by_wire.get(wire, wire)
