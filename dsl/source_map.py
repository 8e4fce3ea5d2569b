"""Where things are in the source, kept beside the IR (which holds no positions).

The compiler fills a `SourceMap` while it builds the IR; the validator reads it to point each
diagnostic at the line and column it is about. It lives in its own module so the compiler can
call the validator without the validator importing the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast as A


@dataclass
class SourceMap:
    """Where things are in the source, for diagnostics about the IR."""

    workflow: A.Pos = field(default_factory=A.Pos)
    entry: A.Pos | None = None
    nodes: dict[str, A.Pos] = field(default_factory=dict)
    node_props: dict[str, dict[str, A.Pos]] = field(default_factory=dict)
    edges: list[A.Edge] = field(default_factory=list)
    prompt_refs: dict[str, list[A.Pos]] = field(default_factory=dict)
    prompts: dict[str, A.Pos] = field(default_factory=dict)
    command_refs: dict[str, list[A.Pos]] = field(default_factory=dict)
    with_refs: dict[tuple[int, int], list[A.Pos]] = field(default_factory=dict)  # (edge, entry) → ref positions
    loops: dict[str, A.Pos] = field(default_factory=dict)

    def node(self, node_id: str) -> A.Pos:
        return self.nodes.get(node_id, self.workflow)

    def prop(self, node_id: str, name: str) -> A.Pos:
        return self.node_props.get(node_id, {}).get(name) or self.node(node_id)

    def edge(self, index: int) -> A.Edge | None:
        return self.edges[index] if 0 <= index < len(self.edges) else None
