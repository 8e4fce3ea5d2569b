// One look per node kind, shared by the editor and the run console, so a judge looks like a judge
// on both pages. Shapes are drawn with CSS (graph.css keys on `data-shape`); colours come from here.
import type { NodeKind } from "./types";

export type NodeShape = "rounded" | "double" | "hexagon" | "bar" | "person" | "square" | "dotted" | "terminal";

export interface NodeLook {
  /** What the node library and the inspector call the kind. */
  label: string;
  /** One glyph: no icon font, nothing fetched. */
  icon: string;
  shape: NodeShape;
  /** Border / accent colour. */
  color: string;
  /** Fill colour. */
  background: string;
  width: number;
  height: number;
  /** One line for the node library's tooltip. */
  description: string;
}

const LOOKS: Record<string, NodeLook> = {
  agent: { label: "agent", icon: "✦", shape: "rounded", color: "#2563eb", background: "#eff6ff", width: 180, height: 56,
    description: "A model call with input/output schemas and prompts." },
  judge: { label: "judge", icon: "⚖", shape: "double", color: "#7c3aed", background: "#f5f3ff", width: 180, height: 56,
    description: "A model call that decides (its output drives `when` edges)." },
  router: { label: "router", icon: "◇", shape: "hexagon", color: "#d97706", background: "#fffbeb", width: 170, height: 56,
    description: "Fans out or picks a branch (fan_out, condition, round_robin, llm)." },
  join: { label: "join", icon: "⋈", shape: "bar", color: "#0f766e", background: "#f0fdfa", width: 170, height: 48,
    description: "Waits for parallel branches (wait_all / best_effort)." },
  human: { label: "human", icon: "☺", shape: "person", color: "#db2777", background: "#fdf2f8", width: 180, height: 56,
    description: "A gate a person answers in the dashboard, Slack or the CLI." },
  tool: { label: "tool", icon: "⚙", shape: "square", color: "#475569", background: "#f8fafc", width: 180, height: 56,
    description: "A command, script or MCP tool call." },
  compute: { label: "compute", icon: "ƒ", shape: "dotted", color: "#0891b2", background: "#ecfeff", width: 170, height: 52,
    description: "Pure expressions over earlier outputs (no I/O)." },
  wait: { label: "wait", icon: "◔", shape: "square", color: "#65a30d", background: "#f7fee7", width: 170, height: 52,
    description: "Waits for a duration or until a condition holds." },
  subbot: { label: "subbot", icon: "▣", shape: "double", color: "#9333ea", background: "#faf5ff", width: 180, height: 56,
    description: "Runs another .bot/.iter workflow as one node." },
  done: { label: "done", icon: "✔", shape: "terminal", color: "#15803d", background: "#dcfce7", width: 110, height: 44,
    description: "The run finished successfully." },
  fail: { label: "fail", icon: "✖", shape: "terminal", color: "#b91c1c", background: "#fee2e2", width: 110, height: 44,
    description: "The run failed." },
};

const UNKNOWN: NodeLook = { label: "node", icon: "•", shape: "rounded", color: "#6b7280", background: "#f9fafb",
  width: 170, height: 52, description: "A node kind this page does not know." };

/** The kinds a user can drop from the node library, in the order it lists them. */
export const LIBRARY_KINDS: NodeKind[] = ["agent", "judge", "router", "join", "human", "tool", "compute", "wait",
  "subbot", "done", "fail"];

/** The look of a kind; an unknown kind still draws (grey), it never breaks the canvas. */
export function nodeLook(kind: NodeKind): NodeLook {
  return LOOKS[kind] ?? { ...UNKNOWN, label: kind };
}

/** Console states and their colours (fill, border). */
export const STATE_COLORS: Record<string, { fill: string; border: string }> = {
  pending: { fill: "#f3f4f6", border: "#9ca3af" },
  running: { fill: "#dbeafe", border: "#2563eb" },
  done: { fill: "#dcfce7", border: "#16a34a" },
  failed: { fill: "#fee2e2", border: "#dc2626" },
  waiting: { fill: "#fef3c7", border: "#d97706" },
  skipped: { fill: "#f9fafb", border: "#d1d5db" },
};
