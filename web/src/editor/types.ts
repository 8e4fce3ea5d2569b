// The editor's wire types (the protocol between this page and api/editor*.py). The server does all
// language work; these are only the shapes that travel.
import type { Diagnostic, GraphEdge, GraphNode, Span } from "../graph/types";

export interface FileEntry { path: string; size: number; mtime: number }
export interface FileList { dir: string; files: FileEntry[] }
export interface FileContent { path: string; source: string; version: string }

export interface SchemaField { name: string; type: string; enum?: string[] | null }
export interface SchemaDecl { name: string; fields: SchemaField[]; span?: Span | null }
export interface PromptDecl { name: string; text: string; span?: Span | null }
export interface VarDecl { name: string; type: string; default?: unknown }
export interface McpServer { name: string; [key: string]: unknown }
export type Budget = Record<string, unknown>;

export interface EditorDocument {
  path: string | null;
  source: string;
  version: string;
  parse_ok: boolean;
  workflow: { name: string; entry: string | null; budget: Budget | null } | null;
  nodes: GraphNode[];
  edges: GraphEdge[];
  schemas: SchemaDecl[];
  prompts: PromptDecl[];
  vars: VarDecl[];
  mcp_servers: McpServer[];
  refs: string[];
  diagnostics: Diagnostic[];
}

export type LoopSpec = { name: string; max: number | string };

export type Op =
  | { op: "ensure_workflow"; name: string }
  | { op: "set_workflow"; name?: string; entry?: string; budget?: Budget | null }
  | { op: "add_node"; kind: string; name: string; props?: Record<string, unknown> }
  | { op: "remove_node"; name: string }
  | { op: "rename_node"; name: string; new_name: string }
  | { op: "set_node_property"; name: string; key: string; value: unknown }
  | { op: "add_edge"; from: string; to: string; when?: string | null; loop?: LoopSpec | null; with?: Record<string, string> | null }
  | { op: "update_edge"; index: number; from?: string; to?: string; when?: string | null; loop?: LoopSpec | null;
      with?: Record<string, string> | null }
  | { op: "remove_edge"; index: number }
  | { op: "set_schema"; name: string; fields: SchemaField[] }
  | { op: "remove_schema"; name: string }
  | { op: "set_prompt"; name: string; text: string }
  | { op: "remove_prompt"; name: string }
  | { op: "set_var"; name: string; type: string; default?: unknown }
  | { op: "remove_var"; name: string };

export interface RunStarted { run_id: string; console_url: string }

/** A server message on /editor/ws. */
export type ServerPush =
  | { type: "file_changed"; path: string; version: string; source: string }
  | { type: "files_changed" };
