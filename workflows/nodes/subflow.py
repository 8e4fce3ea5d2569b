"""A `subbot` node: another workflow run as one step, as a Temporal child workflow.

The child is a `GraphRun` of its own (its own history, status, search attributes: `iterloop list`
and the Web UI show it as a run), with the workflow id `PARENT-NODE-VISIT`, so each visit (and
each retry, which is a new visit) is a new child. Its IR was compiled when the parent started
(`dsl.subbots`) and travels in the node; its vars are the node's input (the incoming edge's
`with` mapping), its budget the node's `budget:` or else the child file's own. Cancelling the
parent cancels the child (`ParentClosePolicy.REQUEST_CANCEL`). The node's output is the child's
outputs (node → output), so a later edge reads `{{outputs.SUBBOT.CHILD_NODE.FIELD}}`; the
child's usage counts in the parent's budget too. `_run` in the output is the child's run id.

A child that ends in any status but `finished` (it failed, was cancelled or terminated, ran out
of budget) fails the node, which parks like any node: `iterloop retry` starts a new child.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from dsl import ir
from workflows.contract.state import RunInput, RunResult
from workflows.contract.vocabulary import WORKFLOW_TYPE
from workflows.nodes.base import NodeFailed, Produced, RunContext, produce

#: Output key of a subbot node: the child run's workflow id (`iterloop inspect` it).
CHILD_RUN_KEY = "_run"


async def visit(run: RunContext, node: ir.SubbotNode, branch: str, node_input: dict[str, Any]) -> str | None:
    child_wf = node.workflow
    if child_wf is None:
        raise NodeFailed(f"subbot '{node.id}' has no compiled workflow for bot {node.bot!r}: it is compiled when "
                         "the run starts from its file (iterloop run FILE); start the run from the file again")
    if node.budget is not None:
        child_wf = child_wf.model_copy(update={"budget": node.budget})

    async def run_child() -> Produced:
        visit_no = run.state.nodes[node.id].visits
        child_id = f"{workflow.info().workflow_id}-{node.id}-{visit_no}"
        # A child out of budget ends (its node parks in the parent, as docs/language.md says): the
        # parent is the run a person watches and raises or retries, not a child waiting of its own.
        options = run.options.model_copy(update={"stop_after": [], "notify": None, "on_budget": "end"})
        try:
            result: RunResult = await workflow.execute_child_workflow(
                WORKFLOW_TYPE, RunInput(workflow=child_wf, run_inputs=node_input, source=node.bot, options=options),
                id=child_id, result_type=RunResult, parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL)
        except ChildWorkflowError as err:
            cause = err.cause
            raise NodeFailed(f"subbot '{node.id}': child run {child_id} ({node.bot}) did not finish: "
                             f"{cause.message if cause is not None and hasattr(cause, 'message') else err}; "
                             f"retry the node to start it again") from None
        if result.status != "finished":
            raise NodeFailed(f"subbot '{node.id}': child run {child_id} ({node.bot}) ended {result.status}: "
                             f"{result.reason}; see iterloop inspect {child_id}, then retry the node")
        return {**result.outputs, CHILD_RUN_KEY: child_id}, result.usage

    return await produce(run, node, branch, run_child, counted=True)
