// The canvas in jsdom: what the pages and the browser tests find on it (data-testid, data-kind,
// states, badges, markers, edge labels). jsdom measures nothing, so sizes come from nodeLooks.
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { GraphCanvas } from "./GraphCanvas";
import type { GraphEdge, GraphNode } from "./types";

beforeAll(() => {
  // What @xyflow/react needs from a browser that jsdom lacks.
  globalThis.ResizeObserver ??= class { observe() {} unobserve() {} disconnect() {} } as unknown as typeof ResizeObserver;
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
});

const nodes: GraphNode[] = [{ id: "writer", kind: "agent" }, { id: "critic", kind: "judge" }, { id: "done", kind: "done" }];
const edges: GraphEdge[] = [
  { id: "e0", index: 0, from: "writer", to: "critic" },
  { id: "e1", index: 1, from: "critic", to: "done", when: "approved" },
];

let container: HTMLDivElement | null = null;
afterEach(() => { container?.remove(); container = null; });

async function render(element: React.ReactElement): Promise<HTMLDivElement> {
  container = document.createElement("div");
  container.style.width = "800px";
  container.style.height = "600px";
  document.body.appendChild(container);
  const root = createRoot(container);
  await act(async () => { root.render(element); });
  // The ELK layout is asynchronous: wait until the nodes are placed.
  for (let i = 0; i < 100 && !container.querySelector('[data-testid="node-writer"]'); i++) {
    await act(async () => { await new Promise((r) => setTimeout(r, 20)); });
  }
  return container;
}

describe("GraphCanvas", () => {
  it("draws every node with its test id, kind, state, badge and diagnostic marker", async () => {
    const view = await render(<GraphCanvas nodes={nodes} edges={edges} states={{ writer: "done", critic: "running" }}
                                           badges={{ writer: "×2" }} markers={{ critic: "error" }} />);
    const ids = [...view.querySelectorAll("[data-kind]")].map((el) => el.getAttribute("data-testid"));
    expect(ids.sort()).toEqual(["node-critic", "node-done", "node-writer"]);
    const writer = view.querySelector('[data-testid="node-writer"]')!;
    expect(writer.getAttribute("data-kind")).toBe("agent");
    expect(writer.getAttribute("data-state")).toBe("done");
    expect(view.querySelector('[data-testid="badge-writer"]')?.textContent).toBe("×2");
    expect(view.querySelector('[data-testid="marker-critic"]')?.getAttribute("data-severity")).toBe("error");
    expect(view.querySelector('[data-testid="node-done"]')?.getAttribute("data-shape")).toBe("terminal");
  });

  it("marks the selected node", async () => {
    const view = await render(<GraphCanvas nodes={nodes} edges={edges} selected="critic" />);
    expect(view.querySelector('[data-testid="node-critic"]')?.getAttribute("data-selected")).toBe("true");
    expect(view.querySelector('[data-testid="node-writer"]')?.getAttribute("data-selected")).toBe("false");
  });
});
