"""What each kind of node does, one module per kind, all behind one interface (`base.NodeVisit`).

`GraphRun` starts a node and hands it to the visit this table chooses by the node's kind (a
router's by its mode); `fan_out_all` routers are the exception: they split the walk itself
(`fan_out.visit_all`). `done` and `fail` end the walk and have no visit.
"""

from __future__ import annotations

from dsl import ir
from workflows.nodes import compute, human, join, llm, router, subflow, tool, wait
from workflows.nodes.base import NodeFailed, NodeVisit

VISITS: dict[str, NodeVisit] = {
    "agent": llm.visit,
    "judge": llm.visit,
    "tool": tool.visit,
    "human": human.visit,
    "wait": wait.visit,
    "compute": compute.visit,
    "subbot": subflow.visit,
    "join": join.visit,
    "router:condition": router.visit_condition,
    "router:round_robin": router.visit_round_robin,
    "router:llm": router.visit_llm,
}


def visit_for(node: ir.Node) -> NodeVisit:
    """The visit of ``node``'s kind; a node no visit knows fails (it parks like any failure)."""
    key = f"router:{node.router_mode}" if isinstance(node, ir.RouterNode) else node.kind
    visit = VISITS.get(key)
    if visit is None:
        raise NodeFailed(f"node kind '{node.kind}' cannot be executed")
    return visit
