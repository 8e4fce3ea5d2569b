"""Graph questions about a compiled workflow, shared by the validator and the interpreter.

Every function iterates in edge declaration order (never over a set) so results are
deterministic, which the Temporal workflow relies on.
"""

from __future__ import annotations

from collections import deque

from .ir import JoinNode, Workflow


def successors(wf: Workflow) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in wf.edges:
        out.setdefault(e.source, []).append(e.target)
    return out


def predecessors(wf: Workflow) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in wf.edges:
        out.setdefault(e.target, []).append(e.source)
    return out


def reachable(wf: Workflow, start: str) -> list[str]:
    """Nodes reachable from ``start`` (included), in BFS order; conditions are ignored."""
    succ = successors(wf)
    seen = {start}
    order = [start]
    queue = deque([start])
    while queue:
        for nxt in succ.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                queue.append(nxt)
    return order


def loop_endpoints(wf: Workflow) -> set[str]:
    """Nodes that are the source or target of a loop-carrying edge."""
    ends: set[str] = set()
    for e in wf.edges:
        if e.loop_name:
            ends.add(e.source)
            ends.add(e.target)
    return ends


def loop_targets(wf: Workflow) -> set[str]:
    return {e.target for e in wf.edges if e.loop_name}


class Upstream:
    """Memoised "which nodes can have run before X" (all edges followed backwards).

    A node counts as its own upstream when it is the target of a loop edge: on the second
    iteration its previous output exists.
    """

    def __init__(self, wf: Workflow) -> None:
        self._pred = predecessors(wf)
        self._loop_targets = loop_targets(wf)
        self._cache: dict[str, set[str]] = {}

    def of(self, node: str) -> set[str]:
        cached = self._cache.get(node)
        if cached is not None:
            return cached
        seen: set[str] = set()
        queue = deque(self._pred.get(node, []))
        while queue:
            n = queue.popleft()
            if n in seen:
                continue
            seen.add(n)
            queue.extend(self._pred.get(n, []))
        if node not in self._loop_targets:
            seen.discard(node)
        else:
            seen.add(node)
        self._cache[node] = seen
        return seen


def is_convergence_point(wf: Workflow, node_id: str) -> bool:
    """A node that waits for several branches: a join, or a node with an explicit `await`."""
    node = wf.nodes.get(node_id)
    return isinstance(node, JoinNode) or (node is not None and node.await_mode != "none")
