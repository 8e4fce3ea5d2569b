// The graph shape both pages draw: the editor (from the server's analysis of the source) and the
// run console (from the run's compiled workflow). The server builds it with iterloop's own dsl/;
// the browser never parses `.iter` text.

/** A node kind as the DSL names it; `done` and `fail` are the terminals. */
export type NodeKind =
  | "agent" | "judge" | "router" | "join" | "human" | "tool" | "compute"
  | "subbot" | "done" | "fail" | string;

export interface Span { line: number; column: number; end_line?: number; end_column?: number }

export interface GraphNode {
  id: string;
  kind: NodeKind;
  /** Properties as written (editor) or compiled (console); shown by the inspector. */
  props?: Record<string, unknown>;
  span?: Span | null;
}

export interface GraphEdge {
  /** Stable within one document: "e<index>" in source order. */
  id: string;
  index: number;
  from: string;
  to: string;
  /** As written: `approved`, `not approved`, a quoted expression, `else`; null when unconditional. */
  when?: string | null;
  loop?: { name: string; max: number | string } | null;
  with?: Record<string, string> | null;
  span?: Span | null;
}

export interface Diagnostic {
  code: string;
  severity: "error" | "warning";
  message: string;
  hint?: string | null;
  line?: number | null;
  column?: number | null;
  node?: string | null;
  edge?: string | null;
}
