"""Draw a compiled workflow as a Mermaid flowchart.

Three views trade detail for readability: ``compact`` shows the graph's shape, ``detailed`` adds
each node's key settings and edge data, ``full`` adds expanded schemas and a metadata box (vars,
budget, loops). The format follows Iterion's ``ToMermaid`` (reference §7) so diagrams look the same,
except that the output is fully deterministic (``class`` lines in kind order) and labels are
escaped so a ``"`` in a command or model cannot break the Mermaid syntax.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from .ir import (
    AgentNode,
    ComputeNode,
    Edge,
    HumanNode,
    JoinNode,
    Node,
    RouterNode,
    SubbotNode,
    TerminalNode,
    ToolNode,
    WaitNode,
    Workflow,
)

VIEWS = ("compact", "detailed", "full")

#: Node kinds in the order their classDef / class lines are written.
KIND_ORDER = ("agent", "judge", "router", "join", "human", "tool", "wait", "compute", "subbot", "done", "fail")

ICONS = {
    "agent": "🤖",
    "judge": "⚖️",
    "router": "🔀",
    "join": "🔗",
    "human": "👤",
    "tool": "🔧",
    "wait": "⏳",
    "compute": "🧮",
    "subbot": "📦",
    "done": "✅",
    "fail": "❌",
}

CLASS_DEFS = {
    "agent": "fill:#4A90D9,stroke:#2C5F8A,color:#fff",
    "judge": "fill:#7B68EE,stroke:#5A4CB5,color:#fff",
    "router": "fill:#F5A623,stroke:#C47D0E,color:#fff",
    "join": "fill:#20B2AA,stroke:#147A74,color:#fff",
    "human": "fill:#FF6B6B,stroke:#CC4444,color:#fff",
    "tool": "fill:#A0522D,stroke:#6E3720,color:#fff",
    "wait": "fill:#95A5A6,stroke:#6C7A7B,color:#fff",
    "compute": "fill:#34495E,stroke:#1F2D3A,color:#fff",
    "subbot": "fill:#8E44AD,stroke:#5E2D73,color:#fff",
    "done": "fill:#2ECC71,stroke:#1A8B4C,color:#fff",
    "fail": "fill:#E74C3C,stroke:#A93226,color:#fff",
}

#: At most this many fields are spelled out when a schema is expanded (full view).
MAX_SCHEMA_FIELDS = 4

_INDENT = "    "


def to_mermaid(workflow: Workflow, view: str = "compact") -> str:
    """Render ``workflow`` as Mermaid ``flowchart TD`` text in the given view.

    Raises ValueError for an unknown view so callers can report a usage error instead of silently
    drawing something other than what was asked for.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown diagram view {view!r}; valid views: {', '.join(VIEWS)}")

    out: list[str] = ["flowchart TD\n"]
    if view == "full":
        out.extend(_metadata(workflow))

    for node_id in sorted(workflow.nodes, key=_byte_key):
        out.append(_INDENT + _node_line(workflow, workflow.nodes[node_id], view) + "\n")
    out.append("\n")

    for edge in workflow.edges:
        out.append(_INDENT + _edge_line(workflow, edge, view) + "\n")
    out.append("\n")

    for kind in KIND_ORDER:
        out.append(f"{_INDENT}classDef {kind} {CLASS_DEFS[kind]}\n")
    by_kind: dict[str, list[str]] = {}
    for node_id in sorted(workflow.nodes, key=_byte_key):
        by_kind.setdefault(workflow.nodes[node_id].kind, []).append(_mermaid_id(node_id))
    for kind in KIND_ORDER:
        if kind in by_kind:
            out.append(f"{_INDENT}class {','.join(by_kind[kind])} {kind}\n")
    return "".join(out)


# -- helpers -----------------------------------------------------------------------------------


def _byte_key(text: str) -> bytes:
    """Sort like Go's string comparison (byte-wise UTF-8), not by code point surprises."""
    return text.encode("utf-8")


def _mermaid_id(node_id: str) -> str:
    """Mermaid ids cannot contain `-`; labels keep the original spelling."""
    return node_id.replace("-", "_")


def _escape(text: str) -> str:
    """Make text safe inside a double-quoted Mermaid label."""
    return text.replace('"', "#quot;")


def _schema(workflow: Workflow, name: str, expand: bool) -> str:
    """A schema name, or in the full view `NAME (f: type, …, +K more)` so readers see its shape."""
    if not expand:
        return name
    schema = workflow.schemas.get(name)
    if schema is None or not schema.fields:
        return name
    parts: list[str] = []
    for f in schema.fields[:MAX_SCHEMA_FIELDS]:
        part = f"{f.name}: {f.type}"
        if f.enum_values:
            part += " [" + "|".join(f.enum_values) + "]"
        parts.append(part)
    extra = len(schema.fields) - MAX_SCHEMA_FIELDS
    if extra > 0:
        parts.append(f"+{extra} more")
    return f"{name} ({', '.join(parts)})"


def _agent_lines(workflow: Workflow, node: AgentNode, view: str) -> list[str]:
    full = view == "full"
    lines: list[str] = []
    if node.model:
        lines.append(f"model: {node.model}")
    if full and node.backend:
        lines.append(f"backend: {node.backend}")
    if node.input_schema:
        lines.append(f"in: {_schema(workflow, node.input_schema, full)}")
    if node.output_schema:
        lines.append(f"out: {_schema(workflow, node.output_schema, full)}")
    if node.publish:
        lines.append(f"publish: {node.publish}")
    if node.tool_approval:  # a person is asked mid-node: worth seeing in every view
        lines.append(f"tool_approval: {', '.join(node.tool_approval)}")
    if full:
        lines.append(f"session: {node.session}")
        if node.system_prompt:
            lines.append(f"system: {node.system_prompt}")
        if node.user_prompt:
            lines.append(f"user: {node.user_prompt}")
        if node.tools:
            lines.append(f"tools: {', '.join(node.tools)}")
        if node.tool_max_steps > 0:
            lines.append(f"tool_max_steps: {node.tool_max_steps}")
        if node.reasoning_effort:
            lines.append(f"reasoning_effort: {node.reasoning_effort}")
        if node.max_tokens is not None:
            lines.append(f"max_tokens: {node.max_tokens}")
    else:
        if node.session != "fresh":
            lines.append(f"session: {node.session}")
        if node.interaction != "none":
            lines.append(f"interaction: {node.interaction}")
    return lines


def _router_lines(workflow: Workflow, node: RouterNode, view: str) -> list[str]:
    if node.router_mode in ("fan_out_each", "foreach"):
        return [f"mode: {node.router_mode}", f"over: {node.over}"] + (
            [f"parallelism: {node.parallelism}"] if node.parallelism else [])
    return [f"mode: {node.router_mode}"]


def _join_lines(workflow: Workflow, node: JoinNode, view: str) -> list[str]:
    lines = [f"strategy: {node.await_mode}"]
    if node.require:
        lines.append(f"require: {', '.join(node.require)}")
    if view == "full" and node.output_schema:
        lines.append(f"out: {_schema(workflow, node.output_schema, True)}")
    return lines


def _human_lines(workflow: Workflow, node: HumanNode, view: str) -> list[str]:
    lines = [f"interaction: {node.interaction}"]
    if view == "full":
        if node.model:
            lines.append(f"model: {node.model}")
        if node.input_schema:
            lines.append(f"in: {_schema(workflow, node.input_schema, True)}")
        if node.output_schema:
            lines.append(f"out: {_schema(workflow, node.output_schema, True)}")
        if node.instructions:
            lines.append(f"instructions: {node.instructions}")
    if node.min_answers > 0:
        lines.append(f"min_answers: {node.min_answers}")
    if node.timeout:
        lines.append(f"timeout: {node.timeout}")
    return lines


def _tool_lines(workflow: Workflow, node: ToolNode, view: str) -> list[str]:
    lines: list[str] = []
    if node.command:
        lines.append(f"cmd: {node.command}")
    elif node.call:
        lines.append(f"call: {node.call}")
    elif node.script:
        lines.append(f"{node.language} script")
    if view == "full" and node.output_schema:
        lines.append(f"out: {_schema(workflow, node.output_schema, True)}")
    if node.publish:
        lines.append(f"publish: {node.publish}")
    return lines


def _wait_lines(workflow: Workflow, node: WaitNode, view: str) -> list[str]:
    return [f"duration: {node.duration}"] if node.duration else []


def _compute_lines(workflow: Workflow, node: ComputeNode, view: str) -> list[str]:
    """Detailed: the computed fields; full: each with its expression."""
    if view == "full":
        lines = [f"{f.key} = {f.expression.source}" for f in node.fields]
    else:
        lines = ["computes: " + ", ".join(f.key for f in node.fields)] if node.fields else []
    if view == "full" and node.output_schema:
        lines.append(f"out: {_schema(workflow, node.output_schema, True)}")
    return lines


_DETAIL: dict[type, Callable[[Workflow, Node, str], list[str]]] = {
    AgentNode: _agent_lines,  # type: ignore[dict-item]
    RouterNode: _router_lines,  # type: ignore[dict-item]
    JoinNode: _join_lines,  # type: ignore[dict-item]
    HumanNode: _human_lines,  # type: ignore[dict-item]
    ToolNode: _tool_lines,  # type: ignore[dict-item]
    WaitNode: _wait_lines,  # type: ignore[dict-item]
    ComputeNode: _compute_lines,  # type: ignore[dict-item]
    SubbotNode: lambda workflow, node, view: [f"runs: {node.bot}"],  # type: ignore[attr-defined]
}


def _node_line(workflow: Workflow, node: Node, view: str) -> str:
    """One node: its shape says its kind at a glance, the label carries the view's details."""
    lines = [f"{ICONS[node.kind]} {node.id}"]
    if view != "compact":
        detail = _DETAIL.get(type(node))
        if detail is not None:
            lines.extend(detail(workflow, node, view))
        # A join's await mode is its strategy, already shown.
        if node.await_mode != "none" and not isinstance(node, JoinNode):
            lines.append(f"await: {node.await_mode}")
    label = _escape("<br/>".join(lines))
    nid = _mermaid_id(node.id)
    if isinstance(node, TerminalNode):
        return f'{nid}(["{label}"])'
    if isinstance(node, RouterNode):
        return f'{nid}{{"{label}"}}'
    if isinstance(node, HumanNode):
        return f'{nid}>"{label}"]'
    if isinstance(node, JoinNode):
        return f'{nid}{{{{"{label}"}}}}'
    if isinstance(node, WaitNode):
        return f'{nid}[/"{label}"/]'
    if isinstance(node, ComputeNode):
        return f'{nid}[\\"{label}"/]'
    if isinstance(node, SubbotNode):
        return f'{nid}[["{label}"]]'  # a subroutine: a whole workflow behind one step
    if node.await_mode != "none":
        return f'{nid}[["{label}"]]'
    return f'{nid}["{label}"]'


def _edge_line(workflow: Workflow, edge: Edge, view: str) -> str:
    """One edge; its label shows when it fires, which loop it belongs to and (detailed) its data."""
    parts: list[str] = []
    if edge.condition:
        parts.append(f"NOT {edge.condition}" if edge.negated else edge.condition)
    if edge.expression is not None:
        parts.append(edge.expression.source.replace("|", "#124;"))  # a bare | would end the label
    if edge.is_else:
        parts.append("else")
    if edge.loop_name:
        loop = workflow.loops.get(edge.loop_name)
        count = "" if loop is None else f"({loop.bound.source})" if loop.bound is not None else f"({loop.max_iterations})"
        parts.append(f"loop:{edge.loop_name}{count}")
    source = workflow.nodes.get(edge.source)
    if isinstance(source, RouterNode) and source.router_mode == "fan_out_each":
        parts.append(f"each of {source.over}")
    elif isinstance(source, RouterNode) and source.router_mode == "foreach":
        parts.append(f"each of {source.over}, in order")  # one item at a time  # the edge every item takes, shown in every view
    if view != "compact" and edge.with_:
        parts.append("with: " + ", ".join(f"{m.key}={m.raw}" for m in edge.with_))
    src, dst = _mermaid_id(edge.source), _mermaid_id(edge.target)
    if not parts:
        return f"{src} --> {dst}"
    return f'{src} -->|"{_escape(" / ".join(parts))}"| {dst}'


def _format_value(value: object) -> str:
    """A var default as a reader would write it: strings raw, bools lower-case, floats shortest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _format_float(value: float) -> str:
    """Shortest round-trip form without a trailing `.0`, as Go's `%v` prints it."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _metadata(workflow: Workflow) -> list[str]:
    """The full view's box of workflow-wide settings; omitted when there is nothing to show."""
    entries: list[str] = []
    if workflow.vars:
        lines = ["<b>Variables</b>"]
        for name in sorted(workflow.vars, key=_byte_key):
            var = workflow.vars[name]
            line = f"{var.name}: {var.type}"
            if var.has_default:
                line += f" = {_format_value(var.default)}"
            lines.append(line)
        entries.append(f'meta_vars["{_escape("<br/>".join(lines))}"]')

    budget = workflow.budget
    if budget is not None:
        lines = ["<b>Budget</b>"]
        if budget.max_parallel_branches:
            lines.append(f"max_parallel: {budget.max_parallel_branches}")
        if budget.max_duration:
            lines.append(f"max_duration: {budget.max_duration}")
        if budget.max_cost_usd:
            lines.append(f"max_cost: ${budget.max_cost_usd:.2f}")
        if budget.max_tokens:
            lines.append(f"max_tokens: {budget.max_tokens}")
        if budget.max_iterations:
            lines.append(f"max_iterations: {budget.max_iterations}")
        if len(lines) > 1:
            entries.append(f'meta_budget["{_escape("<br/>".join(lines))}"]')

    if workflow.loops:
        lines = ["<b>Loops</b>"]
        for name in sorted(workflow.loops, key=_byte_key):
            loop = workflow.loops[name]
            lines.append(f"{name}: max {loop.bound.source if loop.bound is not None else loop.max_iterations}")
        entries.append(f'meta_loops["{_escape("<br/>".join(lines))}"]')

    if not entries:
        return []
    title = workflow.name + (f" (entry: {workflow.entry})" if workflow.entry else "")
    out = [f'{_INDENT}subgraph workflow_meta["{_escape(title)}"]\n', f"{_INDENT * 2}direction LR\n"]
    out.extend(f"{_INDENT * 2}{entry}\n" for entry in entries)
    out.append(f"{_INDENT}end\n")
    out.append("\n")
    return out
