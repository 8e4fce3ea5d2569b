"""GraphRun: the Temporal workflow that interprets a compiled `.iter` graph.

One class, one method per node kind. It only schedules: activities do every side effect, the
graph semantics (edges, inputs, templates, convergence, budget rules, answer checking) live in
`workflows.scheduler` as pure functions. State that must survive continue-as-new is gathered in
`CarriedState`.

Failures do not kill the run: a node whose activity fails after its retries *parks* — the run's
status becomes `failed_resumable` and the branch waits for a `retry` signal (or cancellation),
then re-runs that node. Human gates wait on an `answer` update (validated) or signal (idempotent).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from dsl import ir
    from workflows import metrics
    from workflows import scheduler as S
    from workflows import sessions as Sessions
    from workflows.contract import messages as M
    from workflows.contract import vocabulary
    from workflows.contract.state import (
        SA_COST,
        SA_OPEN_GATES,
        SA_STATUS,
        SA_WORKFLOW,
        WORKFLOW_TYPE,
        Answer,
        AnswerRecord,
        CarriedState,
        Event,
        Failure,
        Gate,
        NodeState,
        RunInput,
        RunResult,
        RunStatus,
        RunView,
    )

_KEY_WORKFLOW = SearchAttributeKey.for_keyword(SA_WORKFLOW)
_KEY_STATUS = SearchAttributeKey.for_keyword(SA_STATUS)
_KEY_GATES = SearchAttributeKey.for_keyword_list(SA_OPEN_GATES)
_KEY_COST = SearchAttributeKey.for_float(SA_COST)

_HISTORY_KEPT = 200  # {{outputs.X.history}} keeps the latest outputs; bounds carried state

_NON_RETRYABLE = list(vocabulary.NON_RETRYABLE)
_EFFORTS = vocabulary.REASONING_EFFORTS  # accepted from an input's `_reasoning_effort`


def _heartbeat_interval(timeout_seconds: float) -> float:
    """How often an activity heartbeats so that a dead worker is noticed within ``timeout_seconds``."""
    return max(0.5, min(5.0, timeout_seconds / 3))


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


class StopRun(Exception):
    """Ends the run cleanly with a final status (budget exceeded, fail node, bad input)."""

    def __init__(self, status: RunStatus, reason: str, node: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.node = node


class NodeFailed(Exception):
    """A node could not complete; it parks (or ends a best-effort branch)."""

    def __init__(self, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class _WalkEnd:
    kind: str  # "done" | "converged" | "failed"
    node: str
    error: str = ""


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=True)
class GraphRun:
    @workflow.init
    def __init__(self, inp: RunInput) -> None:
        self.inp = inp
        self.wf: ir.Workflow = inp.workflow
        c = inp.carried
        self.ctx = S.DataContext(
            vars=dict(c.vars) if c else S.initial_vars(inp.workflow, inp.run_inputs),
            run_inputs=dict(inp.run_inputs),
            outputs=dict(c.outputs) if c else {},
            history=dict(c.history) if c else {},
            artifacts=dict(c.artifacts) if c else {},
        )
        self.artifact_versions: dict[str, int] = dict(c.artifact_versions) if c else {}
        self.loop_counters: dict[str, int] = dict(c.loop_counters) if c else {}
        self.rr_counters: dict[str, int] = dict(c.rr_counters) if c else {}
        self._inner_loops: dict[str, list[str]] | None = None  # computed when a loop edge is first taken
        self._sessions_continued: bool | None = None
        self.budget_used: dict[str, float] = dict(c.budget_used) if c else {}
        self.budget_warned: list[str] = list(c.budget_warned) if c else []
        self.nodes: dict[str, NodeState] = dict(c.nodes) if c else {n: NodeState() for n in inp.workflow.nodes}
        self.answers: list[AnswerRecord] = list(c.answers) if c else []
        self.early_answers: dict[str, Answer] = dict(c.early_answers) if c else {}
        self.events: list[Event] = list(c.events) if c else []
        self.seq = c.seq if c else 0
        self.started_at = c.started_at if c else ""
        self.executions = (c.executions + 1) if c else 1
        self.sessions: dict[str, str] = dict(c.sessions) if c else {}
        self.branch_sessions: dict[str, str] = dict(c.branch_sessions) if c else {}
        self.open_gates: dict[str, Gate] = {}
        self.gate_answers: dict[str, AnswerRecord] = {}
        self.failures: dict[str, Failure] = {}
        self.retry_requested: set[str] = set()
        self.current: list[str] = []
        self.final_status: RunStatus | None = None
        self.last_node = ""
        self.reason = ""
        self.workspace_lock = asyncio.Lock()
        self.deliveries: list[asyncio.Task[None]] = []
        self._last_status: str = ""

    # -- entry point ---------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        if self.wf.format_version != ir.IR_FORMAT_VERSION:
            raise ApplicationError(
                f"IR format version {self.wf.format_version} is not supported by this worker "
                f"(it runs version {ir.IR_FORMAT_VERSION}); recompile the .iter file with a matching iterloop",
                type=M.ERR_BAD_REQUEST, non_retryable=True)
        if not self.started_at:
            self.started_at = workflow.now().isoformat()
        start = inp.carried.next_node if inp.carried else self.wf.entry
        if inp.carried is None:
            missing = S.missing_required_vars(self.wf, inp.run_inputs)
            if missing:
                raise ApplicationError(
                    f"missing value for var(s) {', '.join(missing)}; pass --var NAME=VALUE",
                    type=M.ERR_BAD_REQUEST, non_retryable=True)
            self.emit("run_started", data={"workflow": self.wf.name, "entry": start})
            metrics.run_started(self.wf.name)
        else:
            self.emit("run_continued", data={"next_node": start, "execution": self.executions})
        workflow.upsert_search_attributes([_KEY_WORKFLOW.value_set(self.wf.name)])
        self.publish_status()
        try:
            end = await self.walk(start, branch="", stop_at=None, tolerate=False)
            self.final_status, self.reason, self.last_node = "finished", f"reached {end.node}", end.node
            self.emit("run_finished", end.node)
        except StopRun as stop:
            self.final_status, self.reason, self.last_node = stop.status, stop.reason, stop.node
            self.emit("run_" + ("failed" if stop.status == "failed" else stop.status), stop.node,
                      data={"reason": stop.reason})
        except (asyncio.CancelledError, CancelledError):
            self.final_status, self.reason = "cancelled", "cancelled by request"
            self.emit("run_cancelled")
            self.publish_status()
            metrics.run_ended(self.wf.name, self.final_status)
            raise
        self.publish_status()
        metrics.run_ended(self.wf.name, self.final_status)
        self.notify("run_finished" if self.final_status == "finished" else "run_failed",
                    status=self.final_status, reason=self.reason)
        await self.notifications_delivered()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(status=self.final_status, reason=self.reason, outputs=self.ctx.outputs,
                         usage=self.total_usage(), last_node=self.last_node)

    # -- the walk ------------------------------------------------------------------------------
    async def walk(self, start: str, *, branch: str, stop_at: str | None, tolerate: bool) -> _WalkEnd:
        """Follow the graph from ``start`` until done/fail, the convergence node, or a failure.

        ``tolerate`` (best-effort branches) turns a node failure into the end of the branch
        instead of parking it.
        """
        node_id = start
        while True:
            if stop_at is not None and node_id == stop_at:
                return _WalkEnd("converged", node_id)
            if not branch:
                await self.maybe_continue_as_new(node_id)
            node = self.wf.nodes.get(node_id)
            if node is None:
                raise StopRun("failed", f"node '{node_id}' does not exist in workflow '{self.wf.name}'", node_id)
            self.enter(node_id, branch)
            try:
                if node.kind == "done":
                    self.finish_node(node_id, branch, {})
                    return _WalkEnd("done", node_id)
                if node.kind == "fail":
                    self.finish_node(node_id, branch, {})
                    if branch:
                        return _WalkEnd("failed", node_id, "branch reached the fail node")
                    raise StopRun("failed", "workflow reached the fail node", node_id)
                if isinstance(node, ir.RouterNode) and node.router_mode == "fan_out_all":
                    targets = [e.target for e in self.wf.edges if e.source == node_id]
                    nxt = await self.fan_out(node, targets, branch)
                else:
                    nxt = await self.step(node, branch, tolerate)
            except NodeFailed as failure:  # only reached when tolerating failures
                return _WalkEnd("failed", node_id, str(failure))
            finally:
                self.leave(node_id)
            if node_id in self.inp.options.stop_after:
                raise StopRun("finished", f"stopped after '{node_id}' as asked (--stop-after)", node_id)
            if nxt is None:
                return _WalkEnd("done", node_id)
            node_id = nxt

    async def step(self, node: ir.Node, branch: str, tolerate: bool) -> str | None:
        """Execute one node and choose where to go; on failure park until retried."""
        while True:
            try:
                return await self.execute_and_route(node, branch)
            except NodeFailed as failure:
                if tolerate:
                    self.nodes[node.id].status = "failed"
                    self.emit("node_failed", node.id, branch, {"error": str(failure), "tolerated": True})
                    raise
                await self.park(node.id, branch, str(failure), failure.error_type)

    async def execute_and_route(self, node: ir.Node, branch: str) -> str | None:
        state = self.nodes[node.id]
        state.visits += 1
        state.status = "running"
        node_input = S.build_input(self.wf, node.id, self.ctx)
        self.emit("node_started", node.id, branch, {"kind": node.kind, "visit": state.visits})

        if isinstance(node, ir.RouterNode) and node.router_mode == "round_robin":
            return self.round_robin(node, branch, node_input)
        if isinstance(node, ir.RouterNode) and node.router_mode == "llm":
            return await self.llm_route(node, branch, node_input)

        counted = not isinstance(node, (ir.JoinNode, ir.WaitNode)) and not (
            isinstance(node, ir.HumanNode) and node.interaction == "human")
        if counted:
            self.check_budget(node.id, before_step=True)
        began = workflow.now()
        try:
            output, usage = await self.execute(node, branch, node_input)
        except NodeFailed:
            metrics.node_finished(self.wf.name, node.id, node.kind, (workflow.now() - began).total_seconds(), "failed")
            raise
        metrics.node_finished(self.wf.name, node.id, node.kind, (workflow.now() - began).total_seconds(), "succeeded")
        self.store_output(node, branch, output)
        if counted:
            self.record_usage(node.id, usage, count_iteration=True)
        return self.route(node.id, branch, output)

    def route(self, node_id: str, branch: str, output: dict[str, Any]) -> str | None:
        edge = S.select_edge(self.wf, node_id, output, self.loop_counters)
        if edge is None:
            if not any(e.source == node_id for e in self.wf.edges):
                return None  # a dead end ends this path (the validator warns about nothing here)
            raise NodeFailed(f"no outgoing edge of '{node_id}' matches its output "
                             f"(conditions: {', '.join(sorted({e.condition for e in self.wf.edges if e.source == node_id and e.condition}))}"
                             "); add an unconditional fallback edge", "NoOutgoingEdge")
        data: dict[str, Any] = {"from": edge.source, "to": edge.target}
        if edge.condition:
            data.update(condition=edge.condition, negated=edge.negated)
        if edge.loop_name:
            self.loop_counters[edge.loop_name] = self.loop_counters.get(edge.loop_name, 0) + 1
            data.update(loop=edge.loop_name, iteration=self.loop_counters[edge.loop_name])
            if self._inner_loops is None:
                self._inner_loops = S.inner_loops(self.wf) if len(self.wf.loops) > 1 else {}
            fresh = [n for n in self._inner_loops.get(edge.loop_name, []) if self.loop_counters.get(n)]
            # `patched` answers once per run: a run in flight whose history already went round an outer
            # loop with a used inner counter keeps run-wide counters (replay safety); others switch.
            if fresh and workflow.patched("reset-inner-loops"):
                for name in fresh:
                    del self.loop_counters[name]
                data["reset_loops"] = fresh
        self.emit("edge_selected", node_id, branch, data)
        return edge.target

    # -- node kinds ----------------------------------------------------------------------------
    async def execute(self, node: ir.Node, branch: str, node_input: dict[str, Any]) -> tuple[dict[str, Any], M.Usage]:
        if isinstance(node, ir.AgentNode):
            async with self.workspace(node):
                return await self.llm(node, branch, node_input, purpose="node")
        if isinstance(node, ir.RouterNode):  # condition router: passes its input through
            return dict(node_input), M.Usage()
        if isinstance(node, ir.HumanNode):
            return await self.human(node, branch, node_input)
        if isinstance(node, ir.ToolNode):
            async with self.workspace(node):
                return await self.tool(node, branch, node_input)
        if isinstance(node, ir.WaitNode):
            self.set_details(f"**{node.id}** waiting {node.duration}")
            await workflow.sleep(timedelta(seconds=node.duration_seconds), summary=f"{node.id} · wait {node.duration}")
            return {"waited": node.duration}, M.Usage()
        if isinstance(node, ir.JoinNode):
            out = dict(node_input)
            failed = self.ctx.outputs.get(node.id, {}).get("_failed_branches")
            if failed:
                out["_failed_branches"] = failed
            return out, M.Usage()
        raise NodeFailed(f"node kind '{node.kind}' cannot be executed")

    def workspace(self, node: ir.Node) -> Any:
        """One mutating node at a time across branches (workspace safety)."""
        if S.is_mutating(node):
            return self.workspace_lock
        return _NoLock()

    async def llm(self, node: ir.AgentNode | ir.HumanNode | ir.RouterNode, branch: str, node_input: dict[str, Any],
                  *, purpose: M.LLMPurpose, schema: ir.Schema | None = None,
                  candidates: list[str] | None = None) -> tuple[dict[str, Any], M.Usage]:
        """Run one LLM node visit: model turns and tool calls until a schema-valid answer.

        Each model turn and each tool call is its own activity, so a crash repeats at most the one
        in flight. Usage is recorded per turn (budgets can stop a long tool loop); the returned
        usage is therefore empty. Agents get a session: their output carries `_session_id`.
        """
        system_name = getattr(node, "system_prompt", "")
        user_name = getattr(node, "user_prompt", "") or getattr(node, "instructions", "")
        clean_input = {k: v for k, v in node_input.items() if not k.startswith("_")}
        system = S.render_text(S.prompt_body(self.wf, system_name), self.ctx, node_input) if system_name else ""
        user = (S.render_text(S.prompt_body(self.wf, user_name), self.ctx, node_input) if user_name
                else json.dumps(clean_input, ensure_ascii=False, sort_keys=True))
        if schema is None and getattr(node, "output_schema", ""):
            schema = self.wf.schemas.get(node.output_schema)  # type: ignore[union-attr]
        if isinstance(node, ir.HumanNode):  # the gate's own model for answering wins over the node's
            model = node.interaction_model or node.model
        else:
            model = node.model
        visit = self.nodes[node.id].visits
        agent = node if isinstance(node, ir.AgentNode) else None
        plan = Sessions.plan_session(agent.session if agent else "fresh", node_id=node.id, visit=visit,
                                     node_input=node_input, branch=branch, sessions=self.sessions,
                                     branch_sessions=self.branch_sessions)
        if plan.warning:
            self.emit("session_not_found", node.id, branch, {"warning": plan.warning})
        if agent and agent.session == "artifacts_only" and self.ctx.artifacts:
            user += "\n\nPublished artifacts of this run:\n" + S.as_text(self.ctx.artifacts)
        policy = S.effective_tool_policy(self.wf, node)
        max_steps = (agent.tool_max_steps if agent else 0) or S.DEFAULT_TOOL_MAX_STEPS
        effort = node_input.get("_reasoning_effort")
        base = M.LLMTurnRequest(
            run_id=workflow.info().workflow_id, node_id=node.id, node_kind=node.kind, purpose=purpose,
            visit=visit, model=model, backend=getattr(node, "backend", "") or self.wf.default_backend,
            system=system, user=user, input=clean_input, output_schema=schema,
            reasoning_effort=effort if effort in _EFFORTS else getattr(node, "reasoning_effort", ""),
            tools=list(agent.tools) if agent else [], tool_max_steps=max_steps,
            route_candidates=candidates or [], multi_route=bool(getattr(node, "router_multi", False)),
            script=S.script_for_node(self.inp.options.script, node.id),
            offload_threshold_bytes=self.inp.options.offload_threshold_bytes,
            tool_policy=policy, readonly=bool(agent and agent.readonly),
            heartbeat_seconds=_heartbeat_interval(self.inp.options.llm_heartbeat_timeout_seconds),
            keep_conversation=agent is not None and self.sessions_continued(),
        )
        conversation = plan.conversation_ref
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
            result: M.LLMTurnResult = await self.activity(
                M.LLM_TURN, req, M.LLMTurnResult, node.id, f"{node.id} · llm {purpose} turn {turn}",
                self.inp.options.llm_timeout_seconds, heartbeat_timeout=self.inp.options.llm_heartbeat_timeout_seconds)
            conversation = result.conversation_ref or conversation
            self.emit("llm_step_finished", node.id, branch, {
                "turn": turn, "status": result.status, "input_tokens": result.usage.input_tokens,
                "output_tokens": result.usage.output_tokens, "cached_tokens": result.usage.cached_tokens,
                "cost_usd": result.usage.cost_usd, "cache_savings_usd": result.usage.cache_savings_usd,
                "tool_calls": [c.name for c in result.tool_calls]})
            metrics.llm_usage(self.wf.name, node.id, result.usage)
            self.record_usage(node.id, result.usage.model_copy(update={"calls": max(result.usage.calls, 1)}),
                              count_iteration=False, enforce=result.status != "final")
            if result.status == "final":
                break
            if result.status == "invalid":
                repairs += 1
                if repairs > self.inp.options.llm_max_repairs:
                    raise NodeFailed(
                        f"'{node.id}' gave {repairs} answers that do not match schema "
                        f"'{schema.name if schema else '(none)'}': {result.invalid_reason}; last answer: "
                        f"{_shorten(result.text)}", M.ERR_SCHEMA)
                self.emit("llm_repair_requested", node.id, branch, {"turn": turn, "reason": result.invalid_reason})
                new_messages = [M.ChatMessage(role="user", text=Sessions.repair_request(
                    result.invalid_reason, schema.name if schema else "(none)"))]
                continue
            steps += 1
            offered = {t.name: t for t in result.tools}
            new_messages = [await self.model_tool_call(node, branch, call, offered, policy, base.readonly)
                            for call in result.tool_calls]
        output = dict(result.output)
        if agent is not None:
            Sessions.remember(self.sessions, self.branch_sessions, session_id=plan.session_id,
                              conversation_ref=conversation, branch=branch)
            output[Sessions.SESSION_KEY] = plan.session_id
        return output, M.Usage()

    def sessions_continued(self) -> bool:
        """Whether any agent continues a conversation (inherit/fork): only then are final answers stored."""
        if self._sessions_continued is None:
            self._sessions_continued = any(isinstance(n, ir.AgentNode) and n.session in ("inherit", "fork")
                                           for n in self.wf.nodes.values())
        return self._sessions_continued

    async def model_tool_call(self, node: ir.Node, branch: str, call: M.ToolCall, offered: dict[str, M.ToolInfo],
                              policy: list[str] | None, readonly: bool) -> M.ChatMessage:
        """Run one tool the model asked for; a denial or a failure goes back to the model as the result."""
        info = offered.get(call.name)
        denial = ""
        if not S.tool_allowed(call.name, policy):
            denial = S.policy_denial(call.name, policy)
        elif info is None:
            denial = (f"tool '{call.name}' is not offered to node '{node.id}'; "
                      f"use one of: {', '.join(sorted(offered)) or '(none)'}")
        elif readonly and info.mutating:
            denial = f"node '{node.id}' is readonly and tool '{call.name}' changes things"
        if denial:
            self.emit("tool_denied", node.id, branch, {"tool": call.name, "error": denial})
            return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, text=f"error: {denial}",
                                 is_error=True)
        # Bound arguments come from the run's vars, never from the model; an absent var is sent as
        # None so the tool refuses the call instead of falling back to a default (mock data).
        arguments = {k: v for k, v in call.arguments.items() if k not in info.bound}
        arguments.update({name: self.ctx.vars.get(name) for name in info.bound})
        req = M.ToolCallRequest(run_id=workflow.info().workflow_id, node_id=node.id, tool=call.name,
                                arguments=arguments, offload_threshold_bytes=self.inp.options.offload_threshold_bytes)
        try:
            res = await self.activity(M.TOOL_CALL, req, M.ToolCallResult, node.id, f"{node.id} · tool {call.name}",
                                      self.inp.options.shell_timeout_seconds, counts_as_attempt=False)
        except NodeFailed as failure:
            self.emit("tool_error", node.id, branch, {"tool": call.name, "error": str(failure)})
            return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, text=f"error: {failure}",
                                 is_error=True)
        self.emit("tool_called", node.id, branch, {"tool": call.name})
        return M.ChatMessage(role="tool", tool_call_id=call.id, tool_name=call.name, result=res.output)

    async def tool(self, node: ir.ToolNode, branch: str, node_input: dict[str, Any]) -> tuple[dict[str, Any], M.Usage]:
        run_id = workflow.info().workflow_id
        if node.call:
            req = M.ToolCallRequest(run_id=run_id, node_id=node.id, tool=node.call, arguments=node_input,
                                    offload_threshold_bytes=self.inp.options.offload_threshold_bytes)
            res = await self.activity(M.TOOL_CALL, req, M.ToolCallResult, node.id, f"{node.id} · call {node.call}",
                                      self.inp.options.shell_timeout_seconds)
            return res.output, M.Usage()
        command = S.render_command(node.command, self.ctx, node_input)
        beat = _heartbeat_interval(self.inp.options.shell_heartbeat_timeout_seconds)
        sreq = M.ShellRequest(run_id=run_id, node_id=node.id, command=command, cwd=self.inp.options.shell_cwd,
                              timeout_seconds=self.inp.options.shell_timeout_seconds, heartbeat_seconds=beat,
                              offload_threshold_bytes=self.inp.options.offload_threshold_bytes)
        sres = await self.activity(M.SHELL_EXEC, sreq, M.ShellResult, node.id, f"{node.id} · shell",
                                   self.inp.options.shell_timeout_seconds + 30,
                                   heartbeat_timeout=self.inp.options.shell_heartbeat_timeout_seconds)
        return sres.output, M.Usage()

    async def human(self, node: ir.HumanNode, branch: str, node_input: dict[str, Any]) -> tuple[dict[str, Any], M.Usage]:
        schema = S.answer_schema(self.wf, node)
        if node.interaction == "llm":
            return await self.llm(node, branch, node_input, purpose="auto_answer")
        usage = M.Usage()
        if node.interaction == "llm_or_human":
            extended = ir.Schema(name=f"{schema.name if schema else node.id}_auto_or_pause",
                                 fields=[*(schema.fields if schema else []),
                                         ir.SchemaField(name="needs_human_input", type="bool")])
            output, usage = await self.llm(node, branch, node_input, purpose="auto_or_pause", schema=extended)
            if output.get("needs_human_input") is not True:
                output.pop("needs_human_input", None)
                return output, usage
            self.emit("auto_answer_deferred", node.id, branch, {"reason": "model asked for a human"})
        answers = await self.wait_for_answer(node, branch, node_input, schema)
        return answers, usage

    async def wait_for_answer(self, node: ir.HumanNode, branch: str, questions: dict[str, Any],
                              schema: ir.Schema | None) -> dict[str, Any]:
        visit = self.nodes[node.id].visits
        iid = S.interaction_id(workflow.info().workflow_id, node.id, visit)
        instructions = S.render_text(S.prompt_body(self.wf, node.instructions), self.ctx, questions) if node.instructions else ""
        gate = Gate(gate=node.id, interaction_id=iid, instructions=instructions, questions=questions, schema=schema,
                    opened_at=workflow.now().isoformat(), timeout_seconds=node.timeout_seconds)
        early = self.early_answers.pop(node.id, None)
        preset = self.inp.options.gate_answers.get(node.id) if early is None else None
        if preset is not None:
            early = Answer(gate=node.id, answers=preset, answered_by="auto (preset)")
        if early is not None:
            try:
                record = self.record_answer(gate, early)
            except S.AnswerError as exc:
                raise NodeFailed(f"the answer given in advance for gate '{node.id}' is not valid: {exc}",
                                 M.ERR_BAD_REQUEST) from None
            self.emit("gate_answered", node.id, branch, {"interaction_id": iid, "by": record.answered_by,
                                                         "preset" if preset is not None else "early": True})
            return record.answers
        self.open_gates[node.id] = gate
        self.nodes[node.id].status = "waiting"
        self.emit("human_input_requested", node.id, branch, {"interaction_id": iid, "questions": questions})
        self.notify("gate_opened", gate=node.id, interaction_id=iid, instructions=instructions, questions=questions,
                    answer_schema=schema)
        self.set_details(f"**{node.id}** waiting for a human answer (`iterloop answer {workflow.info().workflow_id} "
                         f"--gate {node.id} …`)")
        self.publish_status()
        try:
            await workflow.wait_condition(lambda: iid in self.gate_answers,
                                          timeout=timedelta(seconds=node.timeout_seconds) if node.timeout_seconds else None,
                                          timeout_summary=f"{node.id} · gate timeout")
        except asyncio.TimeoutError:
            self.open_gates.pop(node.id, None)
            self.emit("gate_timed_out", node.id, branch, {"interaction_id": iid, "timeout": node.timeout})
            raise NodeFailed(f"gate '{node.id}' got no answer within {node.timeout}; answer it and "
                             f"`iterloop retry` to reopen it", "GateTimeout") from None
        self.open_gates.pop(node.id, None)
        record = self.gate_answers.pop(iid)
        self.emit("gate_answered", node.id, branch, {"interaction_id": iid, "by": record.answered_by})
        metrics.gate_answered(self.wf.name, node.id,
                              (workflow.now() - datetime.fromisoformat(gate.opened_at)).total_seconds())
        self.publish_status()
        return record.answers

    def record_answer(self, gate: Gate, answer: Answer) -> AnswerRecord:
        node = self.wf.nodes[gate.gate]
        assert isinstance(node, ir.HumanNode)
        answers = S.coerce_answers(S.answer_schema(self.wf, node), answer.answers, gate=gate.gate)
        record = AnswerRecord(gate=gate.gate, interaction_id=gate.interaction_id, answers=answers,
                              answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
        self.answers.append(record)
        return record

    def round_robin(self, node: ir.RouterNode, branch: str, node_input: dict[str, Any]) -> str:
        candidates = S.unconditional_targets(self.wf, node.id)
        if not candidates:
            raise NodeFailed(f"round_robin router '{node.id}' has no unconditional edge")
        idx = self.rr_counters.get(node.id, 0)
        chosen = candidates[idx % len(candidates)]
        self.rr_counters[node.id] = idx + 1
        for other in candidates:
            if other.target != chosen.target:
                self.ctx.outputs.pop(other.target, None)  # stale output of the branch not taken
        self.store_output(node, branch, dict(node_input))
        self.emit("edge_selected", node.id, branch, {"from": node.id, "to": chosen.target, "round_robin_index": idx})
        return chosen.target

    async def llm_route(self, node: ir.RouterNode, branch: str, node_input: dict[str, Any]) -> str | None:
        candidates = [e.target for e in self.wf.edges if e.source == node.id]
        self.check_budget(node.id, before_step=True)
        output, _ = await self.llm(node, branch, node_input, purpose="route", candidates=candidates)
        if node.router_multi:
            chosen = output.get("selected_routes")
            if not (isinstance(chosen, list) and chosen and all(c in candidates for c in chosen)):
                raise NodeFailed(f"llm router '{node.id}' returned selected_routes {chosen!r}; expected a non-empty "
                                 f"list drawn from {candidates}", M.ERR_SCHEMA)
            self.store_output(node, branch, output)
            self.record_usage(node.id, M.Usage(), count_iteration=True)
            return await self.fan_out(node, [c for c in candidates if c in chosen], branch)
        target = output.get("selected_route")
        if target not in candidates:
            raise NodeFailed(f"llm router '{node.id}' selected {target!r}, which is not one of {candidates}", M.ERR_SCHEMA)
        self.store_output(node, branch, output)
        self.record_usage(node.id, M.Usage(), count_iteration=True)
        self.emit("edge_selected", node.id, branch, {"from": node.id, "to": target, "reasoning": output.get("reasoning", "")})
        return str(target)

    # -- fan-out -------------------------------------------------------------------------------
    async def fan_out(self, router: ir.RouterNode, targets: list[str], branch: str) -> str | None:
        if router.router_mode == "fan_out_all":
            self.nodes[router.id].visits += 1
            self.store_output(router, branch, S.build_input(self.wf, router.id, self.ctx))
        if not targets:
            raise StopRun("failed", f"router '{router.id}' has no outgoing edges", router.id)
        convergence = S.find_convergence(self.wf, targets)
        strategy = S.convergence_strategy(self.wf, convergence) if convergence else "wait_all"
        budget = self.wf.budget
        limit = budget.max_parallel_branches if budget and 0 < budget.max_parallel_branches < len(targets) else len(targets)
        semaphore = asyncio.Semaphore(limit)
        self.emit("fan_out", router.id, branch, {"targets": targets, "convergence": convergence or "",
                                                  "strategy": strategy, "max_parallel": limit})

        async def run_branch(target: str) -> _WalkEnd:
            async with semaphore:
                name = f"{branch + '/' if branch else ''}{router.id}>{target}"
                self.emit("branch_started", target, name)
                end = await self.walk(target, branch=name, stop_at=convergence, tolerate=strategy == "best_effort")
                self.emit("branch_" + ("failed" if end.kind == "failed" else "finished"), end.node, name,
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
            self.ctx.outputs.setdefault(convergence, {})["_failed_branches"] = failed
        self.emit("join_ready", convergence, branch, {"strategy": strategy, "failed_branches": failed})
        return convergence

    # -- failures and retries ------------------------------------------------------------------
    async def park(self, node_id: str, branch: str, error: str, error_type: str) -> None:
        # The run is ending (a stop or a cancel elsewhere): a branch cut short has nothing to retry.
        if self.final_status is not None and workflow.patched("cancel-is-not-a-failure"):
            raise asyncio.CancelledError()
        self.nodes[node_id].status = "failed"
        self.nodes[node_id].error = error
        self.failures[node_id] = Failure(node=node_id, branch=branch, error=error, error_type=error_type,
                                         at=workflow.now().isoformat())
        self.emit("node_failed", node_id, branch, {"error": error, "type": error_type, "resumable": True})
        self.set_details(f"**{node_id}** failed: {error}\n\nRun `iterloop retry {workflow.info().workflow_id}` "
                         "after fixing the cause.")
        self.publish_status()
        self.notify("run_failed", status="failed_resumable", reason=f"node '{node_id}' failed: {error}")
        await workflow.wait_condition(lambda: node_id in self.retry_requested)
        self.retry_requested.discard(node_id)
        self.failures.pop(node_id, None)
        self.nodes[node_id].error = ""
        self.emit("node_retried", node_id, branch)
        self.publish_status()

    @workflow.signal(name="retry")
    def retry(self, node: str = "") -> None:
        """Re-run a parked node (all parked nodes when ``node`` is empty)."""
        targets = [node] if node else list(self.failures)
        for n in targets:
            if n in self.failures:
                self.retry_requested.add(n)

    # -- human answers -------------------------------------------------------------------------
    def check_answer(self, answer: Answer) -> None:
        node = self.wf.nodes.get(answer.gate)
        if not isinstance(node, ir.HumanNode):
            humans = [n for n, v in self.wf.nodes.items() if isinstance(v, ir.HumanNode)]
            raise ValueError(f"'{answer.gate}' is not a human gate of workflow '{self.wf.name}'; gates: "
                             f"{', '.join(humans) or '(none)'}")
        gate = self.open_gates.get(answer.gate)
        if answer.interaction_id and (gate is None or answer.interaction_id != gate.interaction_id):
            now = f"is now open as {gate.interaction_id}" if gate else "is not open"
            raise ValueError(f"answer is for {answer.interaction_id} but gate '{answer.gate}' {now}; "
                             "inspect the run and answer the current question")
        try:
            S.coerce_answers(S.answer_schema(self.wf, node), answer.answers, gate=answer.gate)
        except S.AnswerError as exc:
            raise ValueError(str(exc)) from None

    @workflow.update(name="answer")
    async def answer(self, answer: Answer) -> AnswerRecord:
        return self.accept_answer(answer)

    @answer.validator
    def validate_answer(self, answer: Answer) -> None:
        self.check_answer(answer)

    @workflow.signal(name="answer")
    def answer_signal(self, answer: Answer) -> None:
        """The same as the update, for senders that cannot wait (Slack); duplicates are ignored."""
        if answer.interaction_id and any(r.interaction_id == answer.interaction_id for r in self.answers):
            return  # a redelivered or repeated signal
        try:
            self.check_answer(answer)
        except ValueError as exc:
            self.emit("answer_rejected", answer.gate, data={"error": str(exc), "by": answer.answered_by})
            return
        self.accept_answer(answer)

    def accept_answer(self, answer: Answer) -> AnswerRecord:
        gate = self.open_gates.get(answer.gate)
        if gate is None:
            self.early_answers[answer.gate] = answer
            self.emit("answer_queued", answer.gate, data={"by": answer.answered_by})
            return AnswerRecord(gate=answer.gate, interaction_id="", answers=answer.answers,
                                answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
        if gate.interaction_id in self.gate_answers:
            return self.gate_answers[gate.interaction_id]
        record = self.record_answer(gate, answer)
        self.gate_answers[gate.interaction_id] = record
        return record

    # -- queries -------------------------------------------------------------------------------
    @workflow.query(name="state")
    def state(self) -> RunView:
        return RunView(
            workflow=self.wf.name, source=self.inp.source, status=self.status(), current_nodes=list(self.current),
            nodes=self.nodes, outputs=self.ctx.outputs, artifacts=self.ctx.artifacts, vars=self.ctx.vars,
            loop_counters=self.loop_counters, budget_used=self.budget_used, usage=self.total_usage(),
            open_gates=list(self.open_gates.values()), failures=list(self.failures.values()), answers=self.answers,
            last_seq=self.seq, reason=self.reason, executions=self.executions,
        )

    @workflow.query(name="events")
    def events_since(self, after_seq: int = 0) -> list[Event]:
        return [e for e in self.events if e.seq > after_seq]

    # -- bookkeeping ---------------------------------------------------------------------------
    def status(self) -> RunStatus:
        if self.final_status is not None:
            return self.final_status
        if self.failures:
            return "failed_resumable"
        if self.open_gates:
            return "waiting_human"
        return "running"

    def publish_status(self) -> None:
        status = self.status()
        gates = sorted(self.open_gates)
        key = f"{status}|{','.join(gates)}|{self.total_usage().cost_usd:.6f}"
        if key == self._last_status:
            return
        self._last_status = key
        workflow.upsert_search_attributes([
            _KEY_STATUS.value_set(status),
            _KEY_GATES.value_set(gates) if gates else _KEY_GATES.value_unset(),
            _KEY_COST.value_set(round(self.total_usage().cost_usd, 6)),
        ])

    def set_details(self, text: str) -> None:
        workflow.set_current_details(f"{self.wf.name}: {text}")

    def enter(self, node_id: str, branch: str) -> None:
        self.current.append(node_id)
        self.set_details(f"running **{node_id}**" + (f" (branch {branch})" if branch else ""))

    def leave(self, node_id: str) -> None:
        if node_id in self.current:
            self.current.remove(node_id)

    def emit(self, kind: str, node: str = "", branch: str = "", data: dict[str, Any] | None = None) -> None:
        self.seq += 1
        self.events.append(Event(seq=self.seq, time=workflow.now().isoformat(), type=kind, node=node, branch=branch,
                                 data=data or {}))
        overflow = len(self.events) - self.inp.options.max_events_kept
        if overflow > 0:
            del self.events[:overflow]

    def store_output(self, node: ir.Node, branch: str, output: dict[str, Any]) -> None:
        self.ctx.outputs[node.id] = output
        history = self.ctx.history.setdefault(node.id, [])
        history.append(output)
        if len(history) > _HISTORY_KEPT:
            del history[: len(history) - _HISTORY_KEPT]
        publish = getattr(node, "publish", "")
        if publish:
            version = self.artifact_versions.get(node.id, 0)
            self.artifact_versions[node.id] = version + 1
            self.ctx.artifacts[publish] = output
            self.emit("artifact_written", node.id, branch, {"publish": publish, "version": version})
        self.finish_node(node.id, branch, output)

    def finish_node(self, node_id: str, branch: str, output: dict[str, Any]) -> None:
        state = self.nodes.setdefault(node_id, NodeState())
        if node_id in ("done", "fail"):
            state.visits += 1
        state.status = "succeeded"
        self.emit("node_finished", node_id, branch, {"output": output} if output else {})

    def total_usage(self) -> M.Usage:
        total = M.Usage()
        for state in self.nodes.values():
            total = total.plus(state.usage)
        return total

    # -- budget --------------------------------------------------------------------------------
    def usage_now(self) -> dict[str, float]:
        used = dict(self.budget_used)
        start = workflow.now().fromisoformat(self.started_at) if self.started_at else workflow.now()
        used["duration_s"] = (workflow.now() - start).total_seconds()
        return used

    def check_budget(self, node_id: str, *, before_step: bool) -> None:
        used = self.usage_now()
        exceeded = S.budget_exceeded(self.wf.budget, used, before_step=before_step)
        if exceeded is not None:
            self.emit("budget_exceeded", node_id, data={"dimension": exceeded.dimension, "used": exceeded.used,
                                                         "limit": exceeded.limit})
            raise StopRun("budget_exceeded", f"budget exceeded: {exceeded.dimension} "
                          f"({exceeded.used:g} of {exceeded.limit:g}) before '{node_id}'", node_id)

    def record_usage(self, node_id: str, usage: M.Usage, *, count_iteration: bool, enforce: bool = True) -> None:
        """Add ``usage`` to the node and the budget; over a limit, stop the run (unless ``enforce`` is
        False: a node's final answer is kept first, and the check after it stops the run)."""
        state = self.nodes[node_id]
        state.usage = state.usage.plus(usage)
        if count_iteration:
            self.budget_used["iterations"] = self.budget_used.get("iterations", 0.0) + 1
        self.budget_used["tokens"] = self.budget_used.get("tokens", 0.0) + usage.total_tokens
        self.budget_used["cost_usd"] = self.budget_used.get("cost_usd", 0.0) + usage.cost_usd
        used = self.usage_now()
        for warning in S.new_budget_warnings(self.wf.budget, used, self.budget_warned):
            self.budget_warned.append(warning.dimension)
            self.emit("budget_warning", node_id, data={"dimension": warning.dimension, "used": warning.used,
                                                        "limit": warning.limit})
        if usage.cost_usd:
            self.publish_status()
        exceeded = S.budget_exceeded(self.wf.budget, used, before_step=False) if enforce else None
        if exceeded is not None and exceeded.dimension != "iterations":
            self.emit("budget_exceeded", node_id, data={"dimension": exceeded.dimension, "used": exceeded.used,
                                                         "limit": exceeded.limit})
            raise StopRun("budget_exceeded", f"budget exceeded: {exceeded.dimension} "
                          f"({exceeded.used:g} of {exceeded.limit:g}) after '{node_id}'", node_id)

    # -- activities ----------------------------------------------------------------------------
    async def activity(self, name: str, arg: Any, result_type: type, node_id: str, summary: str,
                       timeout_seconds: float, *, heartbeat_timeout: float | None = None,
                       counts_as_attempt: bool = True) -> Any:
        """Run one activity for a node; its failure after retries is `NodeFailed`, and a run being
        cancelled stays a cancellation (never a failure the node would park on or hand to a model)."""
        state = self.nodes[node_id]
        try:
            return await workflow.execute_activity(
                name, arg, result_type=result_type,
                start_to_close_timeout=timedelta(seconds=timeout_seconds),
                heartbeat_timeout=timedelta(seconds=heartbeat_timeout) if heartbeat_timeout else None,
                retry_policy=RetryPolicy(maximum_attempts=self.inp.options.max_attempts,
                                         initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                                         non_retryable_error_types=_NON_RETRYABLE),
                summary=summary,
            )
        except ActivityError as err:
            cause = err.cause
            # Runs that parked on a cancelled activity before this patch keep doing so on replay.
            if isinstance(cause, CancelledError) and workflow.patched("cancel-is-not-a-failure"):
                raise cause from None
            if counts_as_attempt:
                state.attempts += 1
            # The failure record names the node; the message is the cause as the activity said it.
            if isinstance(cause, ApplicationError):
                raise NodeFailed(cause.message, cause.type or "") from None
            raise NodeFailed(str(cause or err), type(cause).__name__ if cause else "") from None

    # -- notifications -------------------------------------------------------------------------
    def notify(self, event: M.NotifyEvent, **fields: Any) -> None:
        """Tell Slack/webhooks, when the run asked for it; delivery runs beside the run, never in its way."""
        opts = self.inp.options.notify
        if opts is None or event not in opts.events or not (opts.slack_channel or opts.webhooks):
            return
        if event == "run_failed" and fields.get("status") == "failed_resumable" and self.final_status is not None:
            return  # a branch cut short by the run's end is not a failure to report
        info = workflow.info()
        ui_url = (f"{opts.ui_base_url.rstrip('/')}/namespaces/{info.namespace}/workflows/{info.workflow_id}"
                  if opts.ui_base_url else "")
        req = M.NotifyRequest(event=event, run_id=info.workflow_id, workflow=self.wf.name, usage=self.total_usage(),
                              slack_channel=opts.slack_channel, webhooks=list(opts.webhooks), ui_url=ui_url, **fields)
        self.deliveries.append(asyncio.create_task(self.deliver(req)))

    async def deliver(self, req: M.NotifyRequest) -> None:
        try:
            result = await workflow.execute_activity(
                M.NOTIFY, req, result_type=M.NotifyResult, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1),
                                         maximum_interval=timedelta(seconds=10)),
                summary=f"notify · {req.event}" + (f" · {req.gate}" if req.gate else ""))
        except ActivityError as err:
            self.emit("notify_failed", req.gate, data={"event": req.event, "error": str(err.cause or err)})
            return
        self.emit("notified", req.gate, data={"event": req.event, "delivered": result.delivered})

    async def notifications_delivered(self) -> None:
        """Give pending notifications a bounded time to land before the run ends."""
        if not self.deliveries:
            return
        try:
            await workflow.wait_condition(lambda: all(t.done() for t in self.deliveries),
                                          timeout=timedelta(seconds=90), timeout_summary="notifications")
        except asyncio.TimeoutError:
            self.emit("notify_failed", data={"error": "notifications still pending when the run ended"})

    # -- continue-as-new -----------------------------------------------------------------------
    async def maybe_continue_as_new(self, next_node: str) -> None:
        info = workflow.info()
        threshold = self.inp.options.continue_as_new_after_events
        due = info.is_continue_as_new_suggested() or (threshold > 0 and info.get_current_history_length() >= threshold)
        if not due or self.open_gates or self.failures or self.current or not all(t.done() for t in self.deliveries):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep = self.inp.options.max_events_kept // 4
        carried = CarriedState(
            next_node=next_node, vars=self.ctx.vars, outputs=self.ctx.outputs, history=self.ctx.history,
            artifacts=self.ctx.artifacts, artifact_versions=self.artifact_versions, loop_counters=self.loop_counters,
            rr_counters=self.rr_counters, budget_used=self.budget_used, budget_warned=self.budget_warned,
            nodes=self.nodes, answers=self.answers[-50:], early_answers=self.early_answers,
            events=self.events[-keep:] if keep else [], seq=self.seq, started_at=self.started_at,
            executions=self.executions, sessions=self.sessions, branch_sessions=self.branch_sessions,
        )
        self.emit("continue_as_new", next_node, data={"history_length": info.get_current_history_length()})
        workflow.continue_as_new(RunInput(workflow=self.wf, run_inputs=self.inp.run_inputs, source=self.inp.source,
                                          options=self.inp.options, carried=carried))


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
