// HTTP calls to the editor's server. Every state-changing request carries X-Iterloop-Editor: 1 (the
// server refuses writes without it, so another web page cannot drive a user's local editor).
import type { EditorDocument, FileContent, FileList, Op, RunStarted } from "./types";

/** A refused request, with the server's explanation (its `detail`) and status. */
export class EditorApiError extends Error {
  constructor(message: string, readonly status: number, readonly body: unknown) {
    super(message);
  }
}

/** The server's explanation of a refusal, readable whatever shape FastAPI gave it. */
export function describeError(status: number, body: unknown): string {
  const detail = (body && typeof body === "object" && "detail" in body) ? (body as { detail: unknown }).detail : body;
  if (typeof detail === "string") return detail;
  if (detail && typeof detail === "object" && "message" in detail && typeof (detail as { message: unknown }).message === "string") {
    return (detail as { message: string }).message;
  }
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && typeof d === "object" && "msg" in d) ? String((d as { msg: unknown }).msg) : JSON.stringify(d)).join("; ");
  }
  return `the server answered ${status}${detail ? `: ${JSON.stringify(detail)}` : ""}`;
}

export class EditorApi {
  constructor(readonly base: string = "/editor") {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method !== "GET") headers["X-Iterloop-Editor"] = "1";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.base}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    if (!response.ok) throw new EditorApiError(describeError(response.status, parsed), response.status, parsed);
    return parsed as T;
  }

  files(): Promise<FileList> { return this.call("GET", "/api/files"); }
  file(path: string): Promise<FileContent> { return this.call("GET", `/api/file?path=${encodeURIComponent(path)}`); }
  save(path: string, source: string, baseVersion?: string | null): Promise<{ path: string; version: string }> {
    return this.call("PUT", "/api/file", baseVersion ? { path, source, base_version: baseVersion } : { path, source });
  }
  create(path: string): Promise<FileContent> { return this.call("POST", "/api/file/new", { path }); }
  analyze(source: string, path?: string | null): Promise<EditorDocument> {
    return this.call("POST", "/api/analyze", { source, path: path ?? null });
  }
  edit(source: string, ops: Op[], path?: string | null): Promise<EditorDocument> {
    return this.call("POST", "/api/edit", { source, path: path ?? null, ops });
  }
  run(path: string, mode: "offline" | "real", vars: Record<string, unknown> = {}): Promise<RunStarted> {
    return this.call("POST", "/api/run", { path, mode, vars });
  }
  /** The WebSocket URL for file-change pushes, next to the page. */
  socketUrl(): string {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.base}/ws`;
  }
}
