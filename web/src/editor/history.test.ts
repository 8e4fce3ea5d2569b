import { describe, expect, it } from "vitest";
import { SourceHistory } from "./history";

describe("SourceHistory", () => {
  it("undoes and redoes whole source texts in order", () => {
    const h = new SourceHistory("a");
    h.push("ab");
    h.push("abc");
    expect(h.undo()).toBe("ab");
    expect(h.undo()).toBe("a");
    expect(h.undo()).toBeNull();
    expect(h.redo()).toBe("ab");
    expect(h.redo()).toBe("abc");
    expect(h.redo()).toBeNull();
  });

  it("a new edit after an undo drops the redo branch", () => {
    const h = new SourceHistory("a");
    h.push("ab");
    h.undo();
    h.push("ax");
    expect(h.canRedo).toBe(false);
    expect(h.undo()).toBe("a");
    expect(h.redo()).toBe("ax");
  });

  it("pushing the current text again records no step", () => {
    const h = new SourceHistory("a");
    h.push("a");
    expect(h.size).toBe(1);
    expect(h.canUndo).toBe(false);
  });

  it("keeps at most its limit of steps, forgetting the oldest", () => {
    const h = new SourceHistory("0", 3);
    for (const text of ["1", "2", "3", "4"]) h.push(text);
    expect(h.size).toBe(3);
    expect(h.undo()).toBe("3");
    expect(h.undo()).toBe("2");
    expect(h.undo()).toBeNull();
  });

  it("reset starts over from a reloaded text", () => {
    const h = new SourceHistory("a");
    h.push("b");
    h.reset("disk");
    expect(h.current).toBe("disk");
    expect(h.canUndo).toBe(false);
  });
});
