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
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from dsl import ir
    from workflows import metrics
    from workflows.activity_retries import error_retry_delay
    from workflows.budget import BudgetCheck, budget_exceeded, new_budget_warnings, used_so_far
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
        Event,
        Failure,
        Gate,
        NodeState,
        RunInput,
        RunOptions,
        RunResult,
        RunState,
        RunStatus,
        RunView,
    )
    from workflows.contract.vocabulary import EventType
    from workflows.convergence import is_mutating
    from workflows.edges import inner_loops, select_edge
    from workflows.inputs import DataContext, build_input, initial_vars, missing_required_vars
    from workflows.notifications import Notifications
    # The node kinds are workflow code too, but stateless (functions and constant tables): passed
    # through, they are imported once per worker instead of once per run's sandbox.
    from workflows.nodes import gates, visit_for
    from workflows.nodes.base import NodeFailed, StopRun, WalkEnd
    from workflows.nodes.fan_out import visit_all
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

    @property
    def options(self) -> RunOptions:
        return self.inp.options

    @property
    def data(self) -> DataContext:
        s = self.state
        return DataContext(vars=s.vars, run_inputs=self.inp.run_inputs, outputs=s.outputs, history=s.history,
                           artifacts=s.artifacts)

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
        edge = select_edge(self.wf, node_id, output, loop_counters)
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
            loop_counters[edge.loop_name] = loop_counters.get(edge.loop_name, 0) + 1
            data.update(loop=edge.loop_name, iteration=loop_counters[edge.loop_name])
            if self._inner_loops is None:
                self._inner_loops = inner_loops(self.wf) if len(self.wf.loops) > 1 else {}
            fresh = [n for n in self._inner_loops.get(edge.loop_name, []) if loop_counters.get(n)]
            # `patched` answers once per run: a run in flight whose history already went round an outer
            # loop with a used inner counter keeps run-wide counters (replay safety); others switch.
            if fresh and workflow.patched("reset-inner-loops"):
                for name in fresh:
                    del loop_counters[name]
                data["reset_loops"] = fresh
        self.emit("edge_selected", node_id, branch, data)
        return edge.target

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
    def check_budget(self, node_id: str, *, before_step: bool) -> None:
        used = used_so_far(self.state.budget_used, self.state.started_at, workflow.now())
        exceeded = budget_exceeded(self.wf.budget, used, before_step=before_step)
        if exceeded is not None:
            raise self.over_budget(exceeded, node_id, "before")

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
        for warning in new_budget_warnings(self.wf.budget, used, self.state.budget_warned):
            self.state.budget_warned.append(warning.dimension)
            self.emit("budget_warning", node_id, data={"dimension": warning.dimension, "used": warning.used,
                                                        "limit": warning.limit})
        if usage.cost_usd:
            self.publish_status()
        exceeded = budget_exceeded(self.wf.budget, used, before_step=False) if enforce else None
        if exceeded is not None and exceeded.dimension != "iterations":
            raise self.over_budget(exceeded, node_id, "after")

    def over_budget(self, exceeded: BudgetCheck, node_id: str, when: str) -> StopRun:
        self.emit("budget_exceeded", node_id, data={"dimension": exceeded.dimension, "used": exceeded.used,
                                                     "limit": exceeded.limit})
        return StopRun("budget_exceeded", f"budget exceeded: {exceeded.dimension} "
                       f"({exceeded.used:g} of {exceeded.limit:g}) {when} '{node_id}'", node_id)

    # -- activities ----------------------------------------------------------------------------
    async def activity(self, spec: ActivitySpec[Req, Res], req: Req, node_id: str, summary: str,
                       timeout_seconds: float, *, heartbeat_timeout: float | None = None,
                       counts_as_attempt: bool = True) -> Res:
        """Run one activity for a node; its failure after retries is `NodeFailed`, and a run being
        cancelled stays a cancellation (never a failure the node would park on or hand to a model)."""
        state = self.state.nodes[node_id]
        failed = 0  # attempts that ended with an error (lost workers are Temporal's to retry)
        while True:
            try:
                return await workflow.execute_activity(
                    spec.name, req, result_type=spec.result,
                    start_to_close_timeout=timedelta(seconds=timeout_seconds),
                    heartbeat_timeout=timedelta(seconds=heartbeat_timeout) if heartbeat_timeout else None,
                    retry_policy=self.retry_policy(), summary=summary)
            except ActivityError as err:
                cause = err.cause
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
