"""The editor's analysis of a source: `dsl` parses, compiles and validates; this module shapes the result
into the `Document` the canvas, inspector and diagnostics list draw (api/editor_models.py).

The nodes are the IR's (so the canvas has one node per IR node, the `done`/`fail` terminals
included) with their properties as the AST has them written; the edges, schemas, prompts and vars
come from the AST in source order, so what the inspector shows is what the file says. When the
file does not compile, whatever the parser recovered is shown instead.
"""

from __future__ import annotations

import bisect
import hashlib
from pathlib import Path
from typing import Any

import dsl
from api.editor_models import (
    Document,
    EdgeLoop,
    EditorDiagnostic,
    GraphEdge,
    GraphNode,
    PromptInfo,
    SchemaFieldInfo,
    SchemaInfo,
    Span,
    VarInfo,
    WorkflowInfo,
)
from dsl import ast as A
from dsl.edits import PROPERTY_ATTRS, edge_when_text, node_kind, parse_errors
from dsl.subbots import embed_subbots
from dsl.templates import LOOP_FIELDS, RUN_FIELDS


def source_version(source: str) -> str:
    """A file's version: the sha256 of its text (what `PUT /file` compares to refuse a stale save)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def analyze(source: str, *, path: str | None = None, file_path: Path | None = None,
            options: dsl.CompileOptions | None = None) -> Document:
    """Parse, compile and validate ``source`` as `iterloop validate` does, and shape the result.

    ``file_path`` (the file on disk, when the source is one) lets `subbot` nodes find their files."""
    result = dsl.check_source(source, file=path, options=options)
    if file_path is not None:
        result = embed_subbots(result, file_path, options, check_file=dsl.check_file)
    tree = result.ast
    wf_decl = tree.workflows[0] if tree.workflows else None
    decls = {d.name: d for d in tree.nodes}
    nodes: list[GraphNode] = []
    if result.workflow is not None:
        for node_id, node in result.workflow.nodes.items():
            decl = decls.get(node_id)
            nodes.append(GraphNode(id=node_id, kind=node.kind if decl is None else node_kind(decl),
                                   props=written_props(decl) if decl is not None else {},
                                   span=_span(decl.pos) if decl is not None else None))
    else:
        nodes = [GraphNode(id=d.name, kind=node_kind(d), props=written_props(d), span=_span(d.pos))
                 for d in tree.nodes]
        ends = {n for e in (wf_decl.edges if wf_decl else []) for n in (e.source, e.target)}
        nodes += [GraphNode(id=t, kind=t) for t in ("done", "fail") if t in ends and t not in decls]
    edges = [_edge(i, e) for i, e in enumerate(wf_decl.edges if wf_decl else [])]
    return Document(
        path=path, source=source, version=source_version(source), parse_ok=not parse_errors(source),
        workflow=_workflow_info(wf_decl), nodes=nodes, edges=edges,
        schemas=[SchemaInfo(name=s.name, span=_span(s.pos),
                            fields=[SchemaFieldInfo(name=f.name, type=f.type, enum=f.enum_values) for f in s.fields])
                 for s in tree.of_type(A.SchemaDecl)],
        prompts=[PromptInfo(name=p.name, text=p.body, span=_span(p.pos)) for p in tree.of_type(A.PromptDecl)],
        vars=[VarInfo(name=f.name, type=f.type, default=f.default.value if f.default is not None else None)
              for block in [*tree.of_type(A.VarsBlock), *([wf_decl.vars] if wf_decl and wf_decl.vars else [])]
              for f in block.fields],
        mcp_servers=[{"name": m.name, **{k: getattr(m, k) for k in m.props}} for m in tree.of_type(A.MCPServerDecl)],
        refs=template_refs(result, tree),
        diagnostics=attributed(result.diagnostics, tree),
    )


def _span(pos: A.Pos | None) -> Span | None:
    return Span(line=pos.line, column=pos.column) if pos is not None and pos.line > 0 else None


def _workflow_info(wf: A.WorkflowDecl | None) -> WorkflowInfo | None:
    if wf is None:
        return None
    budget = None
    if wf.budget is not None:
        budget = {k: getattr(wf.budget, k) for k in wf.budget.props}
    return WorkflowInfo(name=wf.name, entry=wf.entry or None, budget=budget)


def _edge(index: int, e: A.Edge) -> GraphEdge:
    loop = None
    if e.loop is not None:
        loop = EdgeLoop(name=e.loop.name,
                        max=e.loop.bound_source if e.loop.bound_source is not None else e.loop.max_iterations)
    return GraphEdge(id=f"e{index}", index=index, from_=e.source, to=e.target, when=edge_when_text(e), loop=loop,
                     with_={w.key: w.value for w in e.with_} if e.with_ is not None else None, span=_span(e.pos))


def _json(value: Any) -> Any:
    """An AST value as JSON: blocks (mcp, budget) as objects of what they set."""
    if isinstance(value, A.MCPBlock | A.BudgetBlock):
        return {k: _json(getattr(value, k)) for k in value.props}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def written_props(decl: A.NodeDecl) -> dict[str, Any]:
    """A node's properties as written: the spelling used, the value (prompts and schemas by name)."""
    kind = node_kind(decl)
    attrs = PROPERTY_ATTRS.get("agent" if kind == "judge" else kind, {})
    props: dict[str, Any] = {}
    for key in decl.props:
        if key == "expr" and isinstance(decl, A.ComputeDecl):
            props[key] = {e.key: e.source for e in decl.exprs}
            continue
        attr = attrs.get(key, key)
        if hasattr(decl, attr):
            props[key] = _json(getattr(decl, attr))
    for block in ("mcp", "budget"):
        value = getattr(decl, block, None)
        if value is not None:
            props[block] = _json(value)
    return props


def template_refs(result: dsl.CheckResult, tree: A.File) -> list[str]:
    """The `{{…}}` references valid in this file, for completion: from the IR, else from the AST."""
    refs: list[str] = []
    wf = result.workflow
    schemas = {s.name: [f.name for f in s.fields] for s in tree.of_type(A.SchemaDecl)}
    var_names = [f.name for b in [*tree.of_type(A.VarsBlock), *(w.vars for w in tree.workflows if w.vars)]
                 for f in b.fields]
    refs += [f"vars.{v}" for v in var_names]
    inputs: list[str] = []
    for decl in tree.nodes:
        for field in schemas.get(getattr(decl, "input", ""), []):
            if f"input.{field}" not in inputs:
                inputs.append(f"input.{field}")
    refs += inputs
    for decl in tree.nodes:
        refs.append(f"outputs.{decl.name}")
        refs += [f"outputs.{decl.name}.{f}" for f in schemas.get(getattr(decl, "output", ""), [])]
        publish = getattr(decl, "publish", "")
        if publish:
            refs.append(f"artifacts.{publish}")
    loops = list(wf.loops) if wf is not None else [e.loop.name for w in tree.workflows for e in w.edges if e.loop]
    for name in dict.fromkeys(loops):
        refs += [f"loop.{name}.{f}" for f in LOOP_FIELDS]
    refs += [f"run.{f}" for f in RUN_FIELDS]
    return list(dict.fromkeys(refs))


def attributed(diagnostics: list[dsl.Diagnostic], tree: A.File) -> list[EditorDiagnostic]:
    """Diagnostics with the node or edge they are about, found by position: a line inside a node's
    declaration is about that node, a line of an edge (with its `with` block) about that edge."""
    starts = sorted(((d.pos.line, d) for d in tree.declarations if hasattr(d, "pos") and d.pos.line > 0),
                    key=lambda item: item[0])
    lines = [line for line, _ in starts]
    edge_lines: dict[int, int] = {}
    for wf in tree.workflows:
        for i, e in enumerate(wf.edges):
            last = max([e.pos.line, *(w.pos.line for w in e.with_ or [])])
            for line in range(e.pos.line, last + 1):
                edge_lines.setdefault(line, i)
        break  # only the first workflow is compiled
    out: list[EditorDiagnostic] = []
    for d in diagnostics:
        node = edge = None
        if d.line in edge_lines:
            edge = f"e{edge_lines[d.line]}"
        else:
            i = bisect.bisect_right(lines, d.line) - 1
            owner = starts[i][1] if i >= 0 else None
            if owner is not None and isinstance(owner, A.NodeDecl) and not (d.line == 1 and d.column == 1
                                                                             and owner.pos.line != 1):
                node = owner.name
        out.append(EditorDiagnostic(code=d.code, severity=d.severity, message=d.message, hint=d.hint or None,
                                    line=d.line, column=d.column, node=node, edge=edge))
    return out
