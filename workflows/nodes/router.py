"""Routers that choose where the walk goes: by condition, in turn (round_robin), or by a model.

A condition router passes its input through and lets its conditional edges choose; the others
choose the edge themselves. (`fan_out_all` routers and multi-route LLM routers start parallel
branches: `fan_out.py`.)
"""

from __future__ import annotations

from typing import Any

from dsl import ir
from workflows.contract import messages as M
from workflows.edges import unconditional_targets
from workflows.nodes.base import NodeFailed, Produced, RunContext, produce
from workflows.nodes.fan_out import fan_out
from workflows.nodes.llm import converse


async def visit_condition(run: RunContext, node: ir.RouterNode, branch: str, node_input: dict[str, Any]) -> str | None:
    async def passthrough() -> Produced:
        return dict(node_input), M.Usage()

    return await produce(run, node, branch, passthrough, counted=True)


async def visit_round_robin(run: RunContext, node: ir.RouterNode, branch: str,
                            node_input: dict[str, Any]) -> str | None:
    """Each visit takes the next unconditional edge in turn (the counter survives continue-as-new)."""
    candidates = unconditional_targets(run.wf, node.id)
    if not candidates:
        raise NodeFailed(f"round_robin router '{node.id}' has no unconditional edge")
    counters = run.state.rr_counters
    idx = counters.get(node.id, 0)
    chosen = candidates[idx % len(candidates)]
    counters[node.id] = idx + 1
    for other in candidates:
        if other.target != chosen.target:
            run.state.outputs.pop(other.target, None)  # stale output of the branch not taken
    run.store_output(node, branch, dict(node_input))
    run.emit("edge_selected", node.id, branch, {"from": node.id, "to": chosen.target, "round_robin_index": idx})
    return chosen.target


async def visit_llm(run: RunContext, node: ir.RouterNode, branch: str, node_input: dict[str, Any]) -> str | None:
    """A model picks one of the outgoing edges' targets (or, `multi`, several: parallel branches)."""
    candidates = [e.target for e in run.wf.edges if e.source == node.id]
    run.check_budget(node.id, before_step=True)
    output, _ = await converse(run, node, branch, node_input, purpose="route", candidates=candidates)
    if node.router_multi:
        chosen = output.get("selected_routes")
        if not (isinstance(chosen, list) and chosen and all(c in candidates for c in chosen)):
            raise NodeFailed(f"llm router '{node.id}' returned selected_routes {chosen!r}; expected a non-empty "
                             f"list drawn from {candidates}", M.ERR_SCHEMA)
        run.store_output(node, branch, output)
        run.record_usage(node.id, M.Usage(), count_iteration=True)
        return await fan_out(run, node, [c for c in candidates if c in chosen], branch)
    target = output.get("selected_route")
    if target not in candidates:
        raise NodeFailed(f"llm router '{node.id}' selected {target!r}, which is not one of {candidates}", M.ERR_SCHEMA)
    run.store_output(node, branch, output)
    run.record_usage(node.id, M.Usage(), count_iteration=True)
    run.emit("edge_selected", node.id, branch, {"from": node.id, "to": target, "reasoning": output.get("reasoning", "")})
    return str(target)
