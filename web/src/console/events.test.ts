import { describe, expect, it } from "vitest";
import { applyEvent, badges, highlighted, initialState, matchEdge, mergeEvents, stateAt } from "./events";
import type { Graph, RunEvent } from "./events";

// writer -> reviewer; reviewer -> done when approved; reviewer -> writer when not approved as revise(3);
// reviewer -> fail
const GRAPH: Graph = {
  nodes: [
    { id: "writer", kind: "agent" }, { id: "reviewer", kind: "judge" }, { id: "approval", kind: "human" },
    { id: "done", kind: "done" }, { id: "fail", kind: "fail" },
  ],
  edges: [
    { id: "e0", index: 0, from: "writer", to: "reviewer" },
    { id: "e1", index: 1, from: "reviewer", to: "approval", when: "approved" },
    { id: "e2", index: 2, from: "reviewer", to: "writer", when: "not approved", loop: { name: "revise", max: 3 } },
    { id: "e3", index: 3, from: "reviewer", to: "fail" },
    { id: "e4", index: 4, from: "approval", to: "done" },
  ],
};

let seq = 0;
function ev(type: string, node = "", data: Record<string, unknown> = {}): RunEvent {
  seq += 1;
  return { seq, time: `2026-12-08T00:00:${String(seq).padStart(2, "0")}Z`, type, node, branch: "", data };
}

function run(): RunEvent[] {
  seq = 0;
  return [
    ev("run_started"),
    ev("node_started", "writer", { kind: "agent", visit: 1 }),
    ev("node_finished", "writer", { output: { text: "a" } }),
    ev("edge_selected", "writer", { from: "writer", to: "reviewer" }),
    ev("node_started", "reviewer", { kind: "judge", visit: 1 }),
    ev("node_finished", "reviewer", { output: { approved: false } }),
    ev("edge_selected", "reviewer", { from: "reviewer", to: "writer", condition: "approved", negated: true,
      loop: "revise", iteration: 1 }),
    ev("node_started", "writer", { kind: "agent", visit: 2 }),
    ev("node_finished", "writer", { output: { text: "b" } }),
    ev("edge_selected", "writer", { from: "writer", to: "reviewer" }),
    ev("node_started", "reviewer", { kind: "judge", visit: 2 }),
    ev("node_finished", "reviewer", { output: { approved: true } }),
    ev("edge_selected", "reviewer", { from: "reviewer", to: "approval", condition: "approved", negated: false }),
    ev("node_started", "approval", { kind: "human", visit: 1 }),
    ev("human_input_requested", "approval", { interaction_id: "approval-1" }),
    ev("gate_answered", "approval", { interaction_id: "approval-1", by: "ada" }),
    ev("node_finished", "approval", { output: { ok: true } }),
    ev("edge_selected", "approval", { from: "approval", to: "done" }),
    ev("node_finished", "done", {}),
    ev("run_finished", "done"),
  ];
}

describe("the event reducer", () => {
  it("starts with every node pending and no path", () => {
    const state = initialState(GRAPH);
    expect(Object.values(state.states)).toEqual(["pending", "pending", "pending", "pending", "pending"]);
    expect(state.path).toEqual([]);
    expect(state.runStatus).toBe("running");
  });

  it("marks a started node running and a finished one done", () => {
    const events = run();
    expect(stateAt(GRAPH, events, 2).states.writer).toBe("running");
    expect(stateAt(GRAPH, events, 3).states.writer).toBe("done");
  });

  it("shows an open gate as waiting until it is answered", () => {
    const events = run();
    const waiting = events.findIndex((e) => e.type === "human_input_requested") + 1;
    expect(stateAt(GRAPH, events, waiting).states.approval).toBe("waiting");
    expect(stateAt(GRAPH, events, waiting + 1).states.approval).toBe("running");
  });

  it("follows the path taken, the loop edge included, in order", () => {
    const final = stateAt(GRAPH, run(), Infinity);
    expect(final.path).toEqual(["e0", "e2", "e0", "e1", "e4"]);
    expect(highlighted(final)).toEqual(new Set(["e0", "e1", "e2", "e4"]));
    expect(final.path).not.toContain("e3");
  });

  it("tells apart two edges between the same nodes by their condition", () => {
    const graph: Graph = { nodes: GRAPH.nodes, edges: [
      { id: "a", index: 0, from: "reviewer", to: "done", when: "approved" },
      { id: "b", index: 1, from: "reviewer", to: "done", when: "else" },
    ] };
    expect(matchEdge(graph, { from: "reviewer", to: "done", else: true })?.id).toBe("b");
    expect(matchEdge(graph, { from: "reviewer", to: "done", condition: "approved", negated: false })?.id).toBe("a");
  });

  it("counts visits and loop rounds as badges", () => {
    const final = stateAt(GRAPH, run(), Infinity);
    expect(final.visits).toMatchObject({ writer: 2, reviewer: 2, approval: 1, done: 1, fail: 0 });
    expect(final.loops).toEqual({ revise: 1 });
    const marks = badges(GRAPH, final);
    expect(marks.writer).toBe("×2 ↺1/3");
    expect(marks.reviewer).toBe("×2");
    expect(marks.fail).toBeUndefined();
  });

  it("ends with the run's final status and the terminal done", () => {
    const final = stateAt(GRAPH, run(), Infinity);
    expect(final.runStatus).toBe("finished");
    expect(final.states.done).toBe("done");
  });

  it("leaves a node running when its failure is tolerated, and fails it otherwise", () => {
    const start = applyEvent(GRAPH, initialState(GRAPH), ev("node_started", "writer", { visit: 1 }));
    expect(applyEvent(GRAPH, start, ev("node_failed", "writer", { error: "x", tolerated: true })).states.writer).toBe("running");
    expect(applyEvent(GRAPH, start, ev("node_failed", "writer", { error: "x", resumable: true })).states.writer).toBe("failed");
  });
});

describe("the history scrubber", () => {
  it("shows the state as of event k, whatever came after", () => {
    const events = run();
    const early = stateAt(GRAPH, events, 4);
    expect(early.states).toMatchObject({ writer: "done", reviewer: "pending", approval: "pending", done: "pending" });
    expect(early.path).toEqual(["e0"]);
    expect(early.seq).toBe(4);
  });

  it("at zero shows nothing done, and past the end the latest state", () => {
    const events = run();
    expect(stateAt(GRAPH, events, 0)).toEqual(initialState(GRAPH));
    expect(stateAt(GRAPH, events, 999)).toEqual(stateAt(GRAPH, events, events.length));
  });

  it("does not change an earlier state when it folds later events", () => {
    const events = run();
    const early = stateAt(GRAPH, events, 3);
    const snapshot = JSON.stringify(early);
    applyEvent(GRAPH, early, events[3]);
    expect(JSON.stringify(early)).toBe(snapshot);
  });

  it("merges streamed events once, in seq order", () => {
    const events = run();
    const merged = mergeEvents(events.slice(0, 5), [events[6], events[4], events[5]]);
    expect(merged.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
