"""Parallel branches: a `fan_out_all` router, or the routes a multi-route LLM router chose.

Each branch is a walk of its own (`RunContext.walk`) that stops where the branches converge
(`workflows.convergence`); the convergence node's strategy decides what a failed branch means:
under `wait_all` a branch that reaches `fail` fails the run, under `best_effort` the join goes on
and its output lists the failed branches. At most `max_parallel_branches` run at a time.
"""

from __future__ import annotations

import asyncio

from dsl import ir
from workflows.convergence import convergence_strategy, find_convergence
from workflows.inputs import build_input
from workflows.nodes.base import RunContext, StopRun, WalkEnd
from workflows.nodes.join import FAILED_BRANCHES_KEY


async def visit_all(run: RunContext, router: ir.RouterNode, branch: str) -> str | None:
    """A `fan_out_all` router: every outgoing edge starts a branch.

    It splits the walk rather than being a step of it: no `node_started`, nothing to park.
    """
    targets = [e.target for e in run.wf.edges if e.source == router.id]
    run.state.nodes[router.id].visits += 1
    run.store_output(router, branch, build_input(run.wf, router.id, run.data))
    return await fan_out(run, router, targets, branch)


async def fan_out(run: RunContext, router: ir.RouterNode, targets: list[str], branch: str) -> str | None:
    """Run a branch from each of ``targets``; return the convergence node (None: nowhere to meet)."""
    if not targets:
        raise StopRun("failed", f"router '{router.id}' has no outgoing edges", router.id)
    convergence = find_convergence(run.wf, targets)
    strategy = convergence_strategy(run.wf, convergence) if convergence else "wait_all"
    budget = run.wf.budget
    limit = budget.max_parallel_branches if budget and 0 < budget.max_parallel_branches < len(targets) else len(targets)
    semaphore = asyncio.Semaphore(limit)
    run.emit("fan_out", router.id, branch, {"targets": targets, "convergence": convergence or "",
                                            "strategy": strategy, "max_parallel": limit})

    async def run_branch(target: str) -> WalkEnd:
        async with semaphore:
            name = f"{branch + '/' if branch else ''}{router.id}>{target}"
            run.emit("branch_started", target, name)
            end = await run.walk(target, branch=name, stop_at=convergence, tolerate=strategy == "best_effort")
            run.emit("branch_failed" if end.kind == "failed" else "branch_finished", end.node, name,
                     {"error": end.error} if end.error else {})
            return end

    tasks = [asyncio.create_task(run_branch(t)) for t in targets]
    try:
        ends = await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    failed = [{"branch": t, "node": e.node, "error": e.error} for t, e in zip(targets, ends) if e.kind == "failed"]
    if failed and strategy == "wait_all":
        # Node failures park (and are retried) inside their branch; what ends a branch as failed
        # under wait_all is reaching `fail`, which fails the whole fan-out.
        raise StopRun("failed", f"branch {failed[0]['branch']} of '{router.id}' failed: {failed[0]['error']}",
                      failed[0]["node"])
    if convergence is None:
        return None
    if failed:
        run.state.outputs.setdefault(convergence, {})[FAILED_BRANCHES_KEY] = failed
    run.emit("join_ready", convergence, branch, {"strategy": strategy, "failed_branches": failed})
    return convergence
