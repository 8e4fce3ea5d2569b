import { describe, expect, it } from "vitest";
import { messageText, visitStory } from "./calls";
import type { ActivityCall, VisitCalls } from "./calls";

const call = (activity: string, request: Record<string, unknown> | null, result: Record<string, unknown> | null,
              extra: Partial<ActivityCall> = {}): ActivityCall => ({
  activity, summary: "", local: false, request, result, failure: null, attempts: 1, truncated: false, ...extra,
});

const TOOL_LOOP: VisitCalls = {
  visit: 2, calls_dropped: 0, calls: [
    call("iterloop.llm_turn", { turn: 1, system: "You size tests.", user: "Size <script>x</script>", input: { mde: 0.05 },
                                new_messages: [] },
         { status: "tool_calls", text: "", output: {}, tool_calls: [{ id: "c1", name: "calculate_sample_size" }] }),
    call("iterloop.tool_call", { tool: "calculate_sample_size", arguments: { mde: 0.05 } }, { output: { n_per_arm: 100 } }),
    call("iterloop.llm_turn", { turn: 2, system: "You size tests.", user: "Size <script>x</script>", input: { mde: 0.05 },
                                new_messages: [{ role: "tool", tool_name: "calculate_sample_size", result: { n_per_arm: 100 } }] },
         { status: "final", text: "", output: { n: 100 } }, { truncated: true }),
  ],
};

describe("visitStory", () => {
  it("gives the first turn's rendered prompts and input values", () => {
    const story = visitStory(TOOL_LOOP);
    expect(story.given?.prompts).toEqual([["system", "You size tests."], ["user", "Size <script>x</script>"]]);
    expect(story.given?.values).toEqual({ mde: 0.05 });
    expect(story.given?.valuesLabel).toBe("input");
  });

  it("makes one conversation turn per model call, with the tool calls the model asked for", () => {
    const [first, second] = visitStory(TOOL_LOOP).conversation;
    expect(first.sent).toBe("Size <script>x</script>");
    expect(first.status).toBe("tool_calls");
    expect(first.tools).toEqual([{ name: "calculate_sample_size", arguments: { mde: 0.05 }, result: { n_per_arm: 100 },
                                   failure: null, local: false }]);
    expect(second.sent).toBe('tool result (calculate_sample_size): {\n  "n_per_arm": 100\n}');
    expect(second.answered).toBe('{\n  "n": 100\n}');
  });

  it("says when a text was cut", () => {
    expect(visitStory(TOOL_LOOP).truncated).toBe(true);
  });

  it("gives a shell step's command and values, and lists it as a call", () => {
    const story = visitStory({ visit: 1, calls_dropped: 0, calls: [
      call("iterloop.shell_exec", { command: 'echo "${ITERLOOP_VALUE_1}"', values: [{ env: "ITERLOOP_VALUE_1", value: "hi" }] },
           { exit_code: 0, stdout: "hi\n" })] });
    expect(story.given?.prompts).toEqual([["command", 'echo "${ITERLOOP_VALUE_1}"']]);
    expect(story.conversation).toEqual([]);
    expect(story.others.map((c) => c.activity)).toEqual(["iterloop.shell_exec"]);
  });

  it("shows a failed turn's reason as its answer", () => {
    const story = visitStory({ visit: 1, calls_dropped: 0, calls: [
      call("iterloop.llm_turn", { turn: 1, user: "hi" }, null, { failure: "rate limited" })] });
    expect(story.conversation[0].answered).toBe("failed: rate limited");
  });

  it("has nothing for a visit without calls", () => {
    expect(visitStory(undefined)).toEqual({ given: null, conversation: [], others: [], truncated: false });
  });
});

describe("messageText", () => {
  it("labels an error result and falls back to its text", () => {
    expect(messageText({ role: "tool", tool_name: "x", is_error: true, result: null, text: "denied" }))
      .toBe("tool result (x) [error]: denied");
    expect(messageText({ role: "user", text: "fix the schema" })).toBe("user: fix the schema");
  });
});
