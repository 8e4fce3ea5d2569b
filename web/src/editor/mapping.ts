// The graph ↔ source mapping on the browser's side, as pure functions (unit-tested in
// mapping.test.ts): what the canvas draws from the server's Document, and which ops a gesture on
// the canvas or a field of the inspector sends. The server turns ops into source text.
import type { Diagnostic, GraphEdge, GraphNode } from "../graph/types";
import type { EditorDocument, LoopSpec, Op } from "./types";

/** The built-in terminals: every compiled workflow has them, nobody declares them. */
export const TERMINALS = ["done", "fail"] as const;

export function isTerminal(id: string): boolean {
  return (TERMINALS as readonly string[]).includes(id);
}

export interface CanvasGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** True when the source does not parse and the canvas shows the last version that did. */
  stale: boolean;
}

/** What the canvas draws: the Document's nodes and edges (one canvas node per IR node). While the
 * source does not parse the server has no graph, so the last one that parsed stays on screen. */
export function canvasGraph(doc: EditorDocument | null, lastParsed: EditorDocument | null): CanvasGraph {
  if (!doc) return { nodes: [], edges: [], stale: false };
  if (!doc.parse_ok && lastParsed) return { nodes: lastParsed.nodes, edges: lastParsed.edges, stale: true };
  return { nodes: doc.nodes, edges: doc.edges, stale: !doc.parse_ok };
}

/** Markers for the canvas, keyed by node id or edge id; an error outranks a warning. */
export function diagnosticMarkers(diagnostics: Diagnostic[]): Record<string, "error" | "warning"> {
  const marks: Record<string, "error" | "warning"> = {};
  for (const d of diagnostics) {
    for (const id of [d.node, d.edge]) {
      if (!id) continue;
      if (marks[id] !== "error") marks[id] = d.severity === "error" ? "error" : "warning";
    }
  }
  return marks;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether a name is a valid node/schema/prompt/var name of the language. */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** A fresh node name for a kind: `agent_1`, `agent_2`, … the first one not taken (and never a terminal). */
export function uniqueNodeName(kind: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const stem = isValidName(kind) ? kind : "node";
  for (let n = 1; ; n++) {
    const name = `${stem}_${n}`;
    if (!used.has(name) && !isTerminal(name)) return name;
  }
}

/** The workflow name a new file gets: its file name, made a valid identifier. */
export function workflowNameFor(path: string | null): string {
  const file = (path ?? "workflow").split("/").pop() ?? "workflow";
  let stem = file.replace(/\.(iter|bot)$/, "").replace(/[^A-Za-z0-9_]/g, "_");
  if (!stem) stem = "workflow";
  if (/^[0-9]/.test(stem)) stem = `w_${stem}`;
  return stem;
}

/** Ops for a node dropped from the library. A file without a workflow gets one; the first node of
 * a workflow without an entry becomes its entry (otherwise C008 greets every new file). */
export function dropOps(doc: EditorDocument | null, kind: string, name: string, path: string | null): Op[] {
  const ops: Op[] = [];
  if (!doc?.workflow) ops.push({ op: "ensure_workflow", name: workflowNameFor(path) });
  ops.push({ op: "add_node", kind, name });
  const hasEntry = Boolean(doc?.workflow?.entry) && (doc?.nodes ?? []).some((n) => n.id === doc?.workflow?.entry);
  if (!hasEntry) ops.push({ op: "set_workflow", entry: name });
  return ops;
}

/** Ops for a connection dragged from one node's handle to another's. */
export function connectOps(from: string, to: string): Op[] {
  return [{ op: "add_edge", from, to }];
}

/** Ops for deleting nodes and edges. Terminals are built in and cannot go; the edges of a removed
 * node go with it; lone edges are removed last index first, so earlier removals do not shift the
 * indexes of later ones. */
export function deleteOps(doc: EditorDocument, nodeIds: string[], edgeIds: string[]): Op[] {
  const nodes = nodeIds.filter((id) => !isTerminal(id) && doc.nodes.some((n) => n.id === id));
  const gone = new Set(nodes);
  const edges = doc.edges
    .filter((e) => edgeIds.includes(e.id) && !gone.has(e.from) && !gone.has(e.to))
    .sort((a, b) => b.index - a.index);
  return [
    ...edges.map((e): Op => ({ op: "remove_edge", index: e.index })),
    ...nodes.map((name): Op => ({ op: "remove_node", name })),
  ];
}

/** The field types of the inspector and how each turns typed text into a JSON value. */
export type FieldType = "text" | "longtext" | "schema" | "prompt" | "int" | "number" | "bool" | "list" | "choice" | "json";

export interface FieldSpec { key: string; type: FieldType; choices?: string[]; hint?: string }

const MODEL_FIELDS: FieldSpec[] = [
  { key: "model", type: "text", hint: "provider/model, e.g. anthropic/claude-sonnet-4-5" },
  { key: "backend", type: "text", hint: "delegation backend: claude_code, codex" },
  { key: "input", type: "schema" },
  { key: "output", type: "schema" },
  { key: "system", type: "prompt" },
  { key: "user", type: "prompt" },
  { key: "tools", type: "list", hint: "comma-separated tool names" },
  { key: "publish", type: "text" },
  { key: "session", type: "choice", choices: ["fresh", "inherit", "fork"] },
  { key: "reasoning_effort", type: "choice", choices: ["low", "medium", "high", "extra_high"] },
  { key: "readonly", type: "bool" },
];

/** The properties the inspector shows first for each kind (everything else: generic key/value rows). */
export const KIND_FIELDS: Record<string, FieldSpec[]> = {
  agent: MODEL_FIELDS,
  judge: MODEL_FIELDS,
  router: [
    { key: "mode", type: "choice", choices: ["fan_out_all", "condition", "round_robin", "llm", "fan_out_each", "foreach"] },
    { key: "over", type: "text", hint: "{{outputs.NODE.items}}" },
    { key: "parallelism", type: "int" },
    { key: "model", type: "text" },
    { key: "system", type: "prompt" },
    { key: "user", type: "prompt" },
  ],
  join: [
    { key: "strategy", type: "choice", choices: ["wait_all", "best_effort"] },
    { key: "require", type: "list" },
    { key: "output", type: "schema" },
  ],
  human: [
    { key: "interaction", type: "choice", choices: ["human", "llm", "llm_or_human"] },
    { key: "instructions", type: "prompt" },
    { key: "input", type: "schema" },
    { key: "output", type: "schema" },
    { key: "timeout", type: "text", hint: "48h, 2d" },
    { key: "model", type: "text" },
    { key: "publish", type: "text" },
  ],
  tool: [
    { key: "command", type: "text" },
    { key: "call", type: "text" },
    { key: "script", type: "longtext" },
    { key: "language", type: "choice", choices: ["sh", "bash", "node", "python"] },
    { key: "input", type: "schema" },
    { key: "output", type: "schema" },
    { key: "publish", type: "text" },
  ],
  wait: [{ key: "duration", type: "text", hint: "30m, 1d" }],
  compute: [
    { key: "input", type: "schema" },
    { key: "output", type: "schema" },
    { key: "expr", type: "json", hint: '{"field": "expression"}' },
  ],
  subbot: [{ key: "bot", type: "text", hint: "path of the .bot/.iter file" }],
};

export function fieldsFor(kind: string): FieldSpec[] {
  return KIND_FIELDS[kind] ?? [];
}

/** How a property value shows in a text box. */
export function displayValue(value: unknown, type: FieldType = "json"): string {
  if (value === null || value === undefined) return "";
  if (type === "list" && Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** The JSON value a text box stands for; an empty box removes the property (null). Throws a
 * message for the user when the text is not a value of the field's type. */
export function parseFieldValue(text: string, type: FieldType): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  switch (type) {
    case "int": {
      if (!/^-?\d+$/.test(trimmed)) throw new Error(`expected a whole number, got '${trimmed}'`);
      return Number(trimmed);
    }
    case "number": {
      const n = Number(trimmed);
      if (Number.isNaN(n)) throw new Error(`expected a number, got '${trimmed}'`);
      return n;
    }
    case "bool": {
      if (trimmed !== "true" && trimmed !== "false") throw new Error(`expected true or false, got '${trimmed}'`);
      return trimmed === "true";
    }
    case "list":
      return trimmed.split(",").map((s) => s.trim()).filter(Boolean);
    case "json":
      try { return JSON.parse(trimmed); } catch { return text; }
    case "longtext":
      return text;
    default:
      return trimmed;
  }
}

/** The op for one inspector field of a node. */
export function nodePropertyOp(node: string, key: string, text: string, type: FieldType): Extract<Op, { op: "set_node_property" }> {
  return { op: "set_node_property", name: node, key, value: parseFieldValue(text, type) };
}

/** The op for a node renamed in the inspector, or null when the name did not change. */
export function renameOp(node: string, newName: string): Op | null {
  const name = newName.trim();
  if (name === node) return null;
  if (!isValidName(name)) throw new Error(`'${name}' is not a valid node name: use letters, digits and _, not starting with a digit`);
  if (isTerminal(name)) throw new Error(`'${name}' is a built-in terminal; choose another name`);
  return { op: "rename_node", name: node, new_name: name };
}

/** A loop as typed in the edge inspector (name and max), or null when the name is empty. */
export function loopFromInputs(name: string, max: string): LoopSpec | null {
  const n = name.trim();
  if (!n) return null;
  if (!isValidName(n)) throw new Error(`'${n}' is not a valid loop name`);
  const m = max.trim();
  if (!m) throw new Error(`loop '${n}' needs a maximum number of iterations, e.g. ${n}(3)`);
  return { name: n, max: /^\d+$/.test(m) ? Number(m) : m };
}

/** The op for a change of one edge in the inspector: only the fields given change; an empty
 * `when` or loop clears it. */
export function edgeUpdateOp(edge: GraphEdge, change: { when?: string; loop?: LoopSpec | null;
  with?: Record<string, string> | null; from?: string; to?: string }): Op {
  const op: Extract<Op, { op: "update_edge" }> = { op: "update_edge", index: edge.index };
  if (change.from !== undefined) op.from = change.from;
  if (change.to !== undefined) op.to = change.to;
  if (change.when !== undefined) op.when = change.when.trim() === "" ? null : change.when.trim();
  if (change.loop !== undefined) op.loop = change.loop;
  if (change.with !== undefined) op.with = change.with && Object.keys(change.with).length ? change.with : null;
  return op;
}

/** Suggestions for an edge's `when`: approved / not approved, `else`, and each bool field of the
 * source node's output schema (and its negation). */
export function whenSuggestions(doc: EditorDocument, from: string): string[] {
  const node = doc.nodes.find((n) => n.id === from);
  const out = ["approved", "not approved", "else"];
  const schemaName = node?.props?.output;
  const schema = typeof schemaName === "string" ? doc.schemas.find((s) => s.name === schemaName) : undefined;
  for (const field of schema?.fields ?? []) {
    if (field.type === "bool" && field.name !== "approved") out.push(field.name, `not ${field.name}`);
  }
  return out;
}

/** The budget object for set_workflow from the workflow tab's boxes (empty boxes dropped; numbers
 * where a box holds one); null when every box is empty (removes the budget). */
export function budgetFromInputs(values: Record<string, string>): Record<string, unknown> | null {
  const budget: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(values)) {
    const text = raw.trim();
    if (!text) continue;
    budget[key] = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
  }
  return Object.keys(budget).length ? budget : null;
}

/** The edge the server made for a connection just added: the last one from → to. */
export function addedEdge(doc: EditorDocument, from: string, to: string): GraphEdge | undefined {
  return [...doc.edges].reverse().find((e) => e.from === from && e.to === to);
}
