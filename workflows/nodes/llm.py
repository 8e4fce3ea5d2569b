"""An LLM node visit: model turns and the tools the model calls, until a schema-valid answer.

Agents and judges are visited here; LLM routers (`router.py`) and gates a model answers
(`human.py`) run the same conversation with their own purpose. Each model turn and each tool
call is its own activity, so a crash repeats at most the one in flight.
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
from workflows.contract import vocabulary
from workflows.contract.mcp import McpServerSpec, split_tool_name
from workflows.contract.scripts import script_for_node
from workflows.contract.tool_approval import approval_patterns, needs_approval
from workflows.contract.tool_policy import DEFAULT_TOOL_MAX_STEPS, effective_tool_policy, policy_denial, tool_allowed
from workflows.inputs import as_text, placed_input_tokens, prompt_body, render_text
from workflows.nodes.base import NodeFailed, Produced, RunContext, heartbeat_interval, produce
from workflows.nodes.delegate import cli_session, delegation_backend
from workflows.nodes.delegate import visit as delegate_visit
from workflows.nodes.mcp_tools import call_mcp_tool, node_mcp_servers
from workflows.nodes.tool_approval import review_tool_call

_EFFORTS = vocabulary.REASONING_EFFORTS  # accepted from an input's `_reasoning_effort`


async def visit(run: RunContext, node: ir.AgentNode, branch: str, node_input: dict[str, Any]) -> str | None:
    """An agent or a judge: one conversation, holding the workspace if its tools may change it."""

    backend = delegation_backend(run, node)
    if backend is not None:  # a coding agent's CLI does the work (`delegate.py`)
        return await delegate_visit(run, node, branch, node_input, backend)

    async def work() -> Produced:
        async with run.workspace(node):
            return await converse(run, node, branch, node_input, purpose="node")

    return await produce(run, node, branch, work, counted=True)


async def converse(run: RunContext, node: ir.AgentNode | ir.HumanNode | ir.RouterNode, branch: str,
                   node_input: dict[str, Any], *, purpose: M.LLMPurpose, schema: ir.Schema | None = None,
                   candidates: list[str] | None = None) -> Produced:
    """Run one LLM node visit: model turns and tool calls until a schema-valid answer.

    Usage is recorded per turn (budgets can stop a long tool loop); the returned usage is
    therefore empty. Agents get a session: their output carries `_session_id`.
    """
    wf, options, state, data = run.wf, run.options, run.state, run.data
    system_name = getattr(node, "system_prompt", "")
    user_name = getattr(node, "user_prompt", "") or getattr(node, "instructions", "")
    clean_input = {k: v for k, v in node_input.items() if not k.startswith("_")}
    # The artifact tokens this request may have expanded: those placed here and in the input's
    # `with` text, never token-shaped text that a value holds.
    placed = placed_input_tokens(wf, node.id, data, node_input)
    system = render_text(prompt_body(wf, system_name), data, node_input, placed) if system_name else ""
    user = (render_text(prompt_body(wf, user_name), data, node_input, placed) if user_name
            else json.dumps(clean_input, ensure_ascii=False, sort_keys=True))
    if schema is None and getattr(node, "output_schema", ""):
        schema = wf.schemas.get(node.output_schema)  # type: ignore[union-attr]
    if isinstance(node, ir.HumanNode):  # the gate's own model for answering wins over the node's
        model = node.interaction_model or node.model
    else:
        model = node.model
    visit = state.nodes[node.id].visits
    agent = node if isinstance(node, ir.AgentNode) else None
    plan = Sessions.plan_session(agent.session if agent else "fresh", node_id=node.id, visit=visit,
                                 node_input=node_input, branch=branch, sessions=state.sessions,
                                 branch_sessions=state.branch_sessions)
    if plan.warning:
        run.emit("session_not_found", node.id, branch, {"warning": plan.warning})
    if agent and agent.session == "artifacts_only" and data.artifacts:
        user += "\n\nPublished artifacts of this run:\n" + as_text(data.artifacts, placed)
    policy = effective_tool_policy(wf, node)
    max_steps = (agent.tool_max_steps if agent else 0) or DEFAULT_TOOL_MAX_STEPS
    effort = node_input.get("_reasoning_effort")
    base = M.LLMTurnRequest(
        run_id=workflow.info().workflow_id, node_id=node.id, node_kind=node.kind, purpose=purpose,
        visit=visit, model=model, backend=getattr(node, "backend", "") or wf.default_backend,
        system=system, user=user, input=clean_input, artifact_tokens=sorted(set(placed)), output_schema=schema,
        reasoning_effort=effort if effort in _EFFORTS else getattr(node, "reasoning_effort", ""),
        tools=list(agent.tools) if agent else [], tool_max_steps=max_steps,
        route_candidates=candidates or [], multi_route=bool(getattr(node, "router_multi", False)),
        script=script_for_node(options.script, node.id),
        offload_threshold_bytes=options.offload_threshold_bytes,
        tool_policy=policy, readonly=bool(agent and agent.readonly),
        heartbeat_seconds=heartbeat_interval(options.llm_heartbeat_timeout_seconds),
        keep_conversation=agent is not None and sessions_continued(wf),
        mcp_servers=node_mcp_servers(run, node), cwd=options.shell_cwd,
        tool_approval=approval_patterns(wf, node),
        max_output_tokens=getattr(node, "max_tokens", None) or None,
    )
    # A delegated node's session is its CLI's, not a conversation a model call can continue.
    conversation = "" if cli_session(plan.conversation_ref) else plan.conversation_ref
    new_messages: list[M.ChatMessage] = []
    steps = repairs = 0
    turn = 0
    while True:
        turn += 1
        # After turn 1 the prompt and input live in the stored conversation: each later turn
        # carries only what is new, so history grows with the turns, not with their square.
        update: dict[str, Any] = {"turn": turn, "conversation_ref": conversation, "new_messages": new_messages,
                                  "allow_tools": steps < max_steps}
        if turn > 1:
            update.update(user="", input={})
        req = base.model_copy(update=update)
        result = await run.activity(A.LLM_TURN, req, node.id, f"{node.id} · llm {purpose} turn {turn}",
                                    options.llm_timeout_seconds, heartbeat_timeout=options.llm_heartbeat_timeout_seconds)
        conversation = result.conversation_ref or conversation
        run.emit("llm_step_finished", node.id, branch, {
            "turn": turn, "status": result.status, "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens, "cached_tokens": result.usage.cached_tokens,
            "cost_usd": result.usage.cost_usd, "cache_savings_usd": result.usage.cache_savings_usd,
            "tool_calls": [c.name for c in result.tool_calls],
            **({"unpriced": True} if result.usage.unpriced_calls else {})})  # no price known for the model
        metrics.llm_usage(wf.name, node.id, result.usage)
        run.record_usage(node.id, result.usage.model_copy(update={"calls": max(result.usage.calls, 1)}),
                         count_iteration=False, enforce=result.status != "final")
        if result.status == "final":
            break
        if result.status == "invalid":
            repairs += 1
            if repairs > options.llm_max_repairs:
                raise NodeFailed(
                    f"'{node.id}' gave {repairs} answers that do not match schema "
                    f"'{schema.name if schema else '(none)'}': {result.invalid_reason}; last answer: "
                    f"{_shorten(result.text)}", M.ERR_SCHEMA)
            run.emit("llm_repair_requested", node.id, branch, {"turn": turn, "reason": result.invalid_reason})
            new_messages = [M.ChatMessage(role="user", text=Sessions.repair_request(
                result.invalid_reason, schema.name if schema else "(none)"))]
            continue
        steps += 1
        offered = {t.name: t for t in result.tools}
        new_messages = [await model_tool_call(run, node, branch, call, offered, policy, base.readonly,
                                              mcp_servers=base.mcp_servers, approval=base.tool_approval,
                                              opening=f".tool{turn}.{index}")
                        for index, call in enumerate(result.tool_calls, start=1)]
    output = dict(result.output)
    if agent is not None:
        Sessions.remember(state.sessions, state.branch_sessions, session_id=plan.session_id,
                          conversation_ref=conversation, branch=branch)
        output[Sessions.SESSION_KEY] = plan.session_id
    return output, M.Usage()


def sessions_continued(wf: ir.Workflow) -> bool:
    """Whether any agent continues a conversation (inherit/fork): only then are final answers stored."""
    return any(isinstance(n, ir.AgentNode) and n.session in ("inherit", "fork") for n in wf.nodes.values())


async def model_tool_call(run: RunContext, node: ir.Node, branch: str, call: M.ToolCall,
                          offered: dict[str, M.ToolInfo], policy: list[str] | None, readonly: bool, *,
                          mcp_servers: list[McpServerSpec] | None = None, approval: list[str] | None = None,
                          opening: str = "") -> M.ChatMessage:
    """Run one tool the model asked for; a denial or a failure goes back to the model as the result.
    An MCP tool (`mcp.SERVER.TOOL`) runs on one of ``mcp_servers``, a builtin tool in the tool activity.
    A tool that ``approval`` patterns match waits for a person first (`tool_approval.py`; ``opening``
    names this call's gate opening): rejected, the person's message is the result."""
    info = offered.get(call.name)
    denial = ""
    if not tool_allowed(call.name, policy):
        denial = policy_denial(call.name, policy)
    elif info is None:
        denial = (f"tool '{call.name}' is not offered to node '{node.id}'; "
                  f"use one of: {', '.join(sorted(offered)) or '(none)'}")
    elif readonly and info.mutating:
        denial = f"node '{node.id}' is readonly and tool '{call.name}' changes things"
    if denial:
        run.emit("tool_denied", node.id, branch, {"tool": call.name, "error": denial})
        return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, text=f"error: {denial}",
                             is_error=True)
    assert info is not None
    if approval and needs_approval(call.name, approval):
        reviewed = await review_tool_call(run, node, branch, call, info, opening=opening)
        if isinstance(reviewed, M.ChatMessage):
            return reviewed
        call = reviewed
    if split_tool_name(call.name) is not None:
        return await _mcp_tool_call(run, node, branch, call, mcp_servers or [])
    # Bound arguments come from the run's vars, never from the model; an absent var is sent as
    # None so the tool refuses the call instead of falling back to a default (mock data).
    arguments = {k: v for k, v in call.arguments.items() if k not in info.bound}
    arguments.update({name: run.state.vars.get(name) for name in info.bound})
    req = M.ToolCallRequest(run_id=workflow.info().workflow_id, node_id=node.id, tool=call.name,
                            arguments=arguments, offload_threshold_bytes=run.options.offload_threshold_bytes)
    try:
        res = await run.activity(A.TOOL_CALL, req, node.id, f"{node.id} · tool {call.name}",
                                 run.options.shell_timeout_seconds, counts_as_attempt=False)
    except NodeFailed as failure:
        run.emit("tool_error", node.id, branch, {"tool": call.name, "error": str(failure)})
        return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, text=f"error: {failure}",
                             is_error=True)
    run.emit("tool_called", node.id, branch, {"tool": call.name})
    return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, result=res.output)


async def _mcp_tool_call(run: RunContext, node: ir.Node, branch: str, call: M.ToolCall,
                         servers: list[McpServerSpec]) -> M.ChatMessage:
    """An MCP tool's error (its own `isError`, or the call failing) is the model's to read, like a builtin's."""
    try:
        res = await call_mcp_tool(run, node, call.name, call.arguments, servers, counts_as_attempt=False)
    except NodeFailed as failure:
        error = str(failure)
    else:
        if not res.is_error:
            run.emit("tool_called", node.id, branch, {"tool": call.name})
            return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, result=res.output)
        error = res.text or "the tool reported an error"
    run.emit("tool_error", node.id, branch, {"tool": call.name, "error": error})
    return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, text=f"error: {error}",
                         is_error=True)


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
