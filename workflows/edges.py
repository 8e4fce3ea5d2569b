"""Which edge a run follows, and how loops bound it: plain functions over the compiled graph.

Behaviour follows Iterion's runtime (docs/runtime.md lists where iterloop deliberately differs):
conditions read boolean fields of the source's output or are pure expressions
(dsl/expressions.py), a matching conditional edge beats the unconditional fallback, and an
exhausted loop edge becomes invisible. Nothing here does I/O, reads the clock or iterates a set,
so replays always choose the same edge.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

from dsl import ir
from dsl.expressions import Scope, evaluate, truthy


def select_edge(wf: ir.Workflow, node_id: str, output: dict[str, Any], loop_counters: dict[str, int],
                scope: Scope | None = None) -> ir.Edge | None:
    """The edge to follow after ``node_id`` produced ``output``; None when nothing matches.

    A matching conditional edge wins over the first unconditional one regardless of order; a
    condition field that is missing or not a real boolean matches neither `when x` nor `when not x`.
    Expression conditions (`when "…"`) are evaluated in declaration order against ``scope`` (its
    bare names read ``output``) and match when truthy; an expression that cannot be evaluated
    raises ExpressionError (the node fails with that message). `when else` is taken when no other
    edge matched. Among unconditional edges a loop's back edge with rounds left comes before a
    plain one: the plain edge is the loop's exhaustion exit.
    """
    fallback: ir.Edge | None = None
    otherwise: ir.Edge | None = None
    for e in wf.edges:
        if e.source != node_id:
            continue
        if e.loop_name and loop_exhausted(wf, e.loop_name, loop_counters):
            continue
        if e.is_else:
            otherwise = otherwise or e
            continue
        if e.expression is not None:
            here = Scope(fields=output) if scope is None else replace(scope, fields=output)
            if truthy(evaluate(e.expression.tree, here, e.expression.source)):
                return e
            continue
        if not e.condition:
            if fallback is None or (e.loop_name and not fallback.loop_name):
                fallback = e
            continue
        value = output.get(e.condition)
        if isinstance(value, bool) and value != e.negated:
            return e
    return fallback or otherwise


def loop_exhausted(wf: ir.Workflow, loop_name: str, loop_counters: dict[str, int]) -> bool:
    loop = wf.loops.get(loop_name)
    return loop is not None and loop_counters.get(loop_name, 0) >= loop.max_iterations


def loop_bound_value(wf: ir.Workflow, loop_name: str, value: Any) -> int:
    """A data loop bound's value checked: an integer from 0 to the loop's ceiling (0: the loop is
    not taken at all). Raises ValueError with a message naming the loop and the value."""
    loop = wf.loops[loop_name]
    source = loop.bound.source if loop.bound is not None else ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and len(value.strip()) <= 18:
        value = int(value.strip())  # `{{vars.n}}` of a string var, as Iterion accepts it
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= loop.max_iterations:
        raise ValueError(f"the bound of loop '{loop_name}' ({source!r}) is {value!r}; expected an integer from 0 to "
                         f"{loop.max_iterations}")
    return value


def bounded_counters(wf: ir.Workflow, counters: dict[str, int], bounds: dict[str, int]) -> dict[str, int]:
    """The counters edge selection compares with each loop's ``max_iterations``: a loop whose bound
    came from data is that much closer to its ceiling (the run's own counters are left as they are)."""
    if not bounds:
        return counters
    return {**counters, **{name: counters.get(name, 0) + wf.loops[name].max_iterations - bound
                           for name, bound in bounds.items() if name in wf.loops}}


def unconditional_targets(wf: ir.Workflow, node_id: str) -> list[ir.Edge]:
    return [e for e in wf.edges if e.source == node_id and not e.conditional]


def loop_regions(wf: ir.Workflow) -> dict[str, frozenset[str]]:
    """Each loop's region: the nodes of the smallest natural loop its edges lie in.

    A natural loop is the classic one of a back edge `s → h` (h dominates s from the entry): h and
    every node that reaches s without passing through h. Users may mark any edge of a cycle as the
    loop edge, so a loop is placed by the innermost natural loop that contains both ends of its
    edges; an edge in no natural loop (an irreducible cycle) gets its strongly connected part.
    """
    nodes = sorted({wf.entry, *wf.nodes, *(e.source for e in wf.edges), *(e.target for e in wf.edges)})
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for e in wf.edges:
        succ[e.source].append(e.target)
        pred[e.target].append(e.source)
    reachable = _closure(wf.entry, succ)
    dom = {n: (frozenset({n}) if n == wf.entry else frozenset(reachable)) for n in reachable}
    changed = True
    while changed:
        changed = False
        for n in sorted(reachable - {wf.entry}):
            inter = frozenset.intersection(*(dom[p] for p in pred[n] if p in dom)) if pred[n] else frozenset()
            new = inter | {n}
            if new != dom[n]:
                dom[n], changed = new, True
    natural: list[frozenset[str]] = []
    for e in wf.edges:
        if e.source in dom and e.target in dom[e.source]:  # a back edge
            body, stack = {e.target}, [e.source]
            while stack:
                n = stack.pop()
                if n not in body:
                    body.add(n)
                    stack.extend(pred[n])
            natural.append(frozenset(body))
    regions: dict[str, set[str]] = {}
    for e in wf.edges:
        if not e.loop_name:
            continue
        holding = [b for b in natural if e.source in b and e.target in b]
        region = min(holding, key=len) if holding else frozenset(
            n for n in _closure(e.target, succ) if e.source in _closure(n, succ))
        regions.setdefault(e.loop_name, set()).update(region)
    return {name: frozenset(region) for name, region in regions.items()}


def _closure(start: str, succ: dict[str, list[str]]) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in succ.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def inner_loops(wf: ir.Workflow) -> dict[str, list[str]]:
    """Loop → the loops nested in it (region strictly inside its region), sorted.

    When the outer loop goes round again, its inner loops start afresh: a monitoring loop inside
    an experiment cycle gets its full bound every cycle. (Iterion at SEED kept every counter for
    the whole run, a quirk it fixed later.)
    """
    regions = loop_regions(wf)
    return {outer: sorted(inner for inner, region in regions.items() if inner != outer and region < outer_region)
            for outer, outer_region in sorted(regions.items())}
