// The run console's model of a run: its events folded into node states, visit and loop counts and
// the path taken. Pure functions, so the history scrubber can show the run "as of event k" by
// folding only the first k events, and Vitest can check the fold without a browser or a server.
import type { GraphEdge, GraphNode } from "../graph/types";

/** One run event as GET /api/runs/RUN/events and the SSE stream send it. */
export interface RunEvent {
  seq: number;
  time: string;
  type: string;
  node: string;
  branch: string;
  data: Record<string, unknown>;
}

/** The states the graph component colours (graph/nodeLooks.ts STATE_COLORS). */
export type NodeState = "pending" | "running" | "waiting" | "done" | "failed" | "skipped";

export interface ConsoleState {
  states: Record<string, NodeState>;
  visits: Record<string, number>;
  /** Loop name → rounds taken (the `iteration` of its latest `edge_selected`). */
  loops: Record<string, number>;
  /** Edge ids in the order the run took them (an edge taken twice appears twice). */
  path: string[];
  /** The run's status as the events say: running, finished, failed, cancelled, budget_exceeded. */
  runStatus: string;
  /** The seq of the last event folded in (0 before any). */
  seq: number;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

const RUN_END: Record<string, string> = {
  run_finished: "finished", run_failed: "failed", run_cancelled: "cancelled", run_budget_exceeded: "budget_exceeded",
};

export function initialState(graph: Graph): ConsoleState {
  const states: Record<string, NodeState> = {};
  const visits: Record<string, number> = {};
  for (const node of graph.nodes) {
    states[node.id] = "pending";
    visits[node.id] = 0;
  }
  return { states, visits, loops: {}, path: [], runStatus: "running", seq: 0 };
}

/** The condition an `edge_selected` event reports, spelled as the graph's `when`. */
function eventCondition(data: Record<string, unknown>): string | null {
  if (data.else) return "else";
  if (typeof data.condition === "string" && data.condition) return (data.negated ? "not " : "") + data.condition;
  if (typeof data.expression === "string") return `"${data.expression}"`;
  return null;
}

/** The graph edge an `edge_selected` event took: same ends, then same condition and loop. */
export function matchEdge(graph: Graph, data: Record<string, unknown>): GraphEdge | undefined {
  const candidates = graph.edges.filter((e) => e.from === data.from && e.to === data.to);
  if (candidates.length <= 1) return candidates[0];
  const when = eventCondition(data);
  const loop = typeof data.loop === "string" ? data.loop : null;
  return candidates.find((e) => (e.when ?? null) === when && (e.loop?.name ?? null) === loop)
    ?? candidates.find((e) => (e.when ?? null) === when)
    ?? candidates[0];
}

/** One event folded into the state (a new state: earlier ones stay as they were, for the scrubber). */
export function applyEvent(graph: Graph, state: ConsoleState, event: RunEvent): ConsoleState {
  const next: ConsoleState = {
    states: { ...state.states }, visits: { ...state.visits }, loops: { ...state.loops }, path: state.path,
    runStatus: state.runStatus, seq: Math.max(state.seq, event.seq),
  };
  const node = event.node;
  switch (event.type) {
    case "node_started": {
      next.states[node] = "running";
      const visit = typeof event.data.visit === "number" ? event.data.visit : (next.visits[node] ?? 0) + 1;
      next.visits[node] = Math.max(visit, next.visits[node] ?? 0);
      break;
    }
    case "node_finished":
      if ((next.visits[node] ?? 0) === 0) next.visits[node] = 1; // the terminals finish without a start
      next.states[node] = "done";
      break;
    case "node_failed":
      if (!event.data.tolerated) next.states[node] = "failed";
      break;
    case "node_retried":
      next.states[node] = "running";
      break;
    case "human_input_requested":
      next.states[node] = "waiting";
      break;
    case "gate_answered":
      if (next.states[node] === "waiting" || next.states[node] === "pending") next.states[node] = "running";
      break;
    case "edge_selected": {
      const edge = matchEdge(graph, event.data);
      if (edge) next.path = [...state.path, edge.id];
      if (typeof event.data.loop === "string") {
        const round = typeof event.data.iteration === "number" ? event.data.iteration : (next.loops[event.data.loop] ?? 0) + 1;
        next.loops[event.data.loop] = round;
        for (const inner of Array.isArray(event.data.reset_loops) ? event.data.reset_loops : []) {
          if (typeof inner === "string") delete next.loops[inner];
        }
      }
      break;
    }
    case "run_rewound":
    case "run_forked":
    case "run_resumed":
    case "run_started":
    case "run_continued":
      next.runStatus = "running";
      break;
    default:
      if (event.type in RUN_END) next.runStatus = RUN_END[event.type];
  }
  return next;
}

/** The run as of its first `k` events (k = events.length: as of now). */
export function stateAt(graph: Graph, events: RunEvent[], k: number): ConsoleState {
  let state = initialState(graph);
  const end = Math.max(0, Math.min(k, events.length));
  for (let i = 0; i < end; i += 1) state = applyEvent(graph, state, events[i]);
  return state;
}

/** Edges taken, as the set the graph component highlights. */
export function highlighted(state: ConsoleState): Set<string> {
  return new Set(state.path);
}

/** Each node's corner badge: its visits (×N), and the rounds of the loops that come back to it. */
export function badges(graph: Graph, state: ConsoleState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const node of graph.nodes) {
    const parts: string[] = [];
    const visits = state.visits[node.id] ?? 0;
    if (visits > 0) parts.push(`×${visits}`);
    for (const edge of graph.edges) {
      if (edge.to === node.id && edge.loop && state.loops[edge.loop.name]) {
        parts.push(`↺${state.loops[edge.loop.name]}/${edge.loop.max}`);
      }
    }
    if (parts.length) out[node.id] = [...new Set(parts)].join(" ");
  }
  return out;
}

/** New events added to a list kept in seq order, without duplicates (the stream may resend). */
export function mergeEvents(known: RunEvent[], incoming: RunEvent[]): RunEvent[] {
  const last = known.length ? known[known.length - 1].seq : 0;
  const fresh = incoming.filter((e) => e.seq > last).sort((a, b) => a.seq - b.seq);
  return fresh.length ? [...known, ...fresh] : known;
}

/** A line describing an event for the scrubber's caption. */
export function describe(event: RunEvent | undefined): string {
  if (!event) return "before the run started";
  const where = event.node ? ` · ${event.node}` : "";
  if (event.type === "edge_selected") return `#${event.seq} ${event.data.from} → ${event.data.to}`;
  return `#${event.seq} ${event.type.replace(/_/g, " ")}${where}`;
}
