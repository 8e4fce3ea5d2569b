"""The one interface between the interpreter and what each kind of node does.

`RunContext` is everything a node kind may use of the run: its graph, state and options, and the
interpreter's services (events, activities, budget, outputs, edges, gates, notifications).
`GraphRun` implements it; a kind never touches Temporal state another way, so the commands a run
issues stay in the one order `GraphRun` defines (recorded histories replay against it).

`NodeVisit` is the one signature every kind's behaviour has: given the node and its input (the
node has started: visit counted, `node_started` emitted), do the node's work and say which node
comes next. Most kinds produce an output and let the node's edges choose; they share `produce`.

This is workflow code (it runs in the sandbox): it only schedules, through `RunContext`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from temporalio import workflow

from dsl import ir
from workflows import metrics
from workflows.contract.activities import ActivitySpec, Req, Res
from workflows.contract.messages import NotifyEvent, Usage
from workflows.contract.state import AnswerRecord, Gate, RunOptions, RunState
from workflows.contract.vocabulary import EventType
from workflows.inputs import DataContext

#: What a node's work gives: its output and the usage to count (empty when counted per turn).
Produced = tuple[dict[str, Any], Usage]


class StopRun(Exception):
    """Ends the run cleanly with a final status (budget exceeded, fail node, bad input, --stop-after)."""

    def __init__(self, status: Literal["finished", "failed", "budget_exceeded"], reason: str, node: str = "") -> None:
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
class WalkEnd:
    """How a walk along the graph ended: at `done` (or a dead end), at its branch's convergence
    node, or with its branch failed (best-effort branches only)."""

    kind: Literal["done", "converged", "failed"]
    node: str
    error: str = ""


class RunContext(Protocol):
    """The run as a node kind sees it (implemented by `GraphRun`)."""

    wf: ir.Workflow
    state: RunState
    #: This execution's open human gates (gate id → gate) and answers not yet taken (interaction id →).
    open_gates: dict[str, Gate]
    gate_answers: dict[str, AnswerRecord]

    @property
    def options(self) -> RunOptions: ...

    @property
    def data(self) -> DataContext:
        """What templates see: the state's outputs, history, artifacts and vars, and the run inputs."""
        ...

    def emit(self, kind: EventType, node: str = "", branch: str = "", data: dict[str, Any] | None = None) -> None: ...

    async def activity(self, spec: ActivitySpec[Req, Res], req: Req, node_id: str, summary: str,
                       timeout_seconds: float, *, heartbeat_timeout: float | None = None,
                       counts_as_attempt: bool = True, local: bool = False) -> Res:
        """Run one activity for a node; its failure after retries is `NodeFailed`. ``local``: as a
        local activity (no server round trip), for work that is fast and free of side effects."""
        ...

    def check_budget(self, node_id: str, *, before_step: bool) -> None: ...

    def record_usage(self, node_id: str, usage: Usage, *, count_iteration: bool, enforce: bool = True) -> None: ...

    def store_output(self, node: ir.Node, branch: str, output: dict[str, Any]) -> None:
        """Keep a node's output (history, published artifact) and mark the node finished."""
        ...

    def route(self, node_id: str, branch: str, output: dict[str, Any]) -> str | None:
        """Select the edge ``output`` takes (counting loops); None ends the path."""
        ...

    def workspace(self, node: ir.Node) -> AbstractAsyncContextManager[Any]:
        """Held while a node that may change the workspace runs (one at a time across branches)."""
        ...

    async def walk(self, start: str, *, branch: str, stop_at: str | None, tolerate: bool) -> WalkEnd: ...

    def set_details(self, text: str) -> None: ...

    def publish_status(self) -> None: ...

    def notify(self, event: NotifyEvent, **fields: Any) -> None: ...


class NodeVisit(Protocol):
    """One node kind's behaviour: do the started node's work, return the next node (None: path ends).

    ``node`` is of the kind the dispatch table (`workflows.nodes.VISITS`) chose this visit for.
    """

    def __call__(self, run: RunContext, node: Any, branch: str, node_input: dict[str, Any]) -> Awaitable[str | None]: ...


async def produce(run: RunContext, node: ir.Node, branch: str, work: Callable[[], Awaitable[Produced]], *,
                  counted: bool) -> str | None:
    """The path of every node that produces an output and lets its edges choose where to go.

    A ``counted`` step (all but joins, waits and gates a human answers) must fit the budget before
    it starts and counts as an iteration once its output is stored.
    """
    if counted:
        run.check_budget(node.id, before_step=True)
    began = workflow.now()
    try:
        output, usage = await work()
    except NodeFailed:
        metrics.node_finished(run.wf.name, node.id, node.kind, (workflow.now() - began).total_seconds(), "failed")
        raise
    metrics.node_finished(run.wf.name, node.id, node.kind, (workflow.now() - began).total_seconds(), "succeeded")
    run.store_output(node, branch, output)
    if counted:
        run.record_usage(node.id, usage, count_iteration=True)
    return run.route(node.id, branch, output)


def heartbeat_interval(timeout_seconds: float) -> float:
    """How often an activity heartbeats so that a dead worker is noticed within ``timeout_seconds``."""
    return max(0.5, min(5.0, timeout_seconds / 3))
