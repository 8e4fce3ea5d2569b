"""A compiled workflow as the browser's graph: the `GraphNode`/`GraphEdge` shape of web/src/graph/types.ts.

The run console (and the editor's server, if it wants it) draws graphs in the browser with ELK;
the browser never reads `.iter` text or the IR's internals, so this module is the one place that
says how an IR node and edge look on the wire. Edges are numbered `e<index>` in declaration order,
the order the interpreter tries them in, so an `edge_selected` event (which names `from`, `to` and
the condition) can be matched back to the edge drawn. Pure: IR in, pydantic models out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import Edge, Workflow


class GraphLoop(BaseModel):
    """The loop an edge closes: `as name(max)`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    max: int | str


class GraphNode(BaseModel):
    """One node: its id, kind and compiled properties (defaults left out, sub-workflows too)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    props: dict[str, Any] = Field(default_factory=dict)
    span: dict[str, int] | None = None


class GraphEdge(BaseModel):
    """One edge, with its condition as written (`approved`, `not approved`, `"expr"`, `else`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    index: int
    from_: str = Field(alias="from")
    to: str
    when: str | None = None
    loop: GraphLoop | None = None
    with_: dict[str, str] | None = Field(default=None, alias="with")
    span: dict[str, int] | None = None


class GraphModel(BaseModel):
    """The whole graph: where it starts, its nodes in declaration order and its edges."""

    model_config = ConfigDict(extra="forbid")

    name: str
    entry: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def edge_condition(edge: Edge) -> str | None:
    """The edge's condition as the source spells it, or None for an unconditional edge."""
    if edge.is_else:
        return "else"
    if edge.condition:
        return ("not " if edge.negated else "") + edge.condition
    if edge.expression is not None:
        return f'"{edge.expression.source}"'
    return None


def node_props(wf: Workflow, node_id: str) -> dict[str, Any]:
    """What the inspector shows of a node: its compiled fields that differ from their defaults.

    A subbot's embedded workflow is left out (it is a graph of its own, not a property)."""
    node = wf.nodes[node_id]
    return node.model_dump(mode="json", exclude_defaults=True, exclude={"id", "kind", "workflow"}, by_alias=True)


def graph_of(wf: Workflow) -> GraphModel:
    """The workflow's graph for the browser."""
    nodes = [GraphNode(id=node_id, kind=node.kind, props=node_props(wf, node_id)) for node_id, node in wf.nodes.items()]
    edges = []
    for index, edge in enumerate(wf.edges):
        loop = None
        if edge.loop_name:
            declared = wf.loops.get(edge.loop_name)
            loop = GraphLoop(name=edge.loop_name, max=declared.max_iterations if declared else "?")
        mapping = {m.key: m.raw for m in edge.with_} or None
        edges.append(GraphEdge(id=f"e{index}", index=index, from_=edge.source, to=edge.target,
                               when=edge_condition(edge), loop=loop, with_=mapping))
    return GraphModel(name=wf.name, entry=wf.entry, nodes=nodes, edges=edges)


def graph_json(wf: Workflow) -> dict[str, Any]:
    """The graph as JSON, with the wire names `from` and `with`."""
    return graph_of(wf).model_dump(mode="json", by_alias=True)
