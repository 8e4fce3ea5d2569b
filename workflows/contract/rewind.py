"""Rewind and fork: a run's state as it was before the latest main-walk visit of one of its nodes.

The interpreter records a small `Checkpoint` each time the main walk enters a node (counters,
not outputs); `state_before` rebuilds the state before that visit from it and the node output
histories the state keeps anyway, so recording costs a few integers per node and the state stays
bounded. The run service uses it to start the execution that replaces a rewound run (same run id)
or the new run of a fork (`RunInput.carried` with `next_node` = the node, `RunInput.resume` saying
which). Pure: no Temporal, no I/O.
"""

from __future__ import annotations

from typing import Any

from dsl.ir import Workflow
from workflows.contract.messages import Usage
from workflows.contract.state import Checkpoint, RunState


class RewindError(ValueError):
    """The state cannot be rebuilt before that node (never visited on the main walk, or too long ago)."""


def record_checkpoint(state: RunState, node_id: str) -> None:
    """Remember where this main-walk visit of ``node_id`` starts from: counters, not outputs (the
    outputs before it are the first entries of each node's output history). One per node, the
    latest visit; the interpreter calls this as the main walk enters a node."""
    visit = state.nodes[node_id].visits + 1 if node_id in state.nodes else 1
    state.checkpoints.pop(node_id, None)  # re-insert: dict order is recency
    state.checkpoints[node_id] = Checkpoint(
        seq=state.seq, visit=visit,
        produced={n: len(h) + state.history_trimmed.get(n, 0) for n, h in state.history.items() if h},
        statuses={n: ns.status for n, ns in state.nodes.items() if ns.status != "pending"},
        loop_counters=dict(state.loop_counters), rr_counters=dict(state.rr_counters),
        artifact_versions=dict(state.artifact_versions), sessions=dict(state.sessions),
        branch_sessions=dict(state.branch_sessions))


def rewind_points(state: RunState) -> list[str]:
    """The nodes `rewind --to` and `fork --at` can name, in the order their latest visits started."""
    return [n for n, _ in sorted(state.checkpoints.items(), key=lambda item: item[1].seq)]


def state_before(state: RunState, wf: Workflow, node: str) -> RunState:
    """The state as it was when ``node``'s latest main-walk visit started, to resume at ``node``.

    Restored: outputs and their history, published artifacts and their versions, loop and
    round-robin counters, conversation sessions, node statuses; later checkpoints are dropped.
    Kept: visit counts (so a re-opened gate has a new interaction id, and a scripted model its next
    output), usage and budget spent, answers and events (what happened stays on record). Answers
    queued for gates not open yet are dropped: a re-opened gate is asked again.
    """
    cp = state.checkpoints.get(node)
    if cp is None:
        points = rewind_points(state)
        raise RewindError(f"node '{node}' has no rewind point in this run (a node gets one when the main walk "
                          f"enters it; nodes inside fan-out branches have none); rewind points: "
                          f"{', '.join(points) or '(none: the run records none, or was started before they existed)'}")
    history: dict[str, list[dict[str, Any]]] = {}
    for name, items in state.history.items():
        produced = cp.produced.get(name, 0)
        keep = produced - state.history_trimmed.get(name, 0)
        if produced > 0 and keep <= 0:
            raise RewindError(f"the outputs '{name}' had before '{node}' started are no longer kept (only the latest "
                              f"{len(items)} are); rewind to a later node")
        if keep > 0:
            history[name] = items[:keep]
    outputs = {name: items[-1] for name, items in history.items() if items}
    artifacts = dict(state.artifacts)
    for name, wf_node in wf.nodes.items():
        publish = getattr(wf_node, "publish", "")
        if publish and len(history.get(name, [])) != len(state.history.get(name, [])):
            if history.get(name):
                artifacts[publish] = history[name][-1]
            else:
                artifacts.pop(publish, None)
    nodes = {name: ns.model_copy(update={"status": cp.statuses.get(name, "pending"), "error": ""})
             for name, ns in state.nodes.items()}
    return state.model_copy(update={
        "next_node": node, "outputs": outputs, "history": history, "artifacts": artifacts,
        "artifact_versions": dict(cp.artifact_versions), "loop_counters": dict(cp.loop_counters),
        "rr_counters": dict(cp.rr_counters), "sessions": dict(cp.sessions), "branch_sessions": dict(cp.branch_sessions),
        "nodes": nodes, "early_answers": {},
        "checkpoints": {n: c for n, c in state.checkpoints.items() if c.seq < cp.seq},
        "history_trimmed": {n: t for n, t in state.history_trimmed.items() if n in history},
    })


def rewound(state: RunState, wf: Workflow, node: str, *, vars: dict[str, Any], events_kept: int) -> RunState:
    """The state a rewound run's new execution starts from: `state_before`, ``vars`` over the run's
    vars, the event log kept (its latest ``events_kept`` events, as continue-as-new keeps them)."""
    before = state_before(state, wf, node)
    events = before.events[-events_kept:] if events_kept > 0 else []
    return before.model_copy(update={"vars": {**before.vars, **declared(wf, vars)}, "events": events})


def forked(state: RunState, wf: Workflow, node: str, *, vars: dict[str, Any]) -> RunState:
    """The state a fork starts from: `state_before`, ``vars`` over the run's vars, and nothing of the
    source run's own record (events, answers, usage, budget spent, executions). Event numbers go on
    from the source's, so the checkpoints carried over stay in order."""
    before = state_before(state, wf, node)
    nodes = {name: ns.model_copy(update={"usage": Usage(), "attempts": 0}) for name, ns in before.nodes.items()}
    return before.model_copy(update={
        "vars": {**before.vars, **declared(wf, vars)}, "events": [], "answers": [], "nodes": nodes,
        "budget_used": {}, "budget_warned": [], "started_at": "", "executions": 0})


def declared(wf: Workflow, values: dict[str, Any]) -> dict[str, Any]:
    """The values of ``values`` that are declared vars of ``wf`` (others do not become vars)."""
    return {name: value for name, value in values.items() if name in wf.vars}
