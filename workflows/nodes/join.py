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
#: Output key of a join behind a `fan_out_each` router: each item's last output, in item order
#: (`{index, item, output}` each; best-effort items that failed are left out and listed as failed).
EACH_RESULTS_KEY = ir.EACH_RESULTS_FIELD


async def visit(run: RunContext, node: ir.JoinNode, branch: str, node_input: dict[str, Any]) -> str | None:
    async def merge() -> Produced:
        out = dict(node_input)
        failed = run.state.outputs.get(node.id, {}).get(FAILED_BRANCHES_KEY)
        if failed:
            out[FAILED_BRANCHES_KEY] = failed
        results = run.state.outputs.get(node.id, {}).get(EACH_RESULTS_KEY)
        if results is not None:
            out[EACH_RESULTS_KEY] = results
        return out, Usage()

    return await produce(run, node, branch, merge, counted=False)
