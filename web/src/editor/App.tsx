// The editor page: file list and node library on the left, the canvas and its diagnostics in the
// middle, the source view beside it, the inspector on the right.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { DragEvent } from "react";
import { GraphCanvas, NODE_KIND_MIME } from "../graph/GraphCanvas";
import type { Selection } from "../graph/GraphCanvas";
import { LIBRARY_KINDS, nodeLook } from "../graph/nodeLooks";
import type { Diagnostic } from "../graph/types";
import { EditorApi } from "./api";
import { Inspector } from "./Inspector";
import { addedEdge, canvasGraph, connectOps, deleteOps, diagnosticMarkers, dropOps, isTerminal, uniqueNodeName } from "./mapping";
import { SourceView } from "./SourceView";
import type { SourceViewHandle } from "./SourceView";
import type { EditorDocument } from "./types";
import { useEditorSession } from "./useEditorSession";

const api = new EditorApi("/editor");

export function App() {
  const session = useEditorSession(api);
  const { doc, path, selection, setSelection, applyOps } = session;
  const graph = useMemo(() => canvasGraph(doc, session.lastParsed), [doc, session.lastParsed]);
  const markers = useMemo(() => diagnosticMarkers(doc?.diagnostics ?? []), [doc]);
  const errorLines = useMemo(() => new Set((doc?.diagnostics ?? []).filter((d) => d.line).map((d) => d.line as number)), [doc]);
  const [layoutKey, setLayoutKey] = useState(0);
  const [focus, setFocus] = useState<{ id: string | null; key: number }>({ id: null, key: 0 });
  const [search, setSearch] = useState("");
  const [runMode, setRunMode] = useState<"offline" | "real">("offline");
  const searchBox = useRef<HTMLInputElement>(null);
  const sourceView = useRef<SourceViewHandle>(null);
  const editable = Boolean(path) && !graph.stale;

  const focusNode = useCallback((id: string) => {
    setSelection({ type: "node", id });
    setFocus((f) => ({ id, key: f.key + 1 }));
  }, [setSelection]);

  const onDropNode = useCallback(async (kind: string) => {
    const current = doc;
    if (isTerminal(kind)) {
      // done and fail are built into every workflow: the canvas already has them.
      if (current?.nodes.some((n) => n.id === kind)) focusNode(kind);
      session.setNotice({ kind: "info", text: `'${kind}' is built in: connect edges to the ${kind} node on the canvas` });
      return null;
    }
    const name = uniqueNodeName(kind, (current?.nodes ?? []).map((n) => n.id));
    const next = await applyOps(dropOps(current, kind, name, path)) as EditorDocument | undefined;
    if (!next) return null;
    setSelection({ type: "node", id: name });
    return name;
  }, [applyOps, doc, focusNode, path, session, setSelection]);

  const onConnect = useCallback(async (from: string, to: string) => {
    const next = await applyOps(connectOps(from, to)) as EditorDocument | undefined;
    const edge = next ? addedEdge(next, from, to) : undefined;
    if (edge) setSelection({ type: "edge", id: edge.id });
  }, [applyOps, setSelection]);

  const onDelete = useCallback((nodeIds: string[], edgeIds: string[]) => {
    if (!doc) return;
    const ops = deleteOps(doc, nodeIds, edgeIds);
    if (ops.length) void applyOps(ops).then(() => setSelection(null));
  }, [applyOps, doc, setSelection]);

  const selectDiagnostic = useCallback((d: Diagnostic) => {
    if (d.node) focusNode(d.node);
    else if (d.edge) setSelection({ type: "edge", id: d.edge });
    if (d.line) sourceView.current?.revealLine(d.line, d.column);
  }, [focusNode, setSelection]);

  const runSearch = useCallback((text: string) => {
    const needle = text.trim().toLowerCase();
    if (!needle) return;
    const hit = graph.nodes.find((n) => n.id.toLowerCase() === needle) ?? graph.nodes.find((n) => n.id.toLowerCase().includes(needle));
    if (hit) focusNode(hit.id);
    else session.setNotice({ kind: "error", text: `no node matches '${text}'` });
  }, [focusNode, graph.nodes, session]);

  // Keyboard shortcuts for the whole page. Delete/Backspace on the canvas are the canvas's own.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const mod = event.ctrlKey || event.metaKey;
      if (!mod) return;
      const key = event.key.toLowerCase();
      const inField = event.target instanceof HTMLElement && event.target.closest(".ed-inspector input, .ed-inspector textarea");
      if (key === "s") { event.preventDefault(); void session.save(); }
      else if (key === "f") { event.preventDefault(); searchBox.current?.focus(); searchBox.current?.select(); }
      else if (inField) return; // an inspector box keeps its own text undo
      else if (key === "z" && event.shiftKey) { event.preventDefault(); void session.redo(); }
      else if (key === "z") { event.preventDefault(); void session.undo(); }
      else if (key === "y") { event.preventDefault(); void session.redo(); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [session]);

  // Another file: forget the dragged positions of the last one and fit the new graph.
  useEffect(() => { setLayoutKey((k) => k + 1); }, [path]);

  useEffect(() => {
    document.title = `${session.dirty ? "● " : ""}${path ?? "iterloop editor"} — iterloop editor`;
  }, [path, session.dirty]);

  const selected: Selection | null = selection;
  const diagnostics = doc?.diagnostics ?? [];
  return (
    <div className="ed-app" data-testid="editor" data-busy={session.busy ? "true" : "false"}
         data-connected={session.connected ? "true" : "false"}>
      <header className="ed-toolbar">
        <strong className="ed-brand">iterloop editor</strong>
        <span className="ed-filename" data-testid="current-file">{path ?? "no file open"}</span>
        {session.dirty ? <span className="ed-dirty" data-testid="dirty-marker" title="unsaved changes">● unsaved</span> : null}
        <button type="button" data-testid="save" onClick={() => void session.save()} disabled={!path} title="Ctrl/Cmd+S">Save</button>
        <button type="button" data-testid="undo" onClick={() => void session.undo()} disabled={!session.canUndo} title="Ctrl/Cmd+Z">Undo</button>
        <button type="button" data-testid="redo" onClick={() => void session.redo()} disabled={!session.canRedo} title="Ctrl/Cmd+Shift+Z, Ctrl+Y">Redo</button>
        <button type="button" data-testid="auto-layout" onClick={() => setLayoutKey((k) => k + 1)}>Auto-layout</button>
        <input ref={searchBox} type="search" placeholder="Find node (Ctrl+F)" value={search} data-testid="search" list="ed-node-names"
               onChange={(e) => { setSearch(e.target.value); if (graph.nodes.some((n) => n.id === e.target.value)) focusNode(e.target.value); }}
               onKeyDown={(e) => { if (e.key === "Enter") runSearch(search); }} />
        <datalist id="ed-node-names">{graph.nodes.map((n) => <option key={n.id} value={n.id} />)}</datalist>
        <span className="ed-spacer" />
        <select value={runMode} onChange={(e) => setRunMode(e.target.value as "offline" | "real")} data-testid="run-mode">
          <option value="offline">offline</option>
          <option value="real">real</option>
        </select>
        <button type="button" data-testid="run" disabled={!path} onClick={() => void session.run(runMode)}>Run ▶</button>
      </header>
      {session.conflict ? (
        <div className="ed-banner" data-testid="conflict-banner" role="alert">
          {session.conflict.reason === "save"
            ? <span>{path} changed on disk since you opened it; your save was refused so nothing was lost.</span>
            : <span>{path} changed on disk, and you have unsaved edits here.</span>}
          <button type="button" data-testid="reload" onClick={() => void session.reloadFromDisk()}>Reload from disk</button>
          {session.conflict.reason === "save"
            ? <button type="button" data-testid="overwrite" onClick={() => void session.overwrite()}>Overwrite with mine</button>
            : <button type="button" data-testid="keep-mine" onClick={session.keepMine}>Keep my version</button>}
        </div>
      ) : null}
      {session.notice ? (
        <div className={`ed-notice ${session.notice.kind}`} data-testid="notice" role="status">
          {session.notice.text}
          <button type="button" className="ed-link" onClick={() => session.setNotice(null)}>✕</button>
        </div>
      ) : null}
      <div className="ed-main">
        <aside className="ed-left">
          <FileBrowser session={session} />
          <NodeLibrary />
        </aside>
        <section className="ed-center">
          <div className="ed-canvas-wrap" data-stale={graph.stale ? "true" : "false"}>
            {graph.stale ? <div className="ed-stale" data-testid="stale">The source does not parse: the canvas shows the last
              version that did. Fix the source to edit on the canvas.</div> : null}
            {!path ? <div className="ed-empty">Open a file on the left, or create one.</div> : null}
            <GraphCanvas nodes={graph.nodes} edges={graph.edges} markers={markers} selected={selected}
                         onSelectNode={(id) => setSelection(id ? { type: "node", id } : null)}
                         onSelectEdge={(id) => setSelection(id ? { type: "edge", id } : null)}
                         editable={editable} onDropNode={onDropNode} onConnect={(a, b) => void onConnect(a, b)}
                         onDeleteNodes={(ids) => onDelete(ids, [])} onDeleteEdges={(ids) => onDelete([], ids)}
                         layoutKey={layoutKey} focusNode={focus.id} focusKey={focus.key} minimap />
          </div>
          <Diagnostics diagnostics={diagnostics} onSelect={selectDiagnostic} />
        </section>
        <section className="ed-source-pane">
          <SourceView ref={sourceView} source={session.source} onChange={session.typeSource} errorLines={errorLines} />
        </section>
        <Inspector doc={doc} selection={selected} onOps={applyOps} onSelect={setSelection}
                   onError={(text) => session.setNotice({ kind: "error", text })} />
      </div>
    </div>
  );
}

function FileBrowser({ session }: { session: ReturnType<typeof useEditorSession> }) {
  const [name, setName] = useState("");
  return (
    <section className="ed-files" data-testid="files">
      <h2 title={session.dir}>Files</h2>
      <ul>
        {session.files.map((f) => (
          <li key={f.path}>
            <button type="button" className={f.path === session.path ? "active" : ""} data-testid={`file-${f.path}`}
                    onClick={() => {
                      if (f.path === session.path) return;
                      if (session.dirty && !window.confirm(`Discard unsaved changes to ${session.path}?`)) return;
                      void session.openFile(f.path);
                    }}>
              {f.path}{f.path === session.path && session.dirty ? " ●" : ""}
            </button>
          </li>
        ))}
        {session.files.length === 0 ? <li className="ed-muted">no .iter files yet</li> : null}
      </ul>
      <form className="ed-add" onSubmit={(e) => { e.preventDefault(); void session.createFile(name).then(() => setName("")); }}>
        <input placeholder="new-file.iter" value={name} onChange={(e) => setName(e.target.value)} data-testid="new-file-name" />
        <button type="submit" data-testid="new-file">New</button>
      </form>
    </section>
  );
}

function NodeLibrary() {
  const onDragStart = (event: DragEvent, kind: string) => {
    event.dataTransfer.setData(NODE_KIND_MIME, kind);
    event.dataTransfer.setData("text/plain", kind);
    event.dataTransfer.effectAllowed = "copy";
  };
  return (
    <section className="ed-library" data-testid="library">
      <h2>Nodes</h2>
      <p className="ed-muted">Drag onto the canvas.</p>
      <ul>
        {LIBRARY_KINDS.map((kind) => {
          const look = nodeLook(kind);
          return (
            <li key={kind} draggable data-testid={`library-${kind}`} title={look.description}
                onDragStart={(e) => onDragStart(e, kind)}
                style={{ borderColor: look.color, background: look.background }}>
              <span style={{ color: look.color }}>{look.icon}</span> {kind}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function Diagnostics({ diagnostics, onSelect }: { diagnostics: Diagnostic[]; onSelect: (d: Diagnostic) => void }) {
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  return (
    <section className="ed-diagnostics" data-testid="diagnostics">
      <h2>Problems <span data-testid="diagnostic-count">{errors} errors, {diagnostics.length - errors} warnings</span></h2>
      <ul>
        {diagnostics.map((d, i) => (
          <li key={i} className={d.severity} data-testid="diagnostic" data-code={d.code} data-node={d.node ?? undefined}
              data-edge={d.edge ?? undefined} onClick={() => onSelect(d)}>
            <span className="ed-code">{d.code}</span>
            {d.line ? <span className="ed-pos">{d.line}:{d.column ?? 1}</span> : null}
            <span className="ed-message">{d.message}</span>
            {d.hint ? <span className="ed-hint">{d.hint}</span> : null}
          </li>
        ))}
        {diagnostics.length === 0 ? <li className="ed-ok">No problems.</li> : null}
      </ul>
    </section>
  );
}
