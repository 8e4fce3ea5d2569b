"""Where parallel branches meet again, how they wait for each other, and which may touch the workspace.

Plain functions over the compiled graph (no I/O, no clock, no set iteration order), so a fan-out
converges on the same node on every replay.
"""

from __future__ import annotations

from collections import deque

from dsl import ir

#: Tools that only read the workspace; an agent using only these is not "mutating".
READ_ONLY_TOOLS = frozenset({"git_diff", "git_status", "read_file", "list_files", "search_codebase", "tree"})


def find_convergence(wf: ir.Workflow, fan_targets: list[str]) -> str | None:
    """Where branches started at ``fan_targets`` meet again.

    The first node found breadth-first from the targets' successors that is a join, has an explicit
    `await`, or is entered from two or more distinct sources. Unlike Iterion, a fan target itself is
    never the convergence point (a branch always runs at least its first node).
    """
    sources: dict[str, list[str]] = {}
    for e in wf.edges:
        lst = sources.setdefault(e.target, [])
        if e.source not in lst:
            lst.append(e.source)
    targets = set(fan_targets)
    for start in fan_targets:
        seen = {start}
        queue = deque(e.target for e in wf.edges if e.source == start)
        while queue:
            n = queue.popleft()
            if n in seen:
                continue
            seen.add(n)
            node = wf.nodes.get(n)
            if node is None:
                continue
            if n not in targets and (
                isinstance(node, ir.JoinNode) or node.await_mode != "none" or len(sources.get(n, [])) >= 2
            ):
                return n
            queue.extend(e.target for e in wf.edges if e.source == n)
    return None


def convergence_strategy(wf: ir.Workflow, node_id: str) -> str:
    node = wf.nodes.get(node_id)
    mode = node.await_mode if node is not None else "none"
    return "wait_all" if mode == "none" else mode


def is_mutating(node: ir.Node) -> bool:
    """Whether a node may change the workspace. Such agents take turns across branches
    (`GraphRun.workspace`); shell commands do only in runs recorded before the
    `parallel-shell-branches` patch (`workflows/nodes/tool.py`)."""
    if isinstance(node, ir.ToolNode):
        return not node.call  # builtin calls go through the tool registry, not the workspace
    if isinstance(node, ir.AgentNode):
        if node.readonly:
            return False
        return any(t not in READ_ONLY_TOOLS for t in node.tools) or bool(node.backend)
    return False


def mutating_branches(wf: ir.Workflow, fan_targets: list[str], convergence: str | None) -> list[str]:
    """Fan targets whose branch (up to the convergence point) contains a mutating node."""
    result = []
    for start in fan_targets:
        seen: set[str] = set()
        queue = deque([start])
        mutating = False
        while queue:
            n = queue.popleft()
            if n in seen or n == convergence:
                continue
            seen.add(n)
            node = wf.nodes.get(n)
            if node is None or node.kind in ("done", "fail"):
                continue
            if is_mutating(node):
                mutating = True
                break
            queue.extend(e.target for e in wf.edges if e.source == n)
        if mutating:
            result.append(start)
    return result
