import { describe, expect, it } from "vitest";
import {
  addedEdge, budgetFromInputs, canvasGraph, connectOps, deleteOps, diagnosticMarkers, displayValue, dropOps, edgeUpdateOp,
  loopFromInputs, nodePropertyOp, parseFieldValue, renameOp, uniqueNodeName, whenSuggestions, workflowNameFor,
} from "./mapping";
import type { EditorDocument } from "./types";

function doc(overrides: Partial<EditorDocument> = {}): EditorDocument {
  return {
    path: "review.iter", source: "", version: "v", parse_ok: true,
    workflow: { name: "review", entry: "writer", budget: null },
    nodes: [
      { id: "writer", kind: "agent", props: { model: "scripted" } },
      { id: "critic", kind: "judge", props: { output: "verdict" } },
      { id: "done", kind: "done", props: {} },
      { id: "fail", kind: "fail", props: {} },
    ],
    edges: [
      { id: "e0", index: 0, from: "writer", to: "critic" },
      { id: "e1", index: 1, from: "critic", to: "done", when: "approved" },
      { id: "e2", index: 2, from: "critic", to: "writer", when: "not approved", loop: { name: "refine", max: 3 } },
      { id: "e3", index: 3, from: "critic", to: "fail" },
    ],
    schemas: [{ name: "verdict", fields: [{ name: "approved", type: "bool" }, { name: "ready", type: "bool" },
      { name: "notes", type: "string" }] }],
    prompts: [], vars: [], mcp_servers: [], refs: ["vars.goal", "outputs.critic.approved"], diagnostics: [],
    ...overrides,
  };
}

describe("Document → canvas", () => {
  it("draws the Document's nodes and edges, one canvas node per node it lists", () => {
    const d = doc();
    const graph = canvasGraph(d, d);
    expect(graph.nodes.map((n) => n.id)).toEqual(["writer", "critic", "done", "fail"]);
    expect(graph.edges.map((e) => e.id)).toEqual(["e0", "e1", "e2", "e3"]);
    expect(graph.stale).toBe(false);
  });

  it("keeps the last graph that parsed on screen while the source does not parse, marked stale", () => {
    const good = doc();
    const broken = doc({ parse_ok: false, nodes: [], edges: [] });
    const graph = canvasGraph(broken, good);
    expect(graph.nodes).toBe(good.nodes);
    expect(graph.stale).toBe(true);
  });

  it("shows nothing before a file is open", () => {
    expect(canvasGraph(null, null)).toEqual({ nodes: [], edges: [], stale: false });
  });

  it("puts a marker on the node and the edge a diagnostic names, an error outranking a warning", () => {
    const marks = diagnosticMarkers([
      { code: "C111", severity: "warning", message: "w", node: "writer" },
      { code: "C002", severity: "error", message: "e", node: "writer" },
      { code: "C016", severity: "warning", message: "w", edge: "e2" },
      { code: "C006", severity: "error", message: "no node" },
    ]);
    expect(marks).toEqual({ writer: "error", e2: "warning" });
  });
});

describe("canvas gestures → ops", () => {
  it("a drop adds a node under a fresh name", () => {
    expect(uniqueNodeName("agent", ["writer", "agent_1", "agent_2"])).toBe("agent_3");
    expect(dropOps(doc(), "agent", "agent_1", "review.iter")).toEqual([{ op: "add_node", kind: "agent", name: "agent_1" }]);
  });

  it("a drop on a file without a workflow creates one named after the file and makes the node its entry", () => {
    const empty = doc({ workflow: null, nodes: [], edges: [] });
    expect(dropOps(empty, "judge", "judge_1", "flows/my-review.iter")).toEqual([
      { op: "ensure_workflow", name: "my_review" },
      { op: "add_node", kind: "judge", name: "judge_1" },
      { op: "set_workflow", entry: "judge_1" },
    ]);
  });

  it("a drop makes the node the entry when the workflow's entry is missing or names no node", () => {
    const noEntry = doc({ workflow: { name: "review", entry: null, budget: null } });
    expect(dropOps(noEntry, "tool", "tool_1", null).at(-1)).toEqual({ op: "set_workflow", entry: "tool_1" });
    const dangling = doc({ workflow: { name: "review", entry: "gone", budget: null } });
    expect(dropOps(dangling, "tool", "tool_1", null).at(-1)).toEqual({ op: "set_workflow", entry: "tool_1" });
  });

  it("workflow names made from file names are identifiers", () => {
    expect(workflowNameFor("a/b/review.iter")).toBe("review");
    expect(workflowNameFor("2024 plan.bot")).toBe("w_2024_plan");
    expect(workflowNameFor(null)).toBe("workflow");
  });

  it("a connection adds an edge, and the new edge is found in the answer", () => {
    expect(connectOps("writer", "done")).toEqual([{ op: "add_edge", from: "writer", to: "done" }]);
    const next = doc();
    next.edges.push({ id: "e4", index: 4, from: "writer", to: "critic" });
    expect(addedEdge(next, "writer", "critic")?.id).toBe("e4");
  });

  it("delete removes lone edges last index first, then nodes (their edges go with them), never terminals", () => {
    expect(deleteOps(doc(), ["writer", "done"], ["e1", "e0", "e3"])).toEqual([
      { op: "remove_edge", index: 3 },
      { op: "remove_edge", index: 1 },
      { op: "remove_node", name: "writer" },
    ]);
    expect(deleteOps(doc(), ["fail"], [])).toEqual([]);
  });
});

describe("inspector fields → ops", () => {
  it("a property box sends set_node_property with a JSON value of the field's type; empty removes it", () => {
    expect(nodePropertyOp("writer", "model", " anthropic/claude ", "text"))
      .toEqual({ op: "set_node_property", name: "writer", key: "model", value: "anthropic/claude" });
    expect(nodePropertyOp("writer", "tools", "search, mcp.fs.*", "list").value).toEqual(["search", "mcp.fs.*"]);
    expect(nodePropertyOp("writer", "readonly", "true", "bool").value).toBe(true);
    expect(nodePropertyOp("writer", "max_tokens", "2000", "int").value).toBe(2000);
    expect(nodePropertyOp("writer", "output", "", "schema").value).toBeNull();
    expect(nodePropertyOp("writer", "expr", '{"total": "a + b"}', "json").value).toEqual({ total: "a + b" });
  });

  it("a value that is not of the field's type is refused in the browser with what was expected", () => {
    expect(() => parseFieldValue("many", "int")).toThrow("expected a whole number, got 'many'");
    expect(() => parseFieldValue("yes", "bool")).toThrow("expected true or false");
  });

  it("a property value shows as text the way it was typed", () => {
    expect(displayValue(["a", "b"], "list")).toBe("a, b");
    expect(displayValue("x")).toBe("x");
    expect(displayValue(3)).toBe("3");
    expect(displayValue(undefined)).toBe("");
  });

  it("a rename sends rename_node; an unchanged name sends nothing; bad and reserved names are refused", () => {
    expect(renameOp("agent_1", " writer ")).toEqual({ op: "rename_node", name: "agent_1", new_name: "writer" });
    expect(renameOp("writer", "writer")).toBeNull();
    expect(() => renameOp("writer", "9lives")).toThrow("not a valid node name");
    expect(() => renameOp("writer", "done")).toThrow("built-in terminal");
  });

  it("an edge's when, loop and with go out as update_edge with only what changed; empty clears", () => {
    const edge = doc().edges[2];
    expect(edgeUpdateOp(edge, { when: " approved " })).toEqual({ op: "update_edge", index: 2, when: "approved" });
    expect(edgeUpdateOp(edge, { when: "" })).toEqual({ op: "update_edge", index: 2, when: null });
    expect(edgeUpdateOp(edge, { loop: loopFromInputs("refine", "3") }))
      .toEqual({ op: "update_edge", index: 2, loop: { name: "refine", max: 3 } });
    expect(edgeUpdateOp(edge, { loop: loopFromInputs("", "") })).toEqual({ op: "update_edge", index: 2, loop: null });
    expect(edgeUpdateOp(edge, { with: { feedback: "{{outputs.critic.notes}}" } }))
      .toEqual({ op: "update_edge", index: 2, with: { feedback: "{{outputs.critic.notes}}" } });
    expect(edgeUpdateOp(edge, { with: {} })).toEqual({ op: "update_edge", index: 2, with: null });
  });

  it("a loop needs a valid name and a maximum", () => {
    expect(loopFromInputs("refine", "${MAX}")).toEqual({ name: "refine", max: "${MAX}" });
    expect(() => loopFromInputs("refine", "")).toThrow("needs a maximum number of iterations, e.g. refine(3)");
    expect(() => loopFromInputs("re fine", "2")).toThrow("not a valid loop name");
  });

  it("when suggestions offer approved/not approved/else and the bool fields of the source's output schema", () => {
    expect(whenSuggestions(doc(), "critic")).toEqual(["approved", "not approved", "else", "ready", "not ready"]);
    expect(whenSuggestions(doc(), "writer")).toEqual(["approved", "not approved", "else"]);
  });

  it("the budget boxes become a budget object with numbers where numbers were typed, or null when empty", () => {
    expect(budgetFromInputs({ max_cost_usd: "3.5", max_iterations: "20", max_duration: "2h", max_tokens: " " }))
      .toEqual({ max_cost_usd: 3.5, max_iterations: 20, max_duration: "2h" });
    expect(budgetFromInputs({ max_cost_usd: "" })).toBeNull();
  });
});
