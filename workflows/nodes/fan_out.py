"""Parallel branches: a `fan_out_all` router, the routes a multi-route LLM router chose, or one
branch per item of a list (`fan_out_each`).

Each branch is a walk of its own (`RunContext.walk`) that stops where the branches converge
(`workflows.convergence`); the convergence node's strategy decides what a failed branch means:
under `wait_all` a branch that reaches `fail` fails the run (a failing node parks, as anywhere),
under `best_effort` the join goes on and its output lists the failed branches. At most
`max_parallel_branches` (a `fan_out_each` router's `parallelism`) run at a time.

A `fan_out_each` branch runs the same nodes as its siblings, so what its nodes produce must not be
seen by the others: each branch task holds an `EachScope` (a context variable, which asyncio copies
into every task a branch starts) where its nodes' outputs are kept, over the run's outputs. The
join receives the branches' last outputs in item order (`EACH_RESULTS_KEY`).

A `foreach` router is the sequential counterpart: the same item branches and scopes, run one after
another in list order, each item's router output adding `results` (the items finished before it),
so an item can build on the ones before. Under `wait_all` an item that reaches `fail` stops the
items after it; a failing node parks its item, and `iterloop retry` goes on from there.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from dsl import ir
from dsl.templates import MISSING, TemplateError, evaluate_mapping
from workflows.convergence import convergence_strategy, find_convergence
from workflows.inputs import build_input
from workflows.nodes.base import RunContext, StopRun, WalkEnd
from workflows.nodes.join import EACH_RESULTS_KEY, FAILED_BRANCHES_KEY


@dataclass
class EachScope:
    """What one `fan_out_each` branch sees beyond the run: its item, and its own nodes' outputs.

    ``outputs`` starts with the router's output for this item (`item`, `index`, `count`, `first`,
    `last`), so the body's edge reads the item as `{{input.item}}`; ``last`` is the output the
    branch produced last, which the join collects.
    """

    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    last: dict[str, Any] | None = None


#: The `fan_out_each` branch the current asyncio task runs in (None: not in one). The variable
#: itself holds no state: each task has its own copy of the context, and only branch tasks set it.
EACH_SCOPE: ContextVar[EachScope | None] = ContextVar("iterloop_each_scope", default=None)


def outputs_in_scope(outputs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The outputs templates see: the run's, under the current `fan_out_each` branch's own."""
    scope = EACH_SCOPE.get()
    return outputs if scope is None else {**outputs, **scope.outputs}


def keep_in_branch(node_id: str, output: dict[str, Any]) -> bool:
    """Keep a node's output in the current `fan_out_each` branch (True), or not in one (False)."""
    scope = EACH_SCOPE.get()
    if scope is None:
        return False
    scope.outputs[node_id] = output
    scope.last = output
    return True


async def visit_all(run: RunContext, router: ir.RouterNode, branch: str) -> str | None:
    """A `fan_out_all` router: every outgoing edge starts a branch.

    It splits the walk rather than being a step of it: no `node_started`, nothing to park.
    """
    targets = [e.target for e in run.wf.edges if e.source == router.id]
    run.state.nodes[router.id].visits += 1
    run.store_output(router, branch, build_input(run.wf, router.id, run.data))
    return await fan_out(run, router, targets, branch)


async def visit_each(run: RunContext, router: ir.RouterNode, branch: str, *,
                     sequential: bool = False) -> str | None:
    """A `fan_out_each` router: one branch per item of the list `over` names, all at its one edge's target
    (``sequential``: a `foreach` router's, one item after another)."""
    run.state.nodes[router.id].visits += 1
    node_input = build_input(run.wf, router.id, run.data)
    try:
        items = evaluate_mapping(router.over, run.data.lookup(node_input))
    except TemplateError:
        items = MISSING
    if not isinstance(items, list):
        found = "nothing (the reference has no value yet)" if items is MISSING or items == router.over else \
            f"a {type(items).__name__}: {str(items)[:200]!r}"
        raise StopRun("failed", f"{router.router_mode} router '{router.id}': 'over: {router.over}' must be a list; "
                      f"found {found}. Make the node or var it names produce a JSON list.", router.id)
    run.store_output(router, branch, {"count": len(items)})
    targets = [e.target for e in run.wf.edges if e.source == router.id]
    return await fan_out(run, router, targets[:1], branch, items=items, sequential=sequential)


async def visit_foreach(run: RunContext, router: ir.RouterNode, branch: str) -> str | None:
    """A `foreach` router: `visit_each`, one item at a time in list order (see the module docstring)."""
    return await visit_each(run, router, branch, sequential=True)


async def fan_out(run: RunContext, router: ir.RouterNode, targets: list[str], branch: str, *,
                  items: list[Any] | None = None, sequential: bool = False) -> str | None:
    """Run a branch from each of ``targets`` (or, given ``items``, one per item from ``targets[0]``);
    return the convergence node (None: nowhere to meet)."""
    if not targets:
        raise StopRun("failed", f"router '{router.id}' has no outgoing edges", router.id)
    convergence = find_convergence(run.wf, targets)
    strategy = convergence_strategy(run.wf, convergence) if convergence else "wait_all"
    starts = targets if items is None else [targets[0]] * len(items)
    budget = run.wf.budget
    cap = router.parallelism or (budget.max_parallel_branches if budget else 0)
    limit = 1 if sequential else cap if 0 < cap < len(starts) else len(starts)
    semaphore = asyncio.Semaphore(max(1, limit))
    detail: dict[str, Any] = {"targets": targets, "convergence": convergence or "", "strategy": strategy,
                              "max_parallel": limit}
    if items is not None:
        detail["items"] = len(items)
    run.emit("fan_out", router.id, branch, detail)
    scopes: list[EachScope | None] = [None] * len(starts)
    ends: list[WalkEnd] = []

    async def run_branch(i: int, target: str) -> WalkEnd:
        async with semaphore:
            name = f"{branch + '/' if branch else ''}{router.id}>{target}"
            if items is not None:
                name += f"[{i}]"
                parent = EACH_SCOPE.get()
                scope = EachScope(outputs=dict(parent.outputs) if parent else {})
                scope.outputs[router.id] = {"item": items[i], "index": i, "count": len(items),
                                            "first": i == 0, "last": i == len(items) - 1}
                if sequential:  # `foreach`: the items before this one, as the join will list them
                    scope.outputs[router.id]["results"] = _results(items, scopes[:i], ends)
                EACH_SCOPE.set(scope)  # this task's own context: its siblings never see it
                scopes[i] = scope
            run.emit("branch_started", target, name)
            end = await run.walk(target, branch=name, stop_at=convergence, tolerate=strategy == "best_effort")
            run.emit("branch_failed" if end.kind == "failed" else "branch_finished", end.node, name,
                     {"error": end.error} if end.error else {})
            return end

    if sequential:
        for i, t in enumerate(starts):  # a task per item still gives each its own EACH_SCOPE
            ends.append(await asyncio.create_task(run_branch(i, t)))
            if ends[-1].kind == "failed" and strategy == "wait_all":
                break  # the items after a failed one never start
    else:
        tasks = [asyncio.create_task(run_branch(i, t)) for i, t in enumerate(starts)]
        try:
            ends = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
    failed = [{"branch": t, "node": e.node, "error": e.error} for t, e in zip(starts, ends) if e.kind == "failed"]
    if items is not None:
        for entry, i in zip(failed, [i for i, e in enumerate(ends) if e.kind == "failed"]):
            entry.update(index=i, item=items[i])
    if failed and strategy == "wait_all":
        # Node failures park (and are retried) inside their branch; what ends a branch as failed
        # under wait_all is reaching `fail`, which fails the whole fan-out.
        raise StopRun("failed", f"branch {failed[0]['branch']} of '{router.id}' failed: {failed[0]['error']}",
                      failed[0]["node"])
    if convergence is None:
        return None
    if failed:
        run.state.outputs.setdefault(convergence, {})[FAILED_BRANCHES_KEY] = failed
    if items is not None:
        run.state.outputs.setdefault(convergence, {})[EACH_RESULTS_KEY] = _results(items, scopes, ends)
    run.emit("join_ready", convergence, branch, {"strategy": strategy, "failed_branches": failed})
    return convergence


def _results(items: list[Any], scopes: list[EachScope | None], ends: list[WalkEnd]) -> list[dict[str, Any]]:
    """The finished items' results in item order: what the join collects (and a `foreach` item reads)."""
    return [{"index": i, "item": items[i], "output": scope.last if scope and scope.last is not None else {}}
            for i, (scope, end) in enumerate(zip(scopes, ends)) if end.kind != "failed"]
