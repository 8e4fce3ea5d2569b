"""GraphRun: the Temporal workflow that interprets a compiled `.iter` graph.

It walks the graph and owns the Temporal plumbing: activities, search attributes, current details,
notifications, continue-as-new, parking failed nodes until retried, and the signals, updates and
queries clients use. It only schedules: activities do every side effect. Each node kind's behaviour
lives in `workflows.nodes`, behind one interface this class implements (`nodes.base.RunContext`);
graph semantics live in pure modules (`edges`, `inputs`, `convergence`, `budget`, the contract's
rules). The run's state is one object, `RunState`, that continue-as-new carries whole; what belongs
to one execution only (open gates, parked failures, running nodes, the end) stays on this class.
Each node the main walk enters gets a checkpoint in the state, from which `rewind` and `fork` (run
by clients, `runtime/run_rewind.py`) start a new execution at that node (`RunInput.resume`).

Failures do not kill the run: a node whose activity fails after its retries *parks* — the run's
status becomes `failed_resumable` and the branch waits for a `retry` signal (or cancellation),
then re-runs that node. Human gates wait on an `answer` update (validated) or signal (idempotent),
one answer per gate opening.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from dsl import ir
    from dsl.expressions import ExpressionError, Scope, evaluate
    from workflows import metrics
    from workflows.activity_retries import error_retry_delay
    from workflows.budget import (
        LIMIT_FLAGS,
        BudgetCheck,
        budget_exceeded,
        current_limits,
        effective_budget,
        grant_problem,
        granted_counters,
        new_budget_warnings,
        raise_problem,
        round_spend,
        round_unaffordable,
        used_so_far,
    )
    from workflows.contract import messages as M
    from workflows.contract import vocabulary
    from workflows.contract.activities import ActivitySpec, Req, Res
    from workflows.contract.rewind import record_checkpoint, rewind_points
    from workflows.contract.state import (
        SA_COST,
        SA_OPEN_GATES,
        SA_STATUS,
        SA_WORKFLOW,
        WORKFLOW_TYPE,
        Answer,
        AnswerRecord,
        BudgetRaise,
        Event,
        Failure,
        Gate,
        LiveControl,
        LoopGrant,
        NodeState,
        PauseRequest,
        RunInput,
        RunOptions,
        RunResult,
        RunState,
        RunStatus,
        RunView,
    )
    from workflows.contract.vocabulary import EventType
    from workflows.convergence import is_mutating
    from workflows.edges import bounded_counters, inner_loops, loop_bound_value, loop_regions, select_edge
    from workflows.inputs import (
        DataContext,
        build_input,
        expression_scope,
        initial_vars,
        loop_view,
        missing_required_vars,
    )
    from workflows.notifications import Notifications
    # The node kinds are workflow code too, but stateless (functions and constant tables): passed
    # through, they are imported once per worker instead of once per run's sandbox.
    from workflows.nodes import gates, visit_for
    from workflows.nodes.base import NodeFailed, StopRun, WalkEnd
    from workflows.nodes.fan_out import keep_in_branch, outputs_in_scope, visit_all, visit_each, visit_foreach
    from workflows.nodes.mcp_tools import check_mcp_servers

_KEY_WORKFLOW = SearchAttributeKey.for_keyword(SA_WORKFLOW)
_KEY_STATUS = SearchAttributeKey.for_keyword(SA_STATUS)
_KEY_GATES = SearchAttributeKey.for_keyword_list(SA_OPEN_GATES)
_KEY_COST = SearchAttributeKey.for_float(SA_COST)

_HISTORY_KEPT = 200  # {{outputs.X.history}} keeps the latest outputs; bounds carried state
_ANSWERS_CARRIED = 50  # answers handed to the next execution on continue-as-new
#: What Temporal never retries itself: every error an activity names (`GraphRun.retry_policy`).
_ENDS_THE_ATTEMPTS = list(vocabulary.ERROR_TYPES)
_END_EVENTS: dict[str, EventType] = {"finished": "run_finished", "failed": "run_failed",
                                     "budget_exceeded": "run_budget_exceeded"}
#: Runs recorded when a budget stop ended the run replay that; newer ones park until it is raised.
_BUDGET_PARKS = "budget-parks"
#: Runs recorded before the loop budget guard took a loop's back edge whatever the budget left.
_LOOP_BUDGET_GUARD = "loop-budget-guard"
#: How long a local activity (a fast builtin tool, `nodes.tool`) may take, retries included, before
#: the node runs it as an ordinary activity instead: a workflow task waits for its local activities.
_LOCAL_BUDGET = timedelta(seconds=5)


class BudgetStop(StopRun):
    """A budget limit reached inside a node (before its work, or between its model turns): the
    run parks on it (`on_budget: park`) or ends with status budget_exceeded."""

    def __init__(self, check: BudgetCheck, reason: str, node: str, *, before_step: bool) -> None:
        super().__init__("budget_exceeded", reason, node)
        self.check = check
        self.before_step = before_step


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=True)
class GraphRun:
    """Implements `workflows.nodes.base.RunContext`: node kinds reach the run only through it."""

    @workflow.init
    def __init__(self, inp: RunInput) -> None:
        self.inp = inp
        self.wf: ir.Workflow = inp.workflow
        if inp.carried is not None:
            self.state = inp.carried
            self.state.executions += 1
        else:
            self.state = RunState.begin(inp.workflow, initial_vars(inp.workflow, inp.run_inputs))
        # This execution's own, never carried over.
        self.open_gates: dict[str, Gate] = {}
        self.gate_answers: dict[str, AnswerRecord] = {}
        self.failures: dict[str, Failure] = {}
        self.retry_requested: set[str] = set()
        self.current: list[str] = []
        self.final_status: RunStatus | None = None
        self.last_node = ""
        self.reason = ""
        self.workspace_lock = asyncio.Lock()
        self.notifications = Notifications(inp.options.notify, self.emit)
        self._last_status = ""
        self._inner_loops: dict[str, list[str]] | None = None  # computed when a loop edge is first taken
        self._loop_regions: dict[str, frozenset[str]] | None = None  # computed when the loop guard first prices a round
        # live control: walks parked on a spent budget (their key → why and how to go on), walks held by a pause
        self.budget_waits: dict[str, str] = {}
        self.held: list[str] = []

    @property
    def options(self) -> RunOptions:
        return self.inp.options

    @property
    def data(self) -> DataContext:
        s = self.state
        return DataContext(vars=s.vars, run_inputs=self.inp.run_inputs, outputs=outputs_in_scope(s.outputs),
                           history=s.history, artifacts=s.artifacts, loops=self.loop_data(), run=self.run_data())

    def loop_data(self) -> dict[str, dict[str, Any]]:
        """`{{loop.NAME.…}}` and `loop.NAME.…` in expressions: read from the run's state."""
        s = self.state
        return loop_view(self.wf, s.loop_counters, s.loop_grants, s.loop_previous, s.loop_bounds) if self.wf.loops else {}

    def run_data(self) -> dict[str, Any]:
        """`{{run.…}}`: the run's id, seconds since it started (workflow time, so replays agree), its
        cost and tokens so far."""
        # Plain sums, in `total_usage`'s order (so the same floats): every node visit builds this, and a
        # `Usage` model per node per visit made a wide fan-out's visits cost quadratic time.
        usages = [n.usage for n in self.state.nodes.values()]
        cost = sum(u.cost_usd for u in usages)
        tokens = sum(u.total_tokens for u in usages)
        started = datetime.fromisoformat(self.state.started_at) if self.state.started_at else workflow.now()
        return {"id": workflow.info().workflow_id, "elapsed_seconds": round((workflow.now() - started).total_seconds(), 3),
                "cost_usd": round(cost, 6), "tokens": tokens}

    # -- entry point ---------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        if self.wf.format_version != ir.IR_FORMAT_VERSION:
            raise ApplicationError(
                f"IR format version {self.wf.format_version} is not supported by this worker "
                f"(it runs version {ir.IR_FORMAT_VERSION}); recompile the .iter file with a matching iterloop",
                type=M.ERR_BAD_REQUEST, non_retryable=True)
        if not self.state.started_at:
            self.state.started_at = workflow.now().isoformat()
        start = self.state.next_node
        if inp.carried is None:
            missing = missing_required_vars(self.wf, inp.run_inputs)
            if missing:
                raise ApplicationError(
                    f"missing value for var(s) {', '.join(missing)}; pass --var NAME=VALUE",
                    type=M.ERR_BAD_REQUEST, non_retryable=True)
            self.emit("run_started", data={"workflow": self.wf.name, "entry": start})
            metrics.run_started(self.wf.name)
        elif inp.resume is not None:  # a rewind (same run, new execution) or a fork (a new run)
            resume = inp.resume
            self.emit("run_rewound" if resume.kind == "rewind" else "run_forked", start,
                      data={"from_run": resume.from_run, "by": resume.by, **({"vars": resume.vars} if resume.vars else {})})
            if resume.kind == "fork":
                metrics.run_started(self.wf.name)
        else:
            self.emit("run_continued", data={"next_node": start, "execution": self.state.executions})
        workflow.upsert_search_attributes([_KEY_WORKFLOW.value_set(self.wf.name)])
        self.publish_status()
        try:
            if inp.carried is None:
                await self.check_mcp_servers(start)
            end = await self.walk(start, branch="", stop_at=None, tolerate=False)
            self.final_status, self.reason, self.last_node = "finished", f"reached {end.node}", end.node
            self.emit("run_finished", end.node)
        except StopRun as stop:
            self.final_status, self.reason, self.last_node = stop.status, stop.reason, stop.node
            self.emit(_END_EVENTS[stop.status], stop.node, data={"reason": stop.reason})
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
        await self.notifications.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(status=self.final_status, reason=self.reason, outputs=self.state.outputs,
                         usage=self.state.total_usage(), last_node=self.last_node)

    async def check_mcp_servers(self, start: str) -> None:
        """A new run whose MCP servers cannot all be reached fails before its first node, naming
        each server and why (as Iterion's pre-run check does), instead of parking hours later at
        the first node that calls one."""
        failed = await check_mcp_servers(self)
        if failed:
            for health in failed:
                self.emit("mcp_server_failed", data={"server": health.name, "error": health.error})
            raise StopRun("failed", "MCP server(s) not reachable before the run started: " + "; ".join(
                f"'{h.name}': {h.error}" for h in failed) + " (fix the server's mcp_server block or .mcp.json entry, "
                "then start the run again)", start)

    # -- the walk ------------------------------------------------------------------------------
    async def walk(self, start: str, *, branch: str, stop_at: str | None, tolerate: bool) -> WalkEnd:
        """Follow the graph from ``start`` until done/fail, the convergence node, or a failure.

        ``tolerate`` (best-effort branches) turns a node failure into the end of the branch
        instead of parking it.
        """
        node_id = start
        while True:
            if stop_at is not None and node_id == stop_at:
                return WalkEnd("converged", node_id)
            await self.at_boundary(node_id, branch)
            if not branch:
                await self.maybe_continue_as_new(node_id)
            node = self.wf.nodes.get(node_id)
            if node is None:
                raise StopRun("failed", f"node '{node_id}' does not exist in workflow '{self.wf.name}'", node_id)
            self.enter(node_id, branch)
            if not branch:
                record_checkpoint(self.state, node_id)
            try:
                if node.kind == "done":
                    self.finish_node(node_id, branch, {})
                    return WalkEnd("done", node_id)
                if node.kind == "fail":
                    self.finish_node(node_id, branch, {})
                    if branch:
                        return WalkEnd("failed", node_id, "branch reached the fail node")
                    raise StopRun("failed", "workflow reached the fail node", node_id)
                if isinstance(node, ir.RouterNode) and node.router_mode == "fan_out_all":
                    nxt = await visit_all(self, node, branch)
                elif isinstance(node, ir.RouterNode) and node.router_mode == "fan_out_each":
                    nxt = await visit_each(self, node, branch)
                elif isinstance(node, ir.RouterNode) and node.router_mode == "foreach":
                    nxt = await visit_foreach(self, node, branch)
                else:
                    nxt = await self.step(node, branch, tolerate)
            except NodeFailed as failure:  # only reached when tolerating failures
                return WalkEnd("failed", node_id, str(failure))
            finally:
                self.leave(node_id)
            if node_id in self.options.stop_after:
                raise StopRun("finished", f"stopped after '{node_id}' as asked (--stop-after)", node_id)
            if nxt is None:
                return WalkEnd("done", node_id)
            node_id = nxt

    async def step(self, node: ir.Node, branch: str, tolerate: bool) -> str | None:
        """Execute one node and choose where to go; on failure park until retried."""
        while True:
            try:
                return await self.visit(node, branch)
            except BudgetStop as stop:
                if not self.parks_on_budget():
                    raise
                # Nothing of the node was kept (its work had not started, or its model turns are
                # given up): once the limit is raised, it runs again from its start.
                await self.park_for_budget(stop.check, node.id, branch, "in", before_step=stop.before_step)
            except NodeFailed as failure:
                if tolerate:
                    self.state.nodes[node.id].status = "failed"
                    self.emit("node_failed", node.id, branch, {"error": str(failure), "tolerated": True})
                    raise
                await self.park(node.id, branch, str(failure), failure.error_type)

    async def visit(self, node: ir.Node, branch: str) -> str | None:
        """Start the node (a visit, its input, `node_started`), then let its kind's visit run it."""
        state = self.state.nodes[node.id]
        state.visits += 1
        state.status = "running"
        node_input = build_input(self.wf, node.id, self.data)
        self.emit("node_started", node.id, branch, {"kind": node.kind, "visit": state.visits})
        return await visit_for(node)(self, node, branch, node_input)

    def route(self, node_id: str, branch: str, output: dict[str, Any]) -> str | None:
        loop_counters = self.state.loop_counters
        try:
            counters = bounded_counters(self.wf, granted_counters(loop_counters, self.state.loop_grants),
                                        self.loop_bounds(node_id))
            edge = select_edge(self.wf, node_id, output, counters, self.edge_scope(node_id))
        except (ExpressionError, ValueError) as exc:
            raise NodeFailed(f"edge after '{node_id}': {getattr(exc, 'message', exc)}", "ExpressionError") from None
        if edge is not None and edge.loop_name:
            edge = self.loop_budget_guard(node_id, branch, output, edge)
        if edge is None:
            if not any(e.source == node_id for e in self.wf.edges):
                return None  # a dead end ends this path (the validator warns about nothing here)
            raise NodeFailed(f"no outgoing edge of '{node_id}' matches its output "
                             f"(conditions: {', '.join(sorted({e.condition or (e.expression.source if e.expression else '') for e in self.wf.edges if e.source == node_id and (e.condition or e.expression)}))}"
                             "); add an unconditional fallback edge or a `when else` edge", "NoOutgoingEdge")
        data: dict[str, Any] = {"from": edge.source, "to": edge.target}
        if edge.condition:
            data.update(condition=edge.condition, negated=edge.negated)
        if edge.expression is not None:
            data["expression"] = edge.expression.source
        if edge.is_else:
            data["else"] = True
        if edge.loop_name:
            if self.wf.loops:  # what `loop.NAME.previous_output` reads in the next round
                self.state.loop_previous[edge.loop_name] = output
            loop_counters[edge.loop_name] = loop_counters.get(edge.loop_name, 0) + 1
            self.mark_round(edge.loop_name)
            data.update(loop=edge.loop_name, iteration=loop_counters[edge.loop_name])
            if edge.loop_name in self.state.loop_bounds:
                data["bound"] = self.state.loop_bounds[edge.loop_name]
            if self._inner_loops is None:
                self._inner_loops = inner_loops(self.wf) if len(self.wf.loops) > 1 else {}
            fresh = [n for n in self._inner_loops.get(edge.loop_name, []) if loop_counters.get(n)]
            # `patched` answers once per run: a run in flight whose history already went round an outer
            # loop with a used inner counter keeps run-wide counters (replay safety); others switch.
            if fresh and workflow.patched("reset-inner-loops"):
                for name in fresh:
                    del loop_counters[name]
                    self.state.loop_marks.pop(name, None)
                    self.state.loop_previous.pop(name, None)
                    self.state.loop_bounds.pop(name, None)
                data["reset_loops"] = fresh
        self.emit("edge_selected", node_id, branch, data)
        return edge.target

    def edge_scope(self, node_id: str) -> Scope | None:
        """What `when "…"` conditions after ``node_id`` read (None when it has none: nothing to build)."""
        if any(e.expression is not None for e in self.wf.edges if e.source == node_id):
            return expression_scope(self.data)
        return None

    def loop_bounds(self, node_id: str) -> dict[str, int]:
        """The data bounds of the loops on ``node_id``'s edges, each evaluated the first time its loop
        is entered and kept (ValueError / ExpressionError when it is not a usable number)."""
        bounds = self.state.loop_bounds
        for e in self.wf.edges:
            loop = self.wf.loops.get(e.loop_name) if e.source == node_id and e.loop_name else None
            if loop is not None and loop.bound is not None and loop.name not in bounds:
                value = evaluate(loop.bound.tree, expression_scope(self.data), loop.bound.source)
                bounds[loop.name] = loop_bound_value(self.wf, loop.name, value)
        return {name: bound for name, bound in bounds.items() if name in self.wf.loops}

    def workspace(self, node: ir.Node) -> AbstractAsyncContextManager[Any]:
        """One mutating node at a time across branches (workspace safety)."""
        if is_mutating(node):
            return self.workspace_lock
        return contextlib.nullcontext()

    # -- failures and retries ------------------------------------------------------------------
    async def park(self, node_id: str, branch: str, error: str, error_type: str) -> None:
        # The run is ending (a stop or a cancel elsewhere): a branch cut short has nothing to retry.
        if self.final_status is not None and workflow.patched("cancel-is-not-a-failure"):
            raise asyncio.CancelledError()
        node = self.state.nodes[node_id]
        node.status = "failed"
        node.error = error
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
        node.error = ""
        self.emit("node_retried", node_id, branch)
        self.publish_status()

    @workflow.signal(name="retry")
    def retry(self, node: str = "") -> None:
        """Re-run a parked node (all parked nodes when ``node`` is empty)."""
        targets = [node] if node else list(self.failures)
        for n in targets:
            if n in self.failures:
                self.retry_requested.add(n)

    # -- human answers (checked and accepted by `nodes.gates`) ---------------------------------
    @workflow.update(name="answer")
    async def answer(self, answer: Answer) -> AnswerRecord:
        return gates.accept_answer(self, answer)

    @answer.validator
    def validate_answer(self, answer: Answer) -> None:
        gates.check_answer(self, answer)

    @workflow.signal(name="answer")
    def answer_signal(self, answer: Answer) -> None:
        """The same as the update, for senders that cannot wait (Slack): a refusal is an
        `answer_rejected` event; the same sender's redelivered answer is ignored."""
        gates.accept_signalled_answer(self, answer)

    # -- queries -------------------------------------------------------------------------------
    @workflow.query(name="state")
    def view(self) -> RunView:
        s = self.state
        return RunView(
            workflow=self.wf.name, source=self.inp.source, status=self.status(), current_nodes=list(self.current),
            nodes=s.nodes, outputs=s.outputs, artifacts=s.artifacts, vars=s.vars, loop_counters=s.loop_counters,
            budget_used=s.budget_used, usage=self.state.total_usage(), open_gates=list(self.open_gates.values()),
            failures=list(self.failures.values()), answers=s.answers, last_seq=s.seq, reason=self.reason,
            executions=s.executions, rewind_points=rewind_points(s),
            budget_limits=s.budget_limits, loop_grants=s.loop_grants, paused_by=s.pause.by if s.pause else "",
            budget_wait=next(iter(self.budget_waits.values()), ""),
        )

    @workflow.query(name="run_state")
    def run_state(self) -> RunState:
        """The whole state (with its checkpoints): what `rewind` and `fork` start from."""
        return self.state

    @workflow.query(name="events")
    def events_since(self, after_seq: int = 0) -> list[Event]:
        return [e for e in self.state.events if e.seq > after_seq]

    # -- bookkeeping ---------------------------------------------------------------------------
    def status(self) -> RunStatus:
        if self.final_status is not None:
            return self.final_status
        if self.failures:
            return "failed_resumable"
        if self.budget_waits:
            return "waiting_budget"
        if self.held:
            return "paused"
        if self.open_gates:
            return "waiting_human"
        return "running"

    def publish_status(self) -> None:
        status = self.status()
        gates = sorted(self.open_gates)
        key = f"{status}|{','.join(gates)}|{self.state.total_usage().cost_usd:.6f}"
        if key == self._last_status:
            return
        self._last_status = key
        workflow.upsert_search_attributes([
            _KEY_STATUS.value_set(status),
            _KEY_GATES.value_set(gates) if gates else _KEY_GATES.value_unset(),
            _KEY_COST.value_set(round(self.state.total_usage().cost_usd, 6)),
        ])

    def set_details(self, text: str) -> None:
        workflow.set_current_details(f"{self.wf.name}: {text}")

    def enter(self, node_id: str, branch: str) -> None:
        self.current.append(node_id)
        self.set_details(f"running **{node_id}**" + (f" (branch {branch})" if branch else ""))

    def leave(self, node_id: str) -> None:
        if node_id in self.current:
            self.current.remove(node_id)

    def emit(self, kind: EventType, node: str = "", branch: str = "", data: dict[str, Any] | None = None) -> None:
        s = self.state
        s.seq += 1
        s.events.append(Event(seq=s.seq, time=workflow.now().isoformat(), type=kind, node=node, branch=branch,
                              data=data or {}))
        overflow = len(s.events) - self.options.max_events_kept
        if overflow > 0:
            del s.events[:overflow]

    def store_output(self, node: ir.Node, branch: str, output: dict[str, Any]) -> None:
        s = self.state
        if not keep_in_branch(node.id, output):  # a fan_out_each branch keeps its outputs to itself
            s.outputs[node.id] = output
        history = s.history.setdefault(node.id, [])
        history.append(output)
        if len(history) > _HISTORY_KEPT:
            s.history_trimmed[node.id] = s.history_trimmed.get(node.id, 0) + len(history) - _HISTORY_KEPT
            del history[: len(history) - _HISTORY_KEPT]
        publish = getattr(node, "publish", "")
        if publish:
            version = s.artifact_versions.get(node.id, 0)
            s.artifact_versions[node.id] = version + 1
            s.artifacts[publish] = output
            self.emit("artifact_written", node.id, branch, {"publish": publish, "version": version})
        self.finish_node(node.id, branch, output)

    def finish_node(self, node_id: str, branch: str, output: dict[str, Any]) -> None:
        state = self.state.nodes.setdefault(node_id, NodeState())
        if node_id in ("done", "fail"):
            state.visits += 1
        state.status = "succeeded"
        self.emit("node_finished", node_id, branch, {"output": output} if output else {})

    # -- budget --------------------------------------------------------------------------------
    def budget(self) -> ir.Budget | None:
        """The workflow's budget with the limits raised while the run ran (`iterloop budget`)."""
        return effective_budget(self.wf.budget, self.state.budget_limits)

    def check_budget(self, node_id: str, *, before_step: bool) -> None:
        used = used_so_far(self.state.budget_used, self.state.started_at, workflow.now())
        exceeded = budget_exceeded(self.budget(), used, before_step=before_step)
        if exceeded is not None:
            raise self.over_budget(exceeded, node_id, "before", before_step=before_step)

    def record_usage(self, node_id: str, usage: M.Usage, *, count_iteration: bool, enforce: bool = True) -> None:
        """Add ``usage`` to the node and the budget; over a limit, stop the run (unless ``enforce`` is
        False: a node's final answer is kept first, and the check after it stops the run)."""
        state = self.state.nodes[node_id]
        state.usage = state.usage.plus(usage)
        budget_used = self.state.budget_used
        if count_iteration:
            budget_used["iterations"] = budget_used.get("iterations", 0.0) + 1
        budget_used["tokens"] = budget_used.get("tokens", 0.0) + usage.total_tokens
        budget_used["cost_usd"] = budget_used.get("cost_usd", 0.0) + usage.cost_usd
        used = used_so_far(budget_used, self.state.started_at, workflow.now())
        for warning in new_budget_warnings(self.budget(), used, self.state.budget_warned):
            self.state.budget_warned.append(warning.dimension)
            self.emit("budget_warning", node_id, data={"dimension": warning.dimension, "used": warning.used,
                                                        "limit": warning.limit})
        if usage.cost_usd:
            self.publish_status()
        exceeded = budget_exceeded(self.budget(), used, before_step=False) if enforce else None
        if exceeded is not None and exceeded.dimension != "iterations":
            # A node that has finished keeps its output: the run parks at the next node boundary
            # (`at_boundary`) instead, so a raise goes on from there without running it again.
            if state.status == "succeeded" and self.parks_on_budget():
                return
            raise self.over_budget(exceeded, node_id, "after")

    def over_budget(self, exceeded: BudgetCheck, node_id: str, when: str, *, before_step: bool = False) -> BudgetStop:
        self.emit("budget_exceeded", node_id, data={"dimension": exceeded.dimension, "used": exceeded.used,
                                                     "limit": exceeded.limit})
        return BudgetStop(exceeded, f"budget exceeded: {exceeded.dimension} "
                          f"({exceeded.used:g} of {exceeded.limit:g}) {when} '{node_id}'", node_id,
                          before_step=before_step)

    def spent(self, *, before_step: bool) -> BudgetCheck | None:
        """The limit in force the run has reached now (None: it may go on)."""
        used = used_so_far(self.state.budget_used, self.state.started_at, workflow.now())
        return budget_exceeded(self.budget(), used, before_step=before_step)

    def parks_on_budget(self) -> bool:
        """Whether a budget stop parks the run (asked only when one happens: `patched` answers once
        per run, and runs recorded before parking existed end as they did)."""
        return self.options.on_budget == "park" and workflow.patched(_BUDGET_PARKS)

    # -- live control: pause, budget parking, the loop budget guard -----------------------------
    async def at_boundary(self, node_id: str, branch: str) -> None:
        """Between two nodes of a walk: hold while a pause is asked for, and park while a budget
        limit is reached (until `iterloop budget` raises it). A walk about to reach `done` or `fail`
        goes there: ending costs nothing, and parking one step from the end helps nobody."""
        if self.state.pause is not None:
            await self.hold_for_pause(node_id, branch)
        node = self.wf.nodes.get(node_id)
        if node is None or node.kind in ("done", "fail") or self.final_status is not None:
            return
        exceeded = self.spent(before_step=False)
        if exceeded is None or exceeded.dimension == "iterations":
            return  # iterations are checked before each counted step (`check_budget`), which parks in `step`
        if not self.parks_on_budget():
            return  # a run recorded before parking ended at the check after the node (`record_usage`)
        await self.park_for_budget(exceeded, node_id, branch, "before", before_step=False)

    async def park_for_budget(self, exceeded: BudgetCheck, node_id: str, branch: str, where: str, *,
                              before_step: bool) -> None:
        """Wait, status waiting_budget, until the limits in force let the walk go on (a raise), then
        go on where it stopped; the work done so far is kept. Cancelling the run ends the wait."""
        run_id = workflow.info().workflow_id
        flag = LIMIT_FLAGS[exceeded.dimension]
        suggested = f"{exceeded.limit * 2:g}" if exceeded.dimension != "duration_s" else f"{exceeded.limit * 2:g}s"
        message = (f"budget exceeded: {exceeded.dimension} ({exceeded.used:g} of {exceeded.limit:g}) {where} "
                   f"'{node_id}'; the run waits with its work kept: raise the limit with `iterloop budget {run_id} "
                   f"{flag} {suggested}` and it goes on from '{node_id}' (or end it: `iterloop cancel {run_id}`)")
        key = f"{branch}/{node_id}"
        self.budget_waits[key] = message
        self.emit("budget_exceeded", node_id, branch, {"dimension": exceeded.dimension, "used": exceeded.used,
                                                        "limit": exceeded.limit, "parked": True, "message": message})
        self.set_details(message)
        self.publish_status()
        self.notify("run_failed", status="waiting_budget", reason=message)
        try:
            await workflow.wait_condition(lambda: self.spent(before_step=before_step) is None)
        finally:
            self.budget_waits.pop(key, None)
        self.set_details(f"running **{node_id}**" + (f" (branch {branch})" if branch else ""))
        self.publish_status()

    async def hold_for_pause(self, node_id: str, branch: str) -> None:
        """Hold this walk before ``node_id`` until `resume` (status paused while every walk is held)."""
        pause = self.state.pause
        assert pause is not None
        self.held.append(node_id)
        self.emit("run_paused", node_id, branch, {"by": pause.by, **({"reason": pause.reason} if pause.reason else {})})
        self.set_details(f"paused by {pause.by} before **{node_id}**; `iterloop resume {workflow.info().workflow_id}` "
                         "goes on from there")
        self.publish_status()
        try:
            await workflow.wait_condition(lambda: self.state.pause is None)
        finally:
            self.held.remove(node_id)
        self.publish_status()

    def loop_budget_guard(self, node_id: str, branch: str, output: dict[str, Any], edge: ir.Edge) -> ir.Edge:
        """The loop budget guard: when the budget left (cost or tokens) cannot pay for another round
        like the previous one of ``edge``'s loop, leave the loop by the edge an exhausted loop takes,
        with the work done so far, instead of starting a round the budget would stop half-way. A loop
        with no such exit edge, or whose exit is a `fail` node, keeps going (and parks when the budget
        is spent)."""
        name = edge.loop_name
        budget = self.budget()
        if budget is None or not (budget.max_cost_usd or budget.max_tokens):
            return edge
        used = used_so_far(self.state.budget_used, self.state.started_at, workflow.now())
        estimate = round_spend(used, self.state.loop_marks.get(name), self.region_usage(name))
        short = round_unaffordable(budget, used, estimate)
        if short is None:
            return edge
        counters = granted_counters(self.state.loop_counters, self.state.loop_grants)
        exhausted = {**counters, name: self.wf.loops[name].max_iterations}
        try:
            exit_edge = select_edge(self.wf, node_id, output, exhausted, self.edge_scope(node_id))
        except ExpressionError:  # no exit can be chosen: keep going round, the node's route reports it
            return edge
        leaves = exit_edge is not None and exit_edge.loop_name != name and exit_edge.target in self.wf.nodes
        # Leaving for a `fail` node would throw the work away as surely as the cap: keep going then.
        if not leaves or self.wf.nodes[exit_edge.target].kind == "fail" or not workflow.patched(_LOOP_BUDGET_GUARD):
            return edge
        self.emit("loop_budget_guard", node_id, branch, {
            "loop": name, "dimension": short.dimension, "round_estimate": round(short.used, 6),
            "remaining": round(short.limit, 6), "to": exit_edge.target,
            "message": f"loop '{name}' left for '{exit_edge.target}': another round would spend about "
                       f"{short.used:g} {short.dimension}, {short.limit:g} is left"})
        return exit_edge

    def mark_round(self, loop: str) -> None:
        """Note the budget used as ``loop``'s back edge is taken: the next round is priced from it."""
        used = self.state.budget_used
        self.state.loop_marks[loop] = {"cost_usd": used.get("cost_usd", 0.0), "tokens": used.get("tokens", 0.0)}

    def region_usage(self, loop: str) -> dict[str, float]:
        """What the nodes of ``loop``'s region have spent (a first round's price)."""
        if self._loop_regions is None:
            self._loop_regions = loop_regions(self.wf)
        cost = tokens = 0.0
        for node_id in sorted(self._loop_regions.get(loop, frozenset())):  # one summation order on every replay
            usage = self.state.nodes[node_id].usage
            cost += usage.cost_usd
            tokens += usage.total_tokens
        return {"cost_usd": cost, "tokens": tokens}

    def live_control(self) -> LiveControl:
        """What a live-control update answers: the run as the change leaves it (a walk it frees goes
        on at the run's next workflow task, so its status is the one it is about to have)."""
        status = self.status()
        if (status == "waiting_budget" and self.spent(before_step=False) is None) or (
                status == "paused" and self.state.pause is None):
            status = "waiting_human" if self.open_gates else "running"
        return LiveControl(limits=current_limits(self.budget()), loop_grants=dict(self.state.loop_grants),
                           paused=self.state.pause is not None, status=status)

    def control_refusal(self, action: str) -> str | None:
        """Why a live-control update cannot apply to this run at all (None: it can)."""
        if self.final_status is not None:
            return f"the run is ending ({self.final_status}); there is nothing to {action}"
        return None

    def raise_refusal(self, request: BudgetRaise) -> str | None:
        return self.control_refusal("raise") or raise_problem(self.budget(), request.limits())

    @workflow.update(name="raise_budget")
    async def raise_budget(self, request: BudgetRaise) -> LiveControl:
        """Raise the run's limits (only upwards); a walk parked on a budget goes on once it fits."""
        _refuse(self.raise_refusal(request))  # judged again: two raises can pass their validators first
        limits = request.limits()
        self.state.budget_limits.update(limits)
        self.state.budget_warned = [d for d in self.state.budget_warned if d not in limits]
        self.emit("budget_raised", data={"limits": limits, "by": request.by,
                                         **({"reason": request.reason} if request.reason else {})})
        self.publish_status()
        return self.live_control()

    @raise_budget.validator
    def validate_raise_budget(self, request: BudgetRaise) -> None:
        _refuse(self.raise_refusal(request))

    def grant_refusal(self, grant: LoopGrant) -> str | None:
        return self.control_refusal("grant") or grant_problem(self.wf, grant.loop, grant.iterations)

    @workflow.update(name="grant_iterations")
    async def grant_iterations(self, grant: LoopGrant) -> LiveControl:
        """Let a loop go round ``iterations`` more times than its bound."""
        _refuse(self.grant_refusal(grant))
        self.state.loop_grants[grant.loop] = self.state.loop_grants.get(grant.loop, 0) + grant.iterations
        self.emit("loop_iterations_granted", data={"loop": grant.loop, "iterations": grant.iterations,
                                                   "granted": self.state.loop_grants[grant.loop], "by": grant.by,
                                                   **({"reason": grant.reason} if grant.reason else {})})
        return self.live_control()

    @grant_iterations.validator
    def validate_grant_iterations(self, grant: LoopGrant) -> None:
        _refuse(self.grant_refusal(grant))

    def pause_refusal(self, pausing: bool) -> str | None:
        refusal = self.control_refusal("pause" if pausing else "resume")
        if refusal is not None:
            return refusal
        if pausing and self.state.pause is not None:
            return f"the run is paused already (by {self.state.pause.by}); `iterloop resume` lets it go on"
        if not pausing and self.state.pause is None:
            return "the run is not paused; there is nothing to resume"
        return None

    @workflow.update(name="pause")
    async def pause(self, request: PauseRequest) -> LiveControl:
        """Hold the run at its next node boundary (a node running now finishes first)."""
        _refuse(self.pause_refusal(True))
        self.state.pause = request
        return self.live_control()

    @pause.validator
    def validate_pause(self, request: PauseRequest) -> None:
        _refuse(self.pause_refusal(True))

    @workflow.update(name="resume")
    async def resume(self, request: PauseRequest) -> LiveControl:
        """Let a paused run go on from the node boundary it is held at."""
        _refuse(self.pause_refusal(False))
        self.state.pause = None
        self.emit("run_resumed", data={"by": request.by, **({"reason": request.reason} if request.reason else {})})
        return self.live_control()

    @resume.validator
    def validate_resume(self, request: PauseRequest) -> None:
        _refuse(self.pause_refusal(False))

    # -- activities ----------------------------------------------------------------------------
    async def activity(self, spec: ActivitySpec[Req, Res], req: Req, node_id: str, summary: str,
                       timeout_seconds: float, *, heartbeat_timeout: float | None = None,
                       counts_as_attempt: bool = True, local: bool = False) -> Res:
        """Run one activity for a node; its failure after retries is `NodeFailed`, and a run being
        cancelled stays a cancellation (never a failure the node would park on or hand to a model).

        ``local``: run it as a local activity first (the caller has decided it may: a fast tool free
        of side effects, `nodes.tool`). Errors take the same path as an ordinary activity's (counted,
        retried after a durable timer, parked); an attempt that outlasts `_LOCAL_BUDGET` is not
        something to hold the workflow task for, so the node goes on as an ordinary activity."""
        state = self.state.nodes[node_id]
        failed = 0  # attempts that ended with an error (lost workers are Temporal's to retry)
        while True:
            try:
                if local:
                    try:
                        return await workflow.execute_local_activity(
                            spec.name, req, result_type=spec.result, schedule_to_close_timeout=_LOCAL_BUDGET,
                            retry_policy=self.retry_policy(), summary=summary)
                    except FailureError as err:
                        if not isinstance(_failure_cause(err), ActivityTimeoutError):
                            raise
                        local = False  # too slow for a local activity: the ordinary one, from the start
                return await workflow.execute_activity(
                    spec.name, req, result_type=spec.result,
                    start_to_close_timeout=timedelta(seconds=timeout_seconds),
                    heartbeat_timeout=timedelta(seconds=heartbeat_timeout) if heartbeat_timeout else None,
                    retry_policy=self.retry_policy(), summary=summary)
            except FailureError as err:
                if not (local or isinstance(err, ActivityError)):
                    raise  # not an activity's failure: what it always did
                cause = _failure_cause(err)
                # Runs that parked on a cancelled activity before this patch keep doing so on replay.
                if isinstance(cause, CancelledError) and workflow.patched("cancel-is-not-a-failure"):
                    raise cause from None
                failed += 1
                delay = error_retry_delay(cause, failed, self.options.max_attempts)
                # Runs recorded when Temporal retried errors itself parked here: they still do on replay.
                if delay is None or not workflow.patched("errors-retried-by-the-run"):
                    if counts_as_attempt:
                        state.attempts += 1
                    # The failure record names the node; the message is the cause as the activity said it.
                    if isinstance(cause, ApplicationError):
                        raise NodeFailed(cause.message, cause.type or "") from None
                    raise NodeFailed(str(cause or err), type(cause).__name__ if cause else "") from None
            await workflow.sleep(delay)

    def retry_policy(self) -> RetryPolicy:
        """Temporal retries an activity only when its worker is lost (heartbeat or start-to-close
        timeout, or a failure no activity error class names), up to `max_worker_losses` times: a
        dead worker is no reason to park. Every error of the vocabulary ends the attempt series, and
        `activity` retries the retryable ones itself, `max_attempts` in all, so lost workers never
        use up the attempts meant for errors (`workflows.activity_retries`)."""
        return RetryPolicy(maximum_attempts=max(0, self.options.max_worker_losses) + 1,
                           initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                           non_retryable_error_types=_ENDS_THE_ATTEMPTS)

    # -- notifications -------------------------------------------------------------------------
    def notify(self, event: M.NotifyEvent, **fields: Any) -> None:
        """Tell Slack/webhooks, when the run asked for it; delivery runs beside the run, never in its way."""
        if event == "run_failed" and fields.get("status") == "failed_resumable" and self.final_status is not None:
            return  # a branch cut short by the run's end is not a failure to report
        self.notifications.send(event, workflow_name=self.wf.name, usage=self.state.total_usage(), **fields)

    # -- continue-as-new -----------------------------------------------------------------------
    async def maybe_continue_as_new(self, next_node: str) -> None:
        """Hand the state to a new execution when history is long, between nodes of the main walk
        and only when nothing is open (gates, parked failures, branches, notifications)."""
        info = workflow.info()
        threshold = self.options.continue_as_new_after_events
        due = info.is_continue_as_new_suggested() or (threshold > 0 and info.get_current_history_length() >= threshold)
        if not due or self.open_gates or self.failures or self.current or self.notifications.pending:
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep = self.options.max_events_kept // 4
        s = self.state
        carried = s.model_copy(update={"next_node": next_node, "answers": s.answers[-_ANSWERS_CARRIED:],
                                       "events": s.events[-keep:] if keep else []})
        self.emit("continue_as_new", next_node, data={"history_length": info.get_current_history_length()})
        workflow.continue_as_new(RunInput(workflow=self.wf, run_inputs=self.inp.run_inputs, source=self.inp.source,
                                          options=self.options, carried=carried))


def _failure_cause(err: FailureError) -> BaseException | None:
    """What made an activity fail: an ordinary activity's failure is an `ActivityError` around it,
    a local activity's arrives as the cause itself (an `ApplicationError`, a timeout, a cancel)."""
    return err.cause if isinstance(err, ActivityError) else err


def _refuse(problem: str | None) -> None:
    """Refuse a live-control update (a validator records nothing; a handler changes nothing)."""
    if problem is not None:
        # An update handler that raises anything but an ApplicationError fails the workflow task.
        raise ApplicationError(problem, type=M.ERR_BAD_REQUEST, non_retryable=True)
