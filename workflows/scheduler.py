"""Graph semantics of a run, as plain functions over plain data.

The Temporal workflow (graph_run.py) is a thin shell around this module: it asks which edge to
take, what a node's input is, how a prompt or command renders, where branches converge, whether
the budget allows another step. Nothing here does I/O, reads the clock or iterates a set, so unit
tests drive it without a server and replays always decide the same way.

Behaviour follows Iterion's runtime (docs/runtime.md lists where iterloop deliberately differs):
conditions read boolean fields of the source's output, a matching conditional edge beats the
unconditional fallback, exhausted loop edges become invisible, `with` values holding exactly one
reference keep their type while anything else is interpolated text.
"""

from __future__ import annotations

import json
import shlex
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dsl import ir
from dsl.templates import MISSING, TemplateError, evaluate_mapping, render
from workflows.contract.answers import AnswerError, answer_schema, coerce_answers, interaction_id  # noqa: F401
from workflows.contract.artifact_refs import ARTIFACT_KEY, ARTIFACT_REF_KEY, artifact_token  # noqa: F401
from workflows.contract.scripts import script_for_node  # noqa: F401
from workflows.contract.tool_policy import DEFAULT_TOOL_MAX_STEPS, effective_tool_policy, policy_denial, tool_allowed  # noqa: F401

#: Tools that only read the workspace; an agent using only these is not "mutating".
READ_ONLY_TOOLS = frozenset({"git_diff", "git_status", "read_file", "list_files", "search_codebase", "tree"})


@dataclass
class DataContext:
    """What templates can see: latest outputs, their history, artifacts, vars and run inputs."""

    vars: dict[str, Any] = field(default_factory=dict)
    run_inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lookup(self, node_input: dict[str, Any] | None = None):  # noqa: ANN201 - returns a Lookup
        """A resolver for `{{…}}` references; ``node_input`` backs the `input` namespace."""

        def resolve(ref: ir.Ref) -> Any:
            head, rest = ref.path[0], ref.path[1:]
            if ref.kind == "vars":
                value = self.vars.get(head, MISSING)
            elif ref.kind == "input":
                value = (node_input or {}).get(head, MISSING)
            elif ref.kind == "artifacts":
                value = self.artifacts.get(head, MISSING)
            else:
                if rest and rest[-1] == "history":
                    return list(self.history.get(head, []))
                value = self.outputs.get(head, MISSING)
            for i, key in enumerate(rest):
                if not isinstance(value, dict):
                    return MISSING
                stub = value.get(ARTIFACT_KEY)
                if isinstance(stub, dict) and key in stub.get("fields", []):
                    return {ARTIFACT_REF_KEY: stub["uri"], "path": list(rest[i:])}
                value = value.get(key, MISSING)
            return value

        return resolve


def initial_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> dict[str, Any]:
    """Declared defaults, overridden by run inputs of the same name (others do not become vars)."""
    values = {name: var.default for name, var in wf.vars.items() if var.has_default}
    for name in wf.vars:
        if name in run_inputs:
            values[name] = run_inputs[name]
    return values


def missing_required_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> list[str]:
    return [name for name, var in wf.vars.items() if not var.has_default and name not in run_inputs]


# -- edges -------------------------------------------------------------------------------------


def select_edge(wf: ir.Workflow, node_id: str, output: dict[str, Any], loop_counters: dict[str, int]) -> ir.Edge | None:
    """The edge to follow after ``node_id`` produced ``output``; None when nothing matches.

    A matching conditional edge wins over the first unconditional one regardless of order; a
    condition field that is missing or not a real boolean matches neither `when x` nor `when not x`.
    """
    fallback: ir.Edge | None = None
    for e in wf.edges:
        if e.source != node_id:
            continue
        if e.loop_name and loop_exhausted(wf, e.loop_name, loop_counters):
            continue
        if not e.condition:
            fallback = fallback or e
            continue
        value = output.get(e.condition)
        if isinstance(value, bool) and value != e.negated:
            return e
    return fallback


def loop_exhausted(wf: ir.Workflow, loop_name: str, loop_counters: dict[str, int]) -> bool:
    loop = wf.loops.get(loop_name)
    return loop is not None and loop_counters.get(loop_name, 0) >= loop.max_iterations


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


def unconditional_targets(wf: ir.Workflow, node_id: str) -> list[ir.Edge]:
    return [e for e in wf.edges if e.source == node_id and not e.condition]


# -- inputs and templates ----------------------------------------------------------------------


def build_input(wf: ir.Workflow, node_id: str, ctx: DataContext, *, entry_gets_run_inputs: bool = True) -> dict[str, Any]:
    """A node's input: the `with` mappings of incoming edges whose source has produced output.

    Mappings are applied in edge order (later edges overwrite keys). In a mapping, `input.X` reads
    the edge source's output over the run inputs. With no mapping at all, the entry node receives
    the run inputs merged over the var values.
    """
    result: dict[str, Any] = {}
    for e in wf.edges:
        if e.target != node_id or not e.with_ or e.source not in ctx.outputs:
            continue
        edge_input = {**ctx.run_inputs, **ctx.outputs[e.source]}
        lookup = ctx.lookup(edge_input)
        for mapping in e.with_:
            try:
                value = evaluate_mapping(mapping.raw, lookup, as_text=as_text)
            except TemplateError:
                value = mapping.raw
            if value is not None and value is not MISSING:
                result[mapping.key] = value
    if not result and node_id == wf.entry and entry_gets_run_inputs:
        return {**ctx.vars, **ctx.run_inputs}
    return result


def _tokenised(value: Any) -> Any:
    token = artifact_token(value)
    if token is not None:
        return token
    if isinstance(value, dict):
        return {k: _tokenised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tokenised(v) for v in value]
    return value


def as_text(value: Any) -> str:
    """Text of a value inside a prompt: stored values become tokens the activity expands."""
    value = _tokenised(value)
    return value if isinstance(value, str) else _json(value)


def render_text(text: str, ctx: DataContext, node_input: dict[str, Any]) -> str:
    """Render a prompt body; unresolvable references stay as written (visible, not silently empty)."""
    try:
        return render(text, ctx.lookup(node_input), as_text=as_text)
    except TemplateError:
        return text


def render_command(command: str, ctx: DataContext, node_input: dict[str, Any]) -> str:
    """Render a shell command: every substituted value is shell-quoted, never spliced raw.

    A stored (large) value is left as a bare token; the shell activity quotes it when it expands it.
    """
    lookup = ctx.lookup(node_input)

    def quoted(ref: ir.Ref) -> Any:
        value = lookup(ref)
        if value is MISSING or value is None:
            return MISSING
        token = artifact_token(value)
        if token is not None:
            return token
        return shlex.quote(as_text(value))

    try:
        return render(command, quoted, as_text=str)
    except TemplateError:
        return command


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def prompt_body(wf: ir.Workflow, name: str) -> str:
    prompt = wf.prompts.get(name)
    return prompt.body if prompt else ""


# -- parallel branches -------------------------------------------------------------------------


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
    """Whether a node may change the workspace (only one such branch may run at a time)."""
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


# -- budget ------------------------------------------------------------------------------------


@dataclass
class BudgetCheck:
    dimension: str
    used: float
    limit: float

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit else 0.0


def budget_dimensions(budget: ir.Budget | None, used: dict[str, float]) -> list[BudgetCheck]:
    """(dimension, used, limit) for every limit that is set, in a fixed order."""
    if budget is None:
        return []
    limits = (
        ("iterations", float(budget.max_iterations)),
        ("tokens", float(budget.max_tokens)),
        ("cost_usd", float(budget.max_cost_usd)),
        ("duration_s", float(budget.max_duration_seconds or 0.0)),
    )
    return [BudgetCheck(dim, used.get(dim, 0.0), limit) for dim, limit in limits if limit > 0]


def budget_exceeded(budget: ir.Budget | None, used: dict[str, float], *, before_step: bool) -> BudgetCheck | None:
    """The first exhausted dimension. Before a step, a step that would overrun iterations counts."""
    for check in budget_dimensions(budget, used):
        if before_step and check.dimension == "iterations":
            if check.used + 1 > check.limit:
                return check
        elif check.used >= check.limit:
            return check
    return None


def new_budget_warnings(budget: ir.Budget | None, used: dict[str, float], warned: list[str]) -> list[BudgetCheck]:
    """Dimensions that crossed 80% for the first time (the caller records them as warned)."""
    return [c for c in budget_dimensions(budget, used) if c.ratio >= 0.8 and c.dimension not in warned]
