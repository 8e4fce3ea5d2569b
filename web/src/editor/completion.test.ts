import { describe, expect, it } from "vitest";
import { applyCompletion, templateCompletion } from "./completion";

const refs = ["vars.goal", "vars.page", "outputs.critic.approved", "outputs.writer", "loop.refine.iteration", "run.id"];

describe("{{…}} completion from the Document's refs", () => {
  it("offers every ref right after {{", () => {
    const text = "Goal: {{";
    expect(templateCompletion(text, text.length, refs)?.items).toEqual(refs);
  });

  it("narrows to refs starting with what was typed, then those containing it", () => {
    const text = "Goal: {{ vars.g";
    const found = templateCompletion(text, text.length, refs);
    expect(found?.prefix).toBe("vars.g");
    expect(found?.items).toEqual(["vars.goal"]);
    const inner = "{{refine";
    expect(templateCompletion(inner, inner.length, refs)?.items).toEqual(["loop.refine.iteration"]);
  });

  it("offers nothing outside an open {{ or when nothing matches", () => {
    expect(templateCompletion("plain text", 10, refs)).toBeNull();
    expect(templateCompletion("{{vars.goal}} and", 17, refs)).toBeNull();
    expect(templateCompletion("{{nothing", 9, refs)).toBeNull();
  });

  it("writes the ref out and closes the braces once", () => {
    const text = "Goal: {{ vars.g";
    const found = templateCompletion(text, text.length, refs)!;
    expect(applyCompletion(text, found, "vars.goal")).toEqual({ text: "Goal: {{ vars.goal}}", caret: 20 });
  });

  it("keeps braces already typed after the caret and replaces the rest of the word", () => {
    const text = "A {{out}} B";
    const found = templateCompletion(text, 6, refs)!;
    expect(found.items).toEqual(["outputs.critic.approved", "outputs.writer"]);
    expect(applyCompletion(text, found, "outputs.writer")).toEqual({ text: "A {{outputs.writer}} B", caret: 20 });
    const middle = "{{vars.pxx}}";
    const at = templateCompletion(middle, 7, refs)!;
    expect(applyCompletion(middle, at, "vars.page").text).toBe("{{vars.page}}");
  });
});
