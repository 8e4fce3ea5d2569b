"""Static checks on a compiled workflow (Iterion's validate phase, plus iterloop's own).

Check order follows Iterion: C009, C010/C012/C011, C020, C021/C022, C013/C014, C028, C016, C017,
C019, C026, C024, C030–C036, then C106. Iteration is always in declaration order so the output
is deterministic (Iterion's is not). Positions come from the SourceMap; a hand-built IR without
one gets the workflow's position.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from . import ir
from .ast import Pos
from .diagnostics import Diagnostic, Severity, make
from .graph import Upstream, is_convergence_point, loop_endpoints, reachable
from .source_map import SourceMap
from .templates import extract_refs

#: Routers whose edges C010/C012 leave alone (fan_out_each's one edge is C124's).
_MULTI_TARGET_ROUTERS = ("fan_out_all", "round_robin", "llm", "fan_out_each", "foreach")


@dataclass(slots=True)
class _RefUse:
    """A reference and who evaluates it."""

    consumer: str
    ref: ir.Ref
    pos: Pos
    where: str
    self_ok: bool  # with-values: the edge source has already run


class _Validator:
    def __init__(self, wf: ir.Workflow, src: SourceMap) -> None:
        self.wf = wf
        self.src = src
        self.diags: list[Diagnostic] = []
        self.edges_by_source: dict[str, list[tuple[int, ir.Edge]]] = {}
        for i, e in enumerate(wf.edges):
            self.edges_by_source.setdefault(e.source, []).append((i, e))

    def diag(self, code: str, message: str, pos: Pos, *, length: int = 1, severity: Severity | None = None,
             hint: str | None = None) -> None:
        self.diags.append(make(code, message, pos.line, pos.column, length=length, severity=severity, hint=hint))

    def edge_pos(self, index: int) -> Pos:
        e = self.src.edge(index)
        return e.pos if e else self.src.workflow

    def cond_pos(self, index: int) -> Pos:
        e = self.src.edge(index)
        if e is not None and e.when is not None:
            return e.when.pos
        return self.edge_pos(index)

    def run(self) -> list[Diagnostic]:
        self.check_sessions_at_convergence()
        self.check_edge_rules()
        self.check_round_robin()
        self.check_llm_routers()
        self.check_each_routers()
        self.check_condition_fields()
        self.check_with_key_collisions()
        self.check_reachability()
        self.check_history_refs()
        self.check_cycles()
        self.check_loop_bounds()
        self.check_reasoning_effort()
        self.check_refs()
        self.check_join_requirements()
        return self.diags

    # -- C009 ----------------------------------------------------------------------------------
    def check_sessions_at_convergence(self) -> None:
        for node in self.wf.nodes.values():
            if isinstance(node, ir.AgentNode) and node.await_mode != "none" and node.session in ("inherit", "fork"):
                self.diag("C009", f"{node.kind} '{node.id}' waits for branches (await {node.await_mode}) but uses "
                          f"session {node.session}; a convergence point has no single conversation to continue",
                          self.src.prop(node.id, "session"))

    # -- C010 / C012 / C011 --------------------------------------------------------------------
    def check_edge_rules(self) -> None:
        for source, edges in self.edges_by_source.items():
            node = self.wf.nodes.get(source)
            if node is None:
                continue
            if isinstance(node, ir.RouterNode) and node.router_mode in _MULTI_TARGET_ROUTERS:
                continue
            unconditional = [(i, e) for i, e in edges if not e.conditional]
            conditional = [(i, e) for i, e in edges if e.conditional]
            # A loop's back edge beside one plain edge is Iterion's loop-exhaustion exit: the back
            # edge is taken while the loop has rounds left, then the plain edge (workflows/edges.py).
            for group in ([(i, e) for i, e in unconditional if not e.loop_name],
                          [(i, e) for i, e in unconditional if e.loop_name]):
                if len(group) > 1:
                    targets = ", ".join(e.target for _, e in group)
                    self.diag("C010", f"'{source}' has {len(group)} unconditional {'loop ' if group[0][1].loop_name else ''}"
                              f"edges (to {targets}); only one can be taken", self.edge_pos(group[1][0]),
                              length=len(source))
            # With an expression condition coverage cannot be decided statically: a run where nothing
            # matches fails at that node with a message naming it (and `when else` covers the rest).
            decidable = all(e.condition for _, e in conditional)
            if conditional and not unconditional and decidable:
                polarity: dict[str, set[bool]] = {}
                for _, e in conditional:
                    polarity.setdefault(e.condition, set()).add(e.negated)
                if not any(len(p) == 2 for p in polarity.values()):
                    self.diag("C012", f"'{source}' has only conditional edges and they do not cover every case; when "
                              "no condition holds the run would have nowhere to go", self.edge_pos(conditional[0][0]),
                              length=len(source))
            seen: set[tuple[str, bool]] = set()
            for i, e in conditional:
                if not e.condition:
                    continue
                key = (e.condition, e.negated)
                if key in seen:
                    cond = ("not " if e.negated else "") + e.condition
                    self.diag("C011", f"'{source}' has more than one edge 'when {cond}'; which one is taken would be "
                              "ambiguous", self.cond_pos(i), length=len(e.condition))
                seen.add(key)

    # -- C020 / C021 / C022 --------------------------------------------------------------------
    def check_round_robin(self) -> None:
        for node in self.wf.nodes.values():
            if isinstance(node, ir.RouterNode) and node.router_mode == "round_robin":
                n = sum(1 for _, e in self.edges_by_source.get(node.id, []) if not e.conditional)
                if n < 2:
                    self.diag("C020", f"round_robin router '{node.id}' has {n} unconditional edge(s); it needs at "
                              "least 2 targets to alternate between", self.src.node(node.id), length=6)

    def check_each_routers(self) -> None:
        """C124: a fan_out_each router's items all run the body behind its one unconditional edge."""
        for node in self.wf.nodes.values():
            if not (isinstance(node, ir.RouterNode) and node.router_mode in ir.EACH_MODES):
                continue
            edges = self.edges_by_source.get(node.id, [])
            if len(edges) != 1 or edges[0][1].conditional:
                where = self.edge_pos(edges[1 if len(edges) > 1 else 0][0]) if edges else self.src.node(node.id)
                found = ", ".join(f"{e.source} -> {e.target}" + (f" when {e.condition}" if e.condition else "")
                                  for _, e in edges) or "none"
                self.diag("C124", f"{node.router_mode} router '{node.id}' needs exactly one unconditional outgoing edge "
                          f"(to the body each item runs); found: {found}", where, length=len(node.id))

    def check_llm_routers(self) -> None:
        for node in self.wf.nodes.values():
            if not (isinstance(node, ir.RouterNode) and node.router_mode == "llm"):
                continue
            edges = self.edges_by_source.get(node.id, [])
            if len(edges) < 2:
                self.diag("C021", f"llm router '{node.id}' has {len(edges)} outgoing edge(s); it needs at least 2 "
                          "to choose from", self.src.node(node.id), length=6)
            for i, e in edges:
                if e.conditional:
                    self.diag("C022", f"edge '{e.source} -> {e.target}' from llm router '{node.id}' has a 'when' "
                              "condition; the LLM chooses the target itself", self.cond_pos(i))

    # -- C013 / C014 ---------------------------------------------------------------------------
    def check_condition_fields(self) -> None:
        for i, e in enumerate(self.wf.edges):
            if not e.condition:
                continue
            schema = self.wf.schemas.get(self.wf.output_schema_of(e.source))
            if schema is None:
                continue
            f = schema.field(e.condition)
            if f is None:
                self.diag("C014", f"condition '{e.condition}' on edge '{e.source} -> {e.target}' is not a field of "
                          f"'{e.source}' output schema '{schema.name}'", self.cond_pos(i), length=len(e.condition))
            elif f.type != "bool":
                self.diag("C013", f"condition '{e.condition}' on edge '{e.source} -> {e.target}' is a {f.type} "
                          f"field of schema '{schema.name}'; conditions must be bool", self.cond_pos(i),
                          length=len(e.condition))

    # -- C028 ----------------------------------------------------------------------------------
    def check_with_key_collisions(self) -> None:
        """Two branches feeding one convergence node under the same key: one would overwrite the other."""
        first_source: dict[tuple[str, str], str] = {}
        for i, e in enumerate(self.wf.edges):
            if not is_convergence_point(self.wf, e.target):
                continue
            src_edge = self.src.edge(i)
            for j, m in enumerate(e.with_):
                key = (e.target, m.key)
                prev = first_source.setdefault(key, e.source)
                if prev != e.source:
                    pos = src_edge.with_[j].pos if src_edge and src_edge.with_ else self.edge_pos(i)
                    self.diag("C028", f"with-key '{m.key}' reaches convergence node '{e.target}' from both "
                              f"'{prev}' and '{e.source}'; one branch would overwrite the other", pos,
                              length=len(m.key))

    # -- C016 ----------------------------------------------------------------------------------
    def check_reachability(self) -> None:
        if not self.wf.entry:
            return
        seen = set(reachable(self.wf, self.wf.entry))
        for node in self.wf.nodes.values():
            if node.kind in ("done", "fail") or node.id in seen:
                continue
            self.diag("C016", f"{node.kind} '{node.id}' is unreachable from the entry '{self.wf.entry}'",
                      self.src.node(node.id), length=len(node.kind))

    # -- C017 ----------------------------------------------------------------------------------
    def check_history_refs(self) -> None:
        ends = loop_endpoints(self.wf)

        def check(ref: ir.Ref, pos: Pos, where: str) -> None:
            if ref.kind != "outputs" or len(ref.path) < 2 or ref.path[-1] != "history":
                return
            node = ref.path[0]
            if node in self.wf.nodes and node not in ends:
                self.diag("C017", f"{ref.raw} in {where}: '{node}' is not an endpoint of any loop edge, so it has no "
                          "history", pos, length=len(ref.raw))

        for name, prompt in self.wf.prompts.items():
            positions = self.src.prompt_refs.get(name, [])
            for k, ref in enumerate(prompt.template_refs or []):
                check(ref, positions[k] if k < len(positions) else self.src.prompts.get(name, self.src.workflow),
                      f"prompt '{name}'")
        for i, e in enumerate(self.wf.edges):
            for j, m in enumerate(e.with_):
                for k, ref in enumerate(m.refs or []):
                    check(ref, self.with_ref_pos(i, j, k), f"edge '{e.source} -> {e.target}'")

    def with_ref_pos(self, edge_index: int, entry_index: int, ref_index: int) -> Pos:
        positions = self.src.with_refs.get((edge_index, entry_index), [])
        if ref_index < len(positions):
            return positions[ref_index]
        return self.edge_pos(edge_index)

    # -- C019 ----------------------------------------------------------------------------------
    def check_cycles(self) -> None:
        if not self.wf.entry or self.wf.entry not in self.wf.nodes:
            return
        ends = loop_endpoints(self.wf)
        out: dict[str, list[int]] = {}
        for i, e in enumerate(self.wf.edges):
            out.setdefault(e.source, []).append(i)
        WHITE, GREY, BLACK = 0, 1, 2
        colour: dict[str, int] = {}
        # Iterative DFS (graphs can be deep); each frame is (node, next edge position).
        stack: list[tuple[str, int]] = [(self.wf.entry, 0)]
        colour[self.wf.entry] = GREY
        while stack:
            node, k = stack[-1]
            edges = out.get(node, [])
            if k >= len(edges):
                colour[node] = BLACK
                stack.pop()
                continue
            stack[-1] = (node, k + 1)
            e = self.wf.edges[edges[k]]
            c = colour.get(e.target, WHITE)
            if c == GREY:
                if e.source not in ends and e.target not in ends:
                    self.diag("C019", f"edge '{e.source} -> {e.target}' closes a cycle that is not declared as a "
                              "bounded loop", self.edge_pos(edges[k]), length=len(e.source),
                              hint=f"Bound it: '{e.source} -> {e.target} as {e.target}_loop(3)'.")
            elif c == WHITE:
                colour[e.target] = GREY
                stack.append((e.target, 0))

    # -- C026 / C024 ---------------------------------------------------------------------------
    def check_loop_bounds(self) -> None:
        for loop in self.wf.loops.values():
            if loop.max_iterations < 1:
                self.diag("C026", f"loop '{loop.name}' has bound {loop.max_iterations}; it must be at least 1",
                          self.src.loops.get(loop.name, self.src.workflow), length=len(loop.name))

    def check_reasoning_effort(self) -> None:
        for node in self.wf.nodes.values():
            effort = getattr(node, "reasoning_effort", "")
            # "${VAR:-level}" is read on the worker (the compiler checked its fallback: C024 too)
            if effort and effort not in ir.REASONING_EFFORTS and "$" not in effort:
                self.diag("C024", f"{node.kind} '{node.id}' has invalid reasoning_effort '{effort}'",
                          self.src.prop(node.id, "reasoning_effort"),
                          hint="Use low, medium, high or extra_high.")

    # -- C030–C036 -----------------------------------------------------------------------------
    def prompt_consumers(self) -> dict[str, list[str]]:
        """prompt name → consuming node ids, in node order."""
        uses: dict[str, list[str]] = {}
        for node in self.wf.nodes.values():
            if isinstance(node, ir.AgentNode):
                names = [node.system_prompt, node.user_prompt, node.interaction_prompt]
            elif isinstance(node, ir.RouterNode):
                names = [node.system_prompt, node.user_prompt]
            elif isinstance(node, ir.HumanNode):
                names = [node.system_prompt, node.interaction_prompt, node.instructions]
            else:
                continue
            for name in names:
                if name:
                    uses.setdefault(name, []).append(node.id)
        return uses

    def ref_uses(self) -> list[_RefUse]:
        uses: list[_RefUse] = []
        for prompt_name, consumers in self.prompt_consumers().items():
            prompt = self.wf.prompts.get(prompt_name)
            if prompt is None:
                continue
            positions = self.src.prompt_refs.get(prompt_name, [])
            for consumer in consumers:
                for k, ref in enumerate(prompt.template_refs or []):
                    pos = positions[k] if k < len(positions) else self.src.prompts.get(prompt_name, self.src.workflow)
                    uses.append(_RefUse(consumer, ref, pos, f"prompt '{prompt_name}' (used by '{consumer}')", False))
        for i, e in enumerate(self.wf.edges):
            if e.source not in self.wf.nodes:
                continue
            for j, m in enumerate(e.with_):
                for k, ref in enumerate(m.refs or []):
                    uses.append(_RefUse(e.source, ref, self.with_ref_pos(i, j, k),
                                        f"with-key '{m.key}' of edge '{e.source} -> {e.target}'", True))
        for node in self.wf.nodes.values():
            if isinstance(node, ir.ToolNode):
                positions = self.src.command_refs.get(node.id, [])
                for k, ref in enumerate(node.command_refs or []):
                    pos = positions[k] if k < len(positions) else self.src.prop(node.id, "command")
                    uses.append(_RefUse(node.id, ref, pos, f"the command of tool '{node.id}'", False))
            if isinstance(node, ir.RouterNode) and node.over:
                for ref in extract_refs(node.over):  # the compiler kept only a well-formed, single reference
                    uses.append(_RefUse(node.id, ref, self.src.prop(node.id, "over"),
                                        f"'over' of router '{node.id}'", False))
        return uses

    def check_refs(self) -> None:
        upstream = Upstream(self.wf)
        publishers: dict[str, list[str]] = {}
        for node in self.wf.nodes.values():
            pub = getattr(node, "publish", "")
            if pub:
                publishers.setdefault(pub, []).append(node.id)
        for use in self.ref_uses():
            ref, pos, n = use.ref, use.pos, len(use.ref.raw)
            head = ref.path[0]
            if ref.kind == "vars":
                if head not in self.wf.vars:
                    self.diag("C033", f"{ref.raw} in {use.where}: variable '{head}' is not declared", pos, length=n)
            elif ref.kind == "input":
                if use.self_ok:
                    # In a `with` value, `input` reads the edge source's output over the run
                    # inputs, so the source's input schema says nothing about it.
                    continue
                schema = self.wf.schemas.get(self.wf.input_schema_of(use.consumer))
                if schema is not None and schema.field(head) is None:
                    self.diag("C034", f"{ref.raw} in {use.where}: '{head}' is not a field of '{use.consumer}' input "
                              f"schema '{schema.name}'", pos, length=n)
            elif ref.kind == "outputs":
                if head not in self.wf.nodes:
                    self.diag("C030", f"{ref.raw} in {use.where}: node '{head}' does not exist", pos, length=n)
                    continue
                own_history = head == use.consumer and ref.path[-1] == "history"
                if not own_history and not self.is_upstream(head, use, upstream):
                    self.diag("C036", f"{ref.raw} in {use.where}: '{head}' does not run before '{use.consumer}'", pos,
                              length=n)
                    continue
                if len(ref.path) < 2:
                    continue
                fld = ref.path[1]
                if fld == "history" or fld.startswith("_"):
                    continue
                if isinstance(self.wf.nodes.get(head), ir.SubbotNode):
                    continue  # the child's outputs (node → output): its file is compiled at start, not here
                head_node = self.wf.nodes.get(head)
                if isinstance(head_node, ir.JoinNode) and fld == ir.EACH_RESULTS_FIELD and any(
                        isinstance(n, ir.RouterNode) and n.router_mode in ir.EACH_MODES for n in self.wf.nodes.values()):
                    continue  # what the join collects from a fan_out_each router's items (no schema says it)
                if isinstance(head_node, ir.RouterNode) and head_node.router_mode in ir.EACH_MODES:
                    fields = ir.FOREACH_FIELDS if head_node.router_mode == "foreach" else ir.EACH_FIELDS
                    if fld not in fields:
                        self.diag("C031", f"{ref.raw} in {use.where}: '{fld}' is not a field of "
                                  f"{head_node.router_mode} router '{head}' (it has {', '.join(fields)})", pos, length=n,
                                  hint="Read the current item as item (its fields as item.FIELD), or index, count, "
                                  "first, last.")
                    continue
                schema_name = self.wf.output_schema_of(head)
                if not schema_name:
                    self.diag("C032", f"{ref.raw} in {use.where}: '{head}' has no output schema, so field '{fld}' "
                              "cannot be checked", pos, length=n)
                    continue
                schema = self.wf.schemas.get(schema_name)
                if schema is not None and schema.field(fld) is None:
                    self.diag("C031", f"{ref.raw} in {use.where}: '{fld}' is not a field of '{head}' output schema "
                              f"'{schema_name}'", pos, length=n)
            elif ref.kind == "loop":
                if head not in self.wf.loops:
                    close = difflib.get_close_matches(head, sorted(self.wf.loops), n=1)
                    self.diag("C004", f"{ref.raw} in {use.where}: the workflow has no loop named '{head}'", pos,
                              length=n, hint=f"Did you mean loop '{close[0]}'?" if close else
                              "Name a loop declared on an edge with 'as NAME(N)'.")
            elif ref.kind == "artifacts":
                pubs = publishers.get(head)
                if not pubs:
                    self.diag("C035", f"{ref.raw} in {use.where}: no node publishes artifact '{head}'", pos, length=n)
                elif not any(self.is_upstream(p, use, upstream) for p in pubs):
                    self.diag("C036", f"{ref.raw} in {use.where}: artifact '{head}' is published by "
                              f"'{pubs[0]}', which does not run before '{use.consumer}'", pos, length=n)

    @staticmethod
    def is_upstream(producer: str, use: _RefUse, upstream: Upstream) -> bool:
        return producer in upstream.of(use.consumer) or (use.self_ok and producer == use.consumer)

    # -- C106 ----------------------------------------------------------------------------------
    def check_join_requirements(self) -> None:
        upstream = Upstream(self.wf)
        for node in self.wf.nodes.values():
            if not isinstance(node, ir.JoinNode):
                continue
            before = upstream.of(node.id)
            for name in node.require:
                if name not in before:
                    why = "is not a node" if name not in self.wf.nodes else "does not lead into it"
                    self.diag("C106", f"join '{node.id}' requires '{name}', which {why}",
                              self.src.prop(node.id, "require"), length=len(name))


def validate(workflow: ir.Workflow, source_map: SourceMap | None = None) -> list[Diagnostic]:
    """Run every static check; ``source_map`` only improves positions."""
    return _Validator(workflow, source_map or SourceMap()).run()
