// What the console reads from the server: the REST API (session cookie) and the dashboard's own
// gate form endpoint (CSRF token), never anything from elsewhere.
import type { GraphEdge, GraphNode } from "../graph/types";
import type { NodeCalls } from "./calls";
import type { RunEvent } from "./events";

export interface RunGraph {
  run_id: string;
  workflow: string;
  graph: { name: string; entry: string; nodes: GraphNode[]; edges: GraphEdge[] } | null;
}

export interface SchemaField { name: string; type: string; enum_values?: string[] | null }

export interface OpenGate {
  gate: string;
  interaction_id: string;
  instructions: string;
  questions: Record<string, unknown>;
  fields: SchemaField[];
}

export interface RunDetail {
  run_id: string;
  status: string;
  open_gates: OpenGate[];
}

export interface Turn {
  turn: number; status: string; input_tokens: number; output_tokens: number; cached_tokens: number;
  cost_usd: number; tool_calls: string[];
}

export interface Visit {
  visit: number; branch: string; status: string; started_at: string; ended_at: string;
  output: Record<string, unknown> | null; error: string; turns: Turn[];
  tool_calls: { tool: string; outcome: string; detail: string }[];
  input_tokens: number; output_tokens: number; cost_usd: number;
  questions: Record<string, unknown> | null; answered_by: string; first_seq: number; last_seq: number;
}

export interface NodeVisits {
  run_id: string; node: string; kind: string; status: string; props: Record<string, unknown>;
  inputs: { prompts: Record<string, string>; input_schema: Record<string, unknown>[]; incoming: Record<string, unknown>[] };
  visits: Visit[]; latest_output: Record<string, unknown> | null; events_trimmed: boolean;
}

export interface Rendered {
  run_id: string; report_markdown: string; report_html: string; artifacts: Record<string, Record<string, string>>;
}

const runPath = (run: string) => `/api/runs/${encodeURIComponent(run)}`;

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json() as { error?: { message?: string } };
      message = body.error?.message ?? message;
    } catch { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return await response.json() as T;
}

export const fetchGraph = (run: string) => getJson<RunGraph>(`${runPath(run)}/graph`);
export const fetchDetail = (run: string) => getJson<RunDetail>(runPath(run));
export const fetchEvents = (run: string) =>
  getJson<{ events: RunEvent[]; last_seq: number }>(`${runPath(run)}/events`);
export const fetchNode = (run: string, node: string) =>
  getJson<NodeVisits>(`${runPath(run)}/nodes/${encodeURIComponent(node)}`);
export const fetchNodeCalls = (run: string, node: string) =>
  getJson<NodeCalls>(`${runPath(run)}/nodes/${encodeURIComponent(node)}/calls`);
export const fetchRendered = (run: string) => getJson<Rendered>(`${runPath(run)}/rendered`);

/** Answer a gate through the dashboard's form endpoint (the same one the server-rendered form posts
 * to, with the page's CSRF token). Resolves to "" when recorded, else the reason the run gave. */
export async function answerGate(run: string, gate: OpenGate, csrf: string, answeredBy: string,
                                 fields: Record<string, string | string[]>): Promise<string> {
  const form = new URLSearchParams();
  form.set("csrf", csrf);
  form.set("run_id", run);
  form.set("gate", gate.gate);
  form.set("interaction_id", gate.interaction_id);
  form.set("return_to", "run");
  form.set("answered_by", answeredBy);
  for (const [name, value] of Object.entries(fields)) {
    for (const one of Array.isArray(value) ? value : [value]) form.append(`field.${name}`, one);
  }
  const response = await fetch("/approvals/answer", {
    method: "POST", body: form, credentials: "same-origin", redirect: "follow",
    headers: { Accept: "text/html" },
  });
  if (response.ok && new URL(response.url).searchParams.has("answered")) return "";
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const reason = page.querySelector(`article.gate[data-gate="${CSS.escape(gate.gate)}"] .error`)
    ?? page.querySelector(".error");
  return reason?.textContent?.trim() || `the answer was refused (${response.status})`;
}
