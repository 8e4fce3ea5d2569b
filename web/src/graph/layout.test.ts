import { describe, expect, it } from "vitest";
import { edgeLabelText, layoutGraph, layoutGraphWithRoutes } from "./layout";
import type { GraphEdge, GraphNode } from "./types";

const nodes: GraphNode[] = [
  { id: "writer", kind: "agent" }, { id: "review", kind: "judge" }, { id: "done", kind: "done" }, { id: "fail", kind: "fail" },
];
const edges: GraphEdge[] = [
  { id: "e0", index: 0, from: "writer", to: "review" },
  { id: "e1", index: 1, from: "review", to: "done", when: "approved" },
  { id: "e2", index: 2, from: "review", to: "writer", when: "not approved", loop: { name: "refine", max: 3 } },
  { id: "e3", index: 3, from: "review", to: "fail" },
];

function overlap(a: { x: number; y: number; width: number; height: number }, b: typeof a): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe("layoutGraph", () => {
  it("places every node once, without overlaps, following the flow top-down despite the loop back-edge", async () => {
    const boxes = await layoutGraph(nodes, edges);
    expect([...boxes.keys()].sort()).toEqual(["done", "fail", "review", "writer"]);
    const all = [...boxes.values()];
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) expect(overlap(all[i], all[j])).toBe(false);
    expect(boxes.get("writer")!.y).toBeLessThan(boxes.get("review")!.y);
    expect(boxes.get("review")!.y).toBeLessThan(boxes.get("done")!.y);
  });

  it("lays out left to right when asked", async () => {
    const boxes = await layoutGraph(nodes, edges, "RIGHT");
    expect(boxes.get("writer")!.x).toBeLessThan(boxes.get("review")!.x);
  });

  it("routes every edge with a start and an end, and skips edges to nodes that do not exist", async () => {
    const result = await layoutGraphWithRoutes(nodes, [...edges, { id: "e4", index: 4, from: "writer", to: "ghost" }]);
    expect([...result.edges.keys()].sort()).toEqual(["e0", "e1", "e2", "e3"]);
    for (const route of result.edges.values()) expect(route.points.length).toBeGreaterThanOrEqual(2);
    expect(result.edges.get("e2")!.label).toBeDefined();
  });

  it("labels an edge with its condition, loop and with keys", () => {
    expect(edgeLabelText({ id: "e0", index: 0, from: "a", to: "b", when: "not approved", loop: { name: "refine", max: 3 },
      with: { feedback: "{{outputs.b.feedback}}" } })).toBe("when not approved as refine(3) with {feedback}");
    expect(edgeLabelText({ id: "e0", index: 0, from: "a", to: "b" })).toBe("");
  });
});

describe("layoutGraph terminals", () => {
  it("puts done and fail below the other nodes even when nothing leads to them yet", async () => {
    const boxes = await layoutGraph(nodes, [edges[0]]);
    expect(boxes.get("done")!.y).toBeGreaterThan(boxes.get("review")!.y);
    expect(boxes.get("fail")!.y).toBeGreaterThan(boxes.get("review")!.y);
  });
});

describe("layoutGraph loops", () => {
  it("keeps the entry on top when a loop edge goes back to a node above a later one", async () => {
    // entry router → writer → editor, and the editor's loop goes back to the router.
    const loopNodes: GraphNode[] = [{ id: "turns", kind: "router" }, { id: "writer", kind: "agent" },
      { id: "editor", kind: "judge" }, { id: "done", kind: "done" }];
    const loopEdges: GraphEdge[] = [
      { id: "e0", index: 0, from: "turns", to: "writer" },
      { id: "e1", index: 1, from: "writer", to: "editor" },
      { id: "e2", index: 2, from: "editor", to: "turns", when: "not ready", loop: { name: "rewrite", max: 6 } },
      { id: "e3", index: 3, from: "editor", to: "done" },
    ];
    const result = await layoutGraphWithRoutes(loopNodes, loopEdges);
    const y = (id: string) => result.nodes.get(id)!.y;
    expect(y("turns")).toBeLessThan(y("writer"));
    expect(y("writer")).toBeLessThan(y("editor"));
    // The loop's route starts at the editor (its source) and ends at the router, going up.
    const route = result.edges.get("e2")!.points;
    expect(route[0].y).toBeGreaterThan(route[route.length - 1].y);
  });
});
