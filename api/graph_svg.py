"""Draw a run's workflow graph as SVG, each node coloured by its state in the run.

Mermaid needs a JavaScript library the dashboard would have to fetch from a CDN, so the graph is
laid out here, in plain Python: nodes in layers by their distance from the entry (breadth-first,
in declaration order), `done` and `fail` at the bottom; edges to the next layer as curves
downwards, edges that skip layers as arcs on the left, loop edges (back to an earlier or the same
layer) as dashed arcs on the right. Pure: IR and node states in, SVG text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from dsl.ir import Edge, Workflow

NODE_W, NODE_H = 176, 54
H_GAP, V_GAP = 40, 70
MARGIN = 24
LOOP_LANE = 34  # extra room on the right for each loop arc

_KIND_LABELS = {"agent": "agent", "judge": "judge", "router": "router", "join": "join", "human": "human gate",
                "tool": "tool", "wait": "timer", "done": "done", "fail": "fail"}


@dataclass(frozen=True)
class NodeLook:
    """What the drawing needs to know about a node in the run."""

    status: str = "pending"  # pending, running, waiting, succeeded, failed, skipped
    visits: int = 0


def layers(wf: Workflow) -> dict[str, int]:
    """Each node's layer: its breadth-first distance from the entry; unreachable nodes after the
    others, and the terminal nodes (`done`, `fail`) last, so edges into them point down."""
    depth = {wf.entry: 0}
    queue = [wf.entry]
    outgoing: dict[str, list[str]] = {}
    for edge in wf.edges:
        outgoing.setdefault(edge.source, []).append(edge.target)
    while queue:
        node = queue.pop(0)
        for target in outgoing.get(node, []):
            if target not in depth:
                depth[target] = depth[node] + 1
                queue.append(target)
    terminal = [n for n, node in wf.nodes.items() if node.kind in ("done", "fail")]
    last = max((d for n, d in depth.items() if n not in terminal), default=0) + 1
    unreachable = [n for n in wf.nodes if n not in depth and n not in terminal]
    for name in unreachable:
        depth[name] = last
    bottom = last + (1 if unreachable else 0)
    for name in terminal:
        depth[name] = bottom
    return depth


def _label(edge: Edge, wf: Workflow) -> str:
    parts = []
    if edge.condition:
        parts.append(("not " if edge.negated else "") + edge.condition)
    if edge.loop_name:
        loop = wf.loops.get(edge.loop_name)
        parts.append(f"↺ {edge.loop_name}" + (f"({loop.max_iterations})" if loop else ""))
    return " · ".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_graph(wf: Workflow, states: Mapping[str, NodeLook], current: Sequence[str] = ()) -> str:
    depth = layers(wf)
    rows: dict[int, list[str]] = {}
    order = sorted(wf.nodes, key=lambda n: (depth[n], list(wf.nodes).index(n)))
    for name in order:
        rows.setdefault(depth[name], []).append(name)
    widest = max((len(r) for r in rows.values()), default=1)
    span = {id(e): depth.get(e.target, 0) - depth.get(e.source, 0) for e in wf.edges}
    loops = sum(1 for e in wf.edges if span[id(e)] <= 0)
    skips = sum(1 for e in wf.edges if span[id(e)] > 1)
    content_w = widest * NODE_W + (widest - 1) * H_GAP
    left = MARGIN + LOOP_LANE * skips  # where the nodes start; arcs that skip layers use the room before
    width = left + content_w + LOOP_LANE * loops + MARGIN
    layer_ys = sorted(rows)
    height = 2 * MARGIN + len(layer_ys) * NODE_H + max(len(layer_ys) - 1, 0) * V_GAP

    pos: dict[str, tuple[float, float]] = {}  # top-left corner of each node
    for row, layer in enumerate(layer_ys):
        names = rows[layer]
        row_w = len(names) * NODE_W + (len(names) - 1) * H_GAP
        x0 = left + (content_w - row_w) / 2
        for i, name in enumerate(names):
            pos[name] = (x0 + i * (NODE_W + H_GAP), MARGIN + row * (NODE_H + V_GAP))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="workflow {escape(wf.name)}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>']
    loop_lane = skip_lane = 0
    for edge in wf.edges:
        if edge.source not in pos or edge.target not in pos:
            continue
        sx, sy = pos[edge.source]
        tx, ty = pos[edge.target]
        label = _label(edge, wf)
        if span[id(edge)] == 1:
            x1, y1, x2, y2 = sx + NODE_W / 2, sy + NODE_H, tx + NODE_W / 2, ty
            bend = (y2 - y1) / 2
            path = f"M {x1:.1f} {y1:.1f} C {x1:.1f} {y1 + bend:.1f}, {x2:.1f} {y2 - bend:.1f}, {x2:.1f} {y2:.1f}"
            lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
            css = "edge"
        elif span[id(edge)] > 1:
            skip_lane += 1
            reach = left - LOOP_LANE * skip_lane + 6
            x1, y1, x2, y2 = sx, sy + NODE_H / 2, tx, ty + NODE_H / 2
            path = f"M {x1:.1f} {y1:.1f} C {reach:.1f} {y1:.1f}, {reach:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"
            lx, ly = 0.125 * (x1 + x2) + 0.75 * reach, (y1 + y2) / 2  # the curve's midpoint
            css = "edge skip"
        else:
            loop_lane += 1
            reach = left + content_w + LOOP_LANE * loop_lane - 6
            x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H / 2, tx + NODE_W, ty + NODE_H / 2
            if edge.source == edge.target:  # a node that loops on itself: out at the top, back lower
                y1, y2 = sy + NODE_H * 0.3, sy + NODE_H * 0.7
            path = f"M {x1:.1f} {y1:.1f} C {reach:.1f} {y1:.1f}, {reach:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"
            lx, ly = 0.125 * (x1 + x2) + 0.75 * reach, (y1 + y2) / 2
            css = "edge loop"
        out.append(f'<g class="{css}" data-from="{escape(edge.source)}" data-to="{escape(edge.target)}">'
                   f'<path d="{path}" marker-end="url(#arrow)"/>')
        if label:
            out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" class="edge-label" text-anchor="middle">'
                       f'{escape(_short(label, 28))}</text>')
        out.append("</g>")
    for name in order:
        node = wf.nodes[name]
        x, y = pos[name]
        look = states.get(name, NodeLook())
        status = look.status
        classes = f"node kind-{node.kind} status-{status}" + (" current" if name in current else "")
        detail = f"{_KIND_LABELS.get(node.kind, node.kind)} · {status}" + (f" · ×{look.visits}" if look.visits > 1 else "")
        out.append(f'<g class="{classes}" data-node="{escape(name)}" data-status="{escape(status)}" '
                   f'transform="translate({x:.1f},{y:.1f})">'
                   f'<title>{escape(name)}: {escape(detail)}</title>'
                   f'<rect width="{NODE_W}" height="{NODE_H}" rx="8"/>'
                   f'<text x="{NODE_W / 2}" y="22" class="node-name" text-anchor="middle">{escape(_short(name, 22))}</text>'
                   f'<text x="{NODE_W / 2}" y="40" class="node-detail" text-anchor="middle">{escape(detail)}</text>'
                   "</g>")
    out.append("</svg>")
    return "\n".join(out)
