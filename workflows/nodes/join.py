"""A join node: where parallel branches meet (`fan_out.py` runs them and decides when they have).

By the time a walk reaches the join, its branches are done; the join passes on what its edges
mapped in, plus the branches that failed under `best_effort`.
"""

from __future__ import annotations

from typing import Any

from dsl import ir
from workflows.contract.messages import Usage
from workflows.nodes.base import Produced, RunContext, produce

#: Output key of a join: the best-effort branches that failed (`{branch, node, error}` each).
FAILED_BRANCHES_KEY = "_failed_branches"


async def visit(run: RunContext, node: ir.JoinNode, branch: str, node_input: dict[str, Any]) -> str | None:
    async def merge() -> Produced:
        out = dict(node_input)
        failed = run.state.outputs.get(node.id, {}).get(FAILED_BRANCHES_KEY)
        if failed:
            out[FAILED_BRANCHES_KEY] = failed
        return out, Usage()

    return await produce(run, node, branch, merge, counted=False)
