// The run console: the run's graph (the shared GraphCanvas, laid out by ELK) coloured by node state,
// the path taken, visit and loop counts, a node's details on click, the open gate's form, the
// rendered report, and a scrubber that replays the run's events. It follows the run live through
// the API's server-sent events; the server-rendered details below it stay as they were rendered.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { GraphCanvas } from "../graph/GraphCanvas";
import { badges, describe, highlighted, mergeEvents, stateAt } from "./events";
import type { Graph, RunEvent } from "./events";
import { fetchDetail, fetchEvents, fetchGraph } from "./api";
import type { OpenGate } from "./api";
import { GatePanel, NodePanel, ReportPanel } from "./panels";

export interface ConsoleProps {
  run: string;
  csrf: string;
  canWrite: boolean;
  answerer: string;
  stream: string;
  initialStatus: string;
}

const FINAL = new Set(["finished", "failed", "cancelled", "budget_exceeded"]);

/** The server-rendered status badge and notes outside the console follow what the console knows. */
function showStatus(status: string) {
  const badge = document.getElementById("run-status");
  if (badge && status && badge.textContent !== status) {
    badge.textContent = status;
    badge.className = `badge status-${status}`;
  }
}

function showNote(text: string) {
  const note = document.getElementById("live-note");
  if (note) {
    note.textContent = text;
    note.hidden = false;
  }
}

export function Console(props: ConsoleProps) {
  const { run } = props;
  const [graph, setGraph] = useState<Graph | null>(null);
  const [problem, setProblem] = useState("");
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [status, setStatus] = useState(props.initialStatus);
  const [gates, setGates] = useState<OpenGate[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  /** null: follow the run (the latest event); a number: the scrubber's position (events shown). */
  const [position, setPosition] = useState<number | null>(null);
  const lastSeq = useRef(0);

  const refreshDetail = useCallback(() => {
    fetchDetail(run).then((detail) => {
      setGates(detail.open_gates);
      setStatus(detail.status);
    }).catch((error: unknown) => setProblem(String(error instanceof Error ? error.message : error)));
  }, [run]);

  useEffect(() => {
    let cancelled = false;
    Promise.all([fetchGraph(run), fetchEvents(run)]).then(([g, list]) => {
      if (cancelled) return;
      if (!g.graph) {
        setProblem("The run's compiled workflow could not be read from its history.");
        return;
      }
      setGraph({ nodes: g.graph.nodes, edges: g.graph.edges });
      setEvents((known) => mergeEvents(list.events, known));
      lastSeq.current = Math.max(lastSeq.current, list.last_seq);
    }).catch((error: unknown) => {
      if (!cancelled) setProblem(String(error instanceof Error ? error.message : error));
    });
    refreshDetail();
    return () => { cancelled = true; };
  }, [run, refreshDetail]);

  // Live: the API's event stream from the last event known, until its `end` (not when the status
  // turns final: the status may arrive before the last events do); the gate list when a gate opens
  // or closes.
  const endedAtLoad = useRef(FINAL.has(props.initialStatus));
  useEffect(() => {
    if (!graph || endedAtLoad.current || !window.EventSource) return;
    const source = new EventSource(`${props.stream}?after_seq=${lastSeq.current}`, { withCredentials: true });
    source.onmessage = (message) => {
      const event = JSON.parse(message.data as string) as RunEvent;
      lastSeq.current = Math.max(lastSeq.current, event.seq);
      setEvents((known) => mergeEvents(known, [event]));
      if (["human_input_requested", "gate_answered", "gate_timed_out", "node_failed", "run_rewound"].includes(event.type)) {
        refreshDetail();
      }
    };
    source.addEventListener("end", (message) => {
      source.close();
      try {
        const end = JSON.parse((message as MessageEvent).data as string) as { status?: string };
        if (end.status) setStatus(end.status);
      } catch { /* the detail below says it too */ }
      refreshDetail();
      fetchEvents(run).then((list) => setEvents((known) => mergeEvents(known, list.events))).catch(() => undefined);
      showNote("The run ended. Reload the page for its full server-rendered details below.");
    });
    source.addEventListener("error", (message) => {
      const data = (message as MessageEvent).data as string | undefined;
      if (data) { // the server's error event; a dropped connection has no data and reconnects by itself
        source.close();
        showNote(`Live updates stopped: ${(JSON.parse(data) as { message?: string }).message ?? data}`);
      }
    });
    return () => source.close();
    // The stream starts once the graph is loaded and runs until the run ends.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [graph]);

  useEffect(() => showStatus(status), [status]);

  const shown = position === null ? events.length : Math.min(position, events.length);
  const view = useMemo(() => (graph ? stateAt(graph, events, shown) : null), [graph, events, shown]);
  const marks = useMemo(() => (graph && view ? badges(graph, view) : {}), [graph, view]);
  const path = useMemo(() => (view ? highlighted(view) : new Set<string>()), [view]);
  const live = position === null;
  // The selected node's details are fetched again only when one of its own events arrives.
  const selectedEvents = useMemo(() => (selected ? events.filter((e) => e.node === selected).length : 0),
    [events, selected]);

  if (problem && !graph) return <p className="error console-problem" role="alert">{problem}</p>;
  if (!graph || !view) return <p className="muted">Loading the run console…</p>;

  return (
    <div className="rc" data-testid="run-console" data-status={status}>
      <div className="rc-bar">
        <span className={`badge status-${status}`} data-testid="console-status">{status}</span>
        <label className="rc-scrub">
          <span className="rc-scrub-label">History</span>
          <input type="range" min={0} max={events.length} value={shown} data-testid="scrubber"
                 aria-label="replay the run's events" aria-valuetext={describe(events[shown - 1])}
                 onChange={(e) => {
                   const k = Number(e.target.value);
                   setPosition(k >= events.length ? null : k);
                 }} />
        </label>
        <span className="rc-caption" data-testid="scrubber-caption">
          {live ? "live · " : `event ${shown} of ${events.length} · `}{describe(events[shown - 1])}
        </span>
        {live ? null : <button type="button" onClick={() => setPosition(null)} data-testid="scrubber-live">Back to live</button>}
      </div>
      <div className="rc-main">
        <div className="rc-graph">
          <GraphCanvas nodes={graph.nodes} edges={graph.edges} states={view.states} highlightEdges={path}
                       badges={marks} selected={selected} onSelectNode={setSelected} />
        </div>
        <aside className="rc-side">
          {gates.length && live ? gates.map((gate) => (
            <GatePanel key={gate.interaction_id} run={run} gate={gate} csrf={props.csrf} canWrite={props.canWrite}
                       answerer={props.answerer} onAnswered={refreshDetail} />
          )) : null}
          {selected ? <NodePanel run={run} node={selected} state={view.states[selected] ?? "pending"}
                                 upToSeq={live ? null : view.seq} refreshKey={selectedEvents}
                                 onClose={() => setSelected(null)} />
            : <p className="muted rc-hint">Click a node for its inputs, outputs, model turns, tool calls and cost.</p>}
        </aside>
      </div>
      <ReportPanel run={run} finished={FINAL.has(status)} refreshKey={FINAL.has(status) ? events.length : 0} />
    </div>
  );
}
