// Auto-layout with ELK's layered algorithm: layers follow the flow, edges are routed around nodes
// (orthogonal bends). Loop edges (`-> … as refine(3)`) are the workflow's back-edges by
// definition, so they are handed to ELK reversed and their route turned round afterwards: the
// flow reads from the entry downwards and a loop goes back up. ELK's own cycle breaking only
// handles cycles without a declared loop (it would otherwise pick arbitrary edges to reverse and
// could put the entry in the middle).
import ELK from "elkjs/lib/elk.bundled.js";
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api";
import type { GraphEdge, GraphNode } from "./types";
import { nodeLook } from "./nodeLooks";

export interface Box { x: number; y: number; width: number; height: number }
export interface Point { x: number; y: number }
export type Direction = "DOWN" | "RIGHT";

export interface EdgeRoute {
  /** Start, bends and end of the edge, in the canvas's coordinates. */
  points: Point[];
  /** Where ELK placed the edge's label (its top-left), when the edge has one. */
  label?: Box;
}

export interface LayoutResult { nodes: Map<string, Box>; edges: Map<string, EdgeRoute> }

const elk = new ELK();

/** The text an edge's label shows: its condition, its loop, its `with` keys. */
export function edgeLabelText(edge: GraphEdge): string {
  const parts: string[] = [];
  if (edge.when) parts.push(`when ${edge.when}`);
  if (edge.loop) parts.push(`as ${edge.loop.name}(${edge.loop.max})`);
  if (edge.with && Object.keys(edge.with).length) parts.push(`with {${Object.keys(edge.with).join(", ")}}`);
  return parts.join(" ");
}

/** A label's size before the browser has measured it (ELK needs one to leave room for it). */
function labelBox(text: string): { width: number; height: number } {
  return { width: Math.min(260, 12 + text.length * 6.6), height: 20 };
}

/** Node boxes and edge routes for a graph. Edges whose ends are missing are left out (a half-typed
 * source can name a node that does not exist yet; the canvas must still draw). */
export async function layoutGraphWithRoutes(nodes: GraphNode[], edges: GraphEdge[],
                                            direction: Direction = "DOWN"): Promise<LayoutResult> {
  const ids = new Set(nodes.map((n) => n.id));
  const drawable = edges.filter((e) => ids.has(e.from) && ids.has(e.to));
  const graph: ElkNode = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": direction,
      "elk.edgeRouting": "ORTHOGONAL",
      "elk.layered.cycleBreaking.strategy": "DEPTH_FIRST",
      // One layering for everything, so the LAST constraint of unconnected terminals holds.
      "elk.separateConnectedComponents": "false",
      "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
      "elk.layered.spacing.nodeNodeBetweenLayers": "70",
      "elk.spacing.nodeNode": "50",
      "elk.spacing.edgeNode": "25",
      "elk.spacing.edgeEdge": "15",
      "elk.spacing.edgeLabel": "6",
      "elk.edgeLabels.inline": "false",
      "elk.padding": "[top=20,left=20,bottom=20,right=20]",
    },
    children: nodes.map((n) => {
      const look = nodeLook(n.kind);
      // Terminals end the flow: keep them in the last layer even before anything leads to them.
      const terminal = n.kind === "done" || n.kind === "fail";
      return { id: n.id, width: look.width, height: look.height,
        layoutOptions: terminal ? { "elk.layered.layering.layerConstraint": "LAST" } : undefined };
    }),
    edges: drawable.map((e): ElkExtendedEdge => {
      const text = edgeLabelText(e);
      const back = Boolean(e.loop);
      return {
        id: e.id,
        sources: [back ? e.to : e.from],
        targets: [back ? e.from : e.to],
        labels: text ? [{ id: `${e.id}-label`, text, ...labelBox(text),
          layoutOptions: { "elk.edgeLabels.placement": "CENTER" } }] : [],
      };
    }),
  };
  const laid = await elk.layout(graph);
  const boxes = new Map<string, Box>();
  for (const child of laid.children ?? []) {
    boxes.set(child.id, { x: child.x ?? 0, y: child.y ?? 0, width: child.width ?? 0, height: child.height ?? 0 });
  }
  const routes = new Map<string, EdgeRoute>();
  const reversed = new Set(drawable.filter((e) => e.loop).map((e) => e.id));
  for (const edge of laid.edges ?? []) {
    const section = edge.sections?.[0];
    if (!section) continue;
    const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p) => ({ x: p.x, y: p.y }));
    if (reversed.has(edge.id)) points.reverse();
    const label = edge.labels?.[0];
    routes.set(edge.id, {
      points,
      label: label ? { x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 } : undefined,
    });
  }
  return { nodes: boxes, edges: routes };
}

/** Where each node goes: top-left corner and size, keyed by node id. */
export async function layoutGraph(nodes: GraphNode[], edges: GraphEdge[],
                                  direction: Direction = "DOWN"): Promise<Map<string, Box>> {
  return (await layoutGraphWithRoutes(nodes, edges, direction)).nodes;
}
