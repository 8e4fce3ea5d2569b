"""A delegated agent or judge: the node's work handed to a coding agent's CLI (`backend:`).

One `iterloop.delegate` activity per attempt: the CLI works on its own (many model turns, its own
tools) in the run's working directory and returns the answer, usage and its session id. The
workflow renders the prompts as for a model node, records usage into the budget, turns the
streamed steps into `delegate_step` events, asks for a repair (resuming the CLI's session) when
the answer does not match the output schema, and keeps the CLI's session so a later delegated
node with `session: inherit|fork` continues it. A delegated node that is not `readonly` may
change the workspace, so it holds the workspace lock like a mutating agent.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio import workflow

from dsl import ir
from workflows import metrics
from workflows import sessions as Sessions
from workflows.contract import activities as A
from workflows.contract import messages as M
from workflows.contract.delegation import (
    DELEGATE_BACKENDS,
    MAX_INTERACTIONS,
    DelegateBackend,
    DelegateRequest,
    DelegateResult,
)
from workflows.contract.scripts import script_for_node
from workflows.inputs import as_text, placed_input_tokens, prompt_body, render_text
from workflows.nodes.base import NodeFailed, Produced, RunContext, heartbeat_interval, produce
from workflows.nodes.gates import wait_for_answer
from workflows.nodes.mcp_tools import node_mcp_servers

#: The `workflow.patched` id of delegation: runs recorded before it ran these nodes as model calls.
PATCH = "delegation-backends"
#: How a CLI's session is kept in the run's sessions (beside model conversations' artifact refs).
SESSION_PREFIX = "delegate:"
#: The `workflow.patched` id of a delegated agent asking a person (`interaction:`) and of the CLI's
#: turn limit (`tool_max_steps`): runs recorded before it sent neither.
INTERACTION_PATCH = "delegated-interaction"


def delegation_backend(run: RunContext, node: ir.Node) -> DelegateBackend | None:
    """The backend an agent or judge delegates to, or None (a model node, or an unknown backend
    name, which C111 warns about and which keeps calling the node's model)."""
    if not isinstance(node, ir.AgentNode):
        return None
    name = node.backend or run.wf.default_backend
    if name not in DELEGATE_BACKENDS or not workflow.patched(PATCH):
        return None
    return name  # type: ignore[return-value]


def cli_session(conversation_ref: str) -> str:
    """The CLI session id a stored session holds ("" for a model conversation)."""
    return conversation_ref[len(SESSION_PREFIX):] if conversation_ref.startswith(SESSION_PREFIX) else ""


async def visit(run: RunContext, node: ir.AgentNode, branch: str, node_input: dict[str, Any],
                backend: DelegateBackend) -> str | None:
    async def work() -> Produced:
        # A backend node that is not readonly may change files: one at a time (`is_mutating`).
        async with run.workspace(node if node.backend else node.model_copy(update={"backend": backend})):
            return await delegate(run, node, branch, node_input, backend)

    return await produce(run, node, branch, work, counted=True)


async def delegate(run: RunContext, node: ir.AgentNode, branch: str, node_input: dict[str, Any],
                   backend: DelegateBackend) -> Produced:
    wf, options, state, data = run.wf, run.options, run.state, run.data
    clean_input = {k: v for k, v in node_input.items() if not k.startswith("_")}
    placed = placed_input_tokens(wf, node.id, data, node_input)
    system = render_text(prompt_body(wf, node.system_prompt), data, node_input, placed) if node.system_prompt else ""
    user = (render_text(prompt_body(wf, node.user_prompt), data, node_input, placed) if node.user_prompt
            else json.dumps(clean_input, ensure_ascii=False, sort_keys=True))
    if node.session == "artifacts_only" and data.artifacts:
        user += "\n\nPublished artifacts of this run:\n" + as_text(data.artifacts, placed)
    schema = wf.schemas.get(node.output_schema) if node.output_schema else None
    visit_no = state.nodes[node.id].visits
    plan = Sessions.plan_session(node.session, node_id=node.id, visit=visit_no, node_input=node_input,
                                 branch=branch, sessions=state.sessions, branch_sessions=state.branch_sessions)
    if plan.warning:
        run.emit("session_not_found", node.id, branch, {"warning": plan.warning})
    resume = cli_session(plan.conversation_ref)
    if plan.conversation_ref and not resume:
        run.emit("session_not_found", node.id, branch, {
            "warning": f"session {plan.parent!r} is a model conversation, not a {backend} session; starting a "
                       f"fresh one (map `_session_id` from a delegated node's output to continue its session)"})
    req = DelegateRequest(
        run_id=workflow.info().workflow_id, node_id=node.id, node_kind=node.kind, backend=backend, visit=visit_no,
        model=node.model, system=system, user=user, input=clean_input, artifact_tokens=sorted(set(placed)),
        output_schema=schema, tools=list(node.tools), readonly=node.readonly,
        reasoning_effort=node.reasoning_effort, mcp_servers=node_mcp_servers(run, node), cwd=options.shell_cwd,
        resume_session=resume, fork_session=bool(resume) and node.session == "fork",
        timeout_seconds=options.delegate_timeout_seconds,
        heartbeat_seconds=heartbeat_interval(options.llm_heartbeat_timeout_seconds),
        script=script_for_node(options.script, node.id), offload_threshold_bytes=options.offload_threshold_bytes)
    if (node.interaction != "none" or node.tool_max_steps) and workflow.patched(INTERACTION_PATCH):
        req = req.model_copy(update={"interaction": node.interaction != "none", "max_turns": node.tool_max_steps})
    repairs = asked = 0
    while True:
        result = await run.activity(A.DELEGATE, req, node.id, f"{node.id} · {backend}",
                                    # the CLI stops itself at timeout_seconds; the margin lets it say so
                                    options.delegate_timeout_seconds + 60,
                                    heartbeat_timeout=options.llm_heartbeat_timeout_seconds)
        for step in result.steps:
            run.emit("delegate_step", node.id, branch, {"backend": backend, **step.model_dump(exclude_defaults=True)})
        run.emit("llm_step_finished", node.id, branch, {
            "turn": repairs + 1, "status": result.status, "backend": backend,
            "input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
            "cached_tokens": result.usage.cached_tokens, "cost_usd": result.usage.cost_usd,
            "steps_dropped": result.steps_dropped, **({"unpriced": True} if result.usage.unpriced_calls else {})})
        metrics.llm_usage(wf.name, node.id, result.usage)
        run.record_usage(node.id, result.usage.model_copy(update={"calls": max(result.usage.calls, 1)}),
                         count_iteration=False, enforce=result.status != "final")
        if result.status == "final":
            break
        if result.status == "needs_interaction":
            asked += 1
            req = await ask_person(run, node, branch, backend, req, result, asked)
            continue
        repairs += 1
        if repairs > options.llm_max_repairs or not result.session_id:
            raise NodeFailed(f"'{node.id}' ({backend}) gave {repairs} answers that do not match schema "
                             f"'{schema.name if schema else '(none)'}': {result.invalid_reason}", M.ERR_SCHEMA)
        run.emit("llm_repair_requested", node.id, branch, {"turn": repairs, "reason": result.invalid_reason})
        req = req.model_copy(update={
            "user": Sessions.repair_request(result.invalid_reason, schema.name if schema else "(none)"),
            "input": {}, "system": "", "resume_session": result.session_id, "fork_session": False})
    output = dict(result.output)
    if result.session_id:
        Sessions.remember(state.sessions, state.branch_sessions, session_id=plan.session_id,
                          conversation_ref=SESSION_PREFIX + result.session_id, branch=branch)
        output[Sessions.SESSION_KEY] = plan.session_id
    return output, M.Usage()


async def ask_person(run: RunContext, node: ir.AgentNode, branch: str, backend: DelegateBackend,
                     req: DelegateRequest, result: DelegateResult, asked: int) -> DelegateRequest:
    """The agent stopped to ask (`interaction:`): open the node's gate with its questions, then
    resume its session with the person's answers. Unlike Iterion, the answers do not become the
    node's output: the agent reads them and finishes its work."""
    if asked > MAX_INTERACTIONS:
        raise NodeFailed(f"'{node.id}' ({backend}) asked a person {asked} times in one visit; the limit is "
                         f"{MAX_INTERACTIONS}: give it what it needs in its prompt")
    answers = await wait_for_answer(run, node, branch, result.questions, None,
                                    instructions=f"{node.id} ({backend}) asks:", opening="" if asked == 1 else f".{asked}",
                                    source={"source": "delegate", "backend": backend})
    run.state.nodes[node.id].status = "running"  # the gate marked it waiting; the agent works again
    reply = ("A person answered your questions:\n" + json.dumps(answers, ensure_ascii=False, indent=1)
             + "\n\nContinue the task with these answers.")
    return req.model_copy(update={"user": reply, "input": {}, "system": "", "resume_session": result.session_id,
                                  "fork_session": False, "interaction_round": asked})
