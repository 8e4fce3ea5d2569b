"""A person approves a model's tool call before it runs (`tool_approval:` on an agent or judge).

The call opens the node's gate (the machinery of `gates.py`: events, notifications, the `answer`
update, answers given in advance, Slack and the API) with the tool's name and arguments. Each call
is its own opening: the gate's id is the node, and the opening's suffix names the model turn and
the call's place in it, so one answer approves exactly one call. The person approves, edits the
arguments (checked against the tool's input schema; a misfit reopens the gate saying why), or
rejects with a message the model reads as the tool's result and then continues.

`--skip-gates` never answers these openings: it approves human gates only, and a run's tool calls
are exactly what a person asked to see (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from dsl import ir
from workflows.contract import messages as M
from workflows.contract.answers import interaction_id
from workflows.contract.tool_approval import DEFAULT_REJECTION, TOOL_APPROVAL_SCHEMA, arguments_problem
from workflows.nodes.base import RunContext
from workflows.nodes.gates import wait_for_answer

#: The `workflow.patched` id of tool call approval. Runs recorded before it had no node with
#: `tool_approval`, so it is asked only when a call needs approval and changes nothing for them.
PATCH = "tool-call-approval"


async def review_tool_call(run: RunContext, node: ir.Node, branch: str, call: M.ToolCall, info: M.ToolInfo, *,
                           opening: str) -> M.ToolCall | M.ChatMessage:
    """Wait for a person's decision on ``call``: the call to run (its arguments perhaps edited), or
    the rejection to give the model as the tool's result. ``opening`` tells this call's opening
    apart from the node's other calls in the same visit (e.g. `.tool2.1`: turn 2, first call)."""
    workflow.patched(PATCH)
    refused = ""
    attempt = 0
    while True:
        attempt += 1
        suffix = opening if attempt == 1 else f"{opening}.{attempt}"
        questions: dict[str, Any] = {"tool": call.name, "arguments": call.arguments}
        if refused:
            questions["previous_edit_refused"] = refused
        previous = run.state.nodes[node.id].status
        answers = await wait_for_answer(
            run, node, branch, questions, TOOL_APPROVAL_SCHEMA,
            instructions=(f"{node.id} wants to call tool {call.name}: approve it, edit its arguments "
                          "(decision=edit, arguments={…}), or reject it with a message for the model"),
            opening=suffix, source={"source": "tool_approval", "tool": call.name})
        run.state.nodes[node.id].status = previous
        by = _answered_by(run, node, suffix)
        decision = answers["decision"]
        note = {"note": answers["message"]} if answers["message"] else {}
        if decision == "approve":
            run.emit("tool_call_reviewed", node.id, branch,
                     {"tool": call.name, "decision": "approved", "by": by, **note})
            return call
        if decision == "reject":
            message = answers["message"] or DEFAULT_REJECTION
            run.emit("tool_call_reviewed", node.id, branch,
                     {"tool": call.name, "decision": "rejected", "by": by, "message": message})
            return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name,
                                 text=f"error: the tool did not run; a person ({by}) rejected the call: {message}",
                                 is_error=True)
        edited: dict[str, Any] = answers["arguments"]
        problem = arguments_problem(edited, info.input_schema)
        if problem:  # ask again: the person made a mistake, the model did nothing wrong
            refused = f"the edited arguments do not fit tool {call.name}'s input schema: {problem}"
            run.emit("tool_call_reviewed", node.id, branch,
                     {"tool": call.name, "decision": "edit_refused", "by": by, "error": refused})
            continue
        run.emit("tool_call_reviewed", node.id, branch,
                 {"tool": call.name, "decision": "edited", "by": by, "arguments": edited, **note})
        return call.model_copy(update={"arguments": edited})


def _answered_by(run: RunContext, node: ir.Node, suffix: str) -> str:
    """Who answered the opening (its record was just added to the run's answers)."""
    iid = interaction_id(workflow.info().workflow_id, node.id, run.state.nodes[node.id].visits) + suffix
    record = next((r for r in reversed(run.state.answers) if r.interaction_id == iid), None)
    return record.answered_by if record is not None else ""
