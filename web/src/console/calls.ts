// What a visit was given and said, from the activities the run's history recorded for it
// (GET /api/runs/RUN/nodes/NODE/calls): pure mapping, so the panel only lays it out.
// Everything here stays text or data: the panel shows prompts in <pre> and values as JSON, never as HTML.

export interface ActivityCall {
  activity: string;
  summary: string;
  local: boolean;
  request: Record<string, unknown> | null;
  result: Record<string, unknown> | null;
  failure: string | null;
  attempts: number;
  truncated: boolean;
}

export interface VisitCalls { visit: number; calls: ActivityCall[]; calls_dropped: number }

export interface NodeCalls {
  node: string; execution: string; visits: VisitCalls[]; history_truncated: boolean; computed_in_workflow: boolean;
}

/** What the node was given on a visit: rendered prompts as text, values as data. */
export interface Given {
  prompts: [string, string][];
  values: unknown;
  valuesLabel: string;
}

export interface ToolUse { name: string; arguments: unknown; result: unknown; failure: string | null; local: boolean }

/** One model turn: what was sent (the prompt, or the tool results and repair requests), what came back. */
export interface ConversationTurn { turn: number; sent: string; answered: string; status: string; tools: ToolUse[] }

export interface VisitStory {
  given: Given | null;
  conversation: ConversationTurn[];
  /** Activities that are neither model turns nor a model's tool calls (shell, a tool node's call), in order. */
  others: ActivityCall[];
  truncated: boolean;
}

const MODEL_ACTIVITIES = new Set(["iterloop.llm_turn", "iterloop.delegate"]);
const TOOL_ACTIVITIES = new Set(["iterloop.tool_call", "iterloop.mcp_call"]);

const text = (value: unknown) => (typeof value === "string" ? value : "");
const asJson = (value: unknown) => JSON.stringify(value, null, 2);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function nonEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return true;
}

/** A message the workflow appended to the conversation (a tool result, a repair request), as one line of text. */
export function messageText(message: unknown): string {
  if (!isObject(message)) return asJson(message);
  const role = text(message.role);
  if (role === "tool") {
    const body = message.result !== null && message.result !== undefined ? asJson(message.result) : text(message.text);
    return `tool result${message.tool_name ? ` (${text(message.tool_name)})` : ""}${message.is_error ? " [error]" : ""}: ${body}`;
  }
  return `${role || "message"}: ${text(message.text)}`;
}

function givenOf(call: ActivityCall): Given | null {
  const request = call.request;
  if (!request) return null;
  if (MODEL_ACTIVITIES.has(call.activity)) {
    const prompts: [string, string][] = [];
    if (text(request.system)) prompts.push(["system", text(request.system)]);
    if (text(request.user)) prompts.push(["user", text(request.user)]);
    return { prompts, values: request.input ?? {}, valuesLabel: "input" };
  }
  if (call.activity === "iterloop.shell_exec") {
    return { prompts: [["command", text(request.command)]], values: request.values ?? [], valuesLabel: "values" };
  }
  return { prompts: [], values: request.arguments ?? request, valuesLabel: "arguments" };
}

function toolUse(call: ActivityCall): ToolUse {
  const request = call.request ?? {};
  const result = call.result && "output" in call.result ? call.result.output : call.result;
  return { name: text(request.tool) || call.summary.split(" · ").slice(1).join(" · "), arguments: request.arguments ?? null,
           result, failure: call.failure, local: call.local };
}

/** The visit's calls as "Given" (its first call's request) and "Conversation" (model turns, each
 * with the tool calls the model asked for and their results). */
export function visitStory(visit: VisitCalls | undefined): VisitStory {
  const story: VisitStory = { given: null, conversation: [], others: [], truncated: false };
  if (!visit) return story;
  let current: ConversationTurn | null = null;
  for (const call of visit.calls) {
    story.truncated = story.truncated || call.truncated;
    if (MODEL_ACTIVITIES.has(call.activity)) {
      const request = call.request ?? {};
      const turnNumber = typeof request.turn === "number" ? request.turn : story.conversation.length + 1;
      story.given = story.given ?? givenOf(call);
      const added = Array.isArray(request.new_messages) ? request.new_messages.map(messageText) : [];
      const sent = [turnNumber === 1 || call.activity === "iterloop.delegate" ? text(request.user) : "", ...added]
        .filter((line) => line !== "").join("\n\n");
      const result = call.result ?? {};
      const answer = text(result.text) || (nonEmpty(result.output) ? asJson(result.output) : "");
      current = {
        turn: turnNumber, sent, status: call.failure ? "failed" : text(result.status),
        answered: call.failure ? `failed: ${call.failure}` : answer, tools: [],
      };
      story.conversation.push(current);
    } else if (TOOL_ACTIVITIES.has(call.activity) && current) {
      current.tools.push(toolUse(call));
    } else {
      story.given = story.given ?? givenOf(call);
      story.others.push(call);
    }
  }
  return story;
}
