// The editor's state and everything that changes it: the open file, its source text (the truth),
// the server's analysis of it (the Document the canvas and inspector show), undo/redo, saving with
// conflict detection, and external changes pushed over the WebSocket.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Selection } from "../graph/GraphCanvas";
import { EditorApi, EditorApiError } from "./api";
import { SourceHistory } from "./history";
import type { EditorDocument, FileEntry, Op, ServerPush } from "./types";

/** How long typing must pause before the source is re-analysed. */
export const TYPING_DEBOUNCE_MS = 300;

export interface Notice { kind: "info" | "error"; text: string }

/** A file on disk that no longer matches what this page started from. */
export interface DiskConflict {
  /** "save": a save was refused (409); "external": the file changed while the buffer had edits. */
  reason: "save" | "external";
  version: string | null;
  source: string | null;
}

export function useEditorSession(api: EditorApi) {
  const [files, setFiles] = useState<FileEntry[]>([]);
  const [dir, setDir] = useState("");
  const [path, setPath] = useState<string | null>(null);
  const [source, setSourceState] = useState("");
  const [doc, setDoc] = useState<EditorDocument | null>(null);
  const [lastParsed, setLastParsed] = useState<EditorDocument | null>(null);
  const [savedSource, setSavedSource] = useState("");
  const [selection, setSelection] = useState<Selection | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [conflict, setConflict] = useState<DiskConflict | null>(null);
  const [historyTick, setHistoryTick] = useState(0);
  const [busy, setBusy] = useState(false);

  const history = useRef(new SourceHistory(""));
  const sourceRef = useRef("");
  const pathRef = useRef<string | null>(null);
  const docRef = useRef<EditorDocument | null>(null);
  const savedRef = useRef("");
  const diskVersion = useRef<string | null>(null);
  const analyzeSeq = useRef(0);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const queue = useRef<Promise<unknown>>(Promise.resolve());

  const setSource = useCallback((text: string) => {
    sourceRef.current = text;
    setSourceState(text);
  }, []);
  const showDoc = useCallback((next: EditorDocument) => {
    docRef.current = next;
    setDoc(next);
    if (next.parse_ok) setLastParsed(next);
  }, []);
  const fail = useCallback((error: unknown) => {
    const text = error instanceof Error ? error.message : String(error);
    setNotice({ kind: "error", text });
  }, []);
  const markSaved = useCallback((text: string, version: string | null) => {
    savedRef.current = text;
    setSavedSource(text);
    diskVersion.current = version;
  }, []);
  const bumpHistory = useCallback(() => setHistoryTick((t) => t + 1), []);

  /** Run one state-changing step after the previous one (edits must apply to the latest text). */
  const enqueue = useCallback(<T,>(step: () => Promise<T>): Promise<T | undefined> => {
    const next = queue.current.then(step).catch((error: unknown) => { fail(error); return undefined; });
    queue.current = next;
    return next;
  }, [fail]);

  /** Analyse a text; stale answers (a newer text was sent since) are dropped. */
  const analyze = useCallback(async (text: string): Promise<EditorDocument | null> => {
    const seq = ++analyzeSeq.current;
    const result = await api.analyze(text, pathRef.current);
    if (seq !== analyzeSeq.current || text !== sourceRef.current) return null;
    showDoc(result);
    return result;
  }, [api, showDoc]);

  const refreshFiles = useCallback(async () => {
    try {
      const list = await api.files();
      setFiles(list.files);
      setDir(list.dir);
    } catch (error) { fail(error); }
  }, [api, fail]);

  /** Analyse typed text now instead of after the pause (before an edit, undo or save). */
  const flushTyping = useCallback(async () => {
    if (!typingTimer.current) return;
    clearTimeout(typingTimer.current);
    typingTimer.current = null;
    history.current.push(sourceRef.current);
    bumpHistory();
    await analyze(sourceRef.current);
  }, [analyze, bumpHistory]);

  const load = useCallback(async (nextPath: string, text: string, version: string) => {
    pathRef.current = nextPath;
    setPath(nextPath);
    setSource(text);
    markSaved(text, version);
    history.current.reset(text);
    bumpHistory();
    setConflict(null);
    setSelection(null);
    setLastParsed(null);
    docRef.current = null;
    setDoc(null);
    await analyze(text);
  }, [analyze, bumpHistory, markSaved, setSource]);

  const openFile = useCallback((nextPath: string) => enqueue(async () => {
    if (typingTimer.current) { clearTimeout(typingTimer.current); typingTimer.current = null; }
    const file = await api.file(nextPath);
    await load(file.path, file.source, file.version);
    setNotice(null);
  }), [api, enqueue, load]);

  const createFile = useCallback((nextPath: string) => enqueue(async () => {
    let name = nextPath.trim();
    if (!name) throw new Error("type a file name, e.g. flows/review.iter");
    if (!/\.(iter|bot)$/.test(name)) name = `${name}.iter`;
    const file = await api.create(name);
    await load(file.path, file.source, file.version);
    await refreshFiles();
    setNotice({ kind: "info", text: `created ${file.path}` });
  }), [api, enqueue, load, refreshFiles]);

  /** Send ops for the current text; the server's formatted text replaces it. */
  const applyOps = useCallback((ops: Op[]) => enqueue(async () => {
    if (ops.length === 0) return docRef.current;
    await flushTyping();
    const current = docRef.current;
    if (current && !current.parse_ok) {
      throw new Error("the source has parse errors: fix them in the source view before editing on the canvas");
    }
    setBusy(true);
    try {
      const next = await api.edit(sourceRef.current, ops, pathRef.current);
      analyzeSeq.current++; // an analysis still in flight is older than this text
      setSource(next.source);
      showDoc(next);
      history.current.push(next.source);
      bumpHistory();
      setNotice(null);
      return next;
    } finally {
      setBusy(false);
    }
  }), [api, bumpHistory, enqueue, flushTyping, setSource, showDoc]);

  /** The source view's text changed: show it now, analyse it after a pause. */
  const typeSource = useCallback((text: string) => {
    setSource(text);
    if (typingTimer.current) clearTimeout(typingTimer.current);
    typingTimer.current = setTimeout(() => {
      typingTimer.current = null;
      history.current.push(sourceRef.current);
      bumpHistory();
      analyze(sourceRef.current).catch(fail);
    }, TYPING_DEBOUNCE_MS);
  }, [analyze, bumpHistory, fail, setSource]);

  const stepHistory = useCallback((direction: "undo" | "redo") => enqueue(async () => {
    await flushTyping();
    const text = direction === "undo" ? history.current.undo() : history.current.redo();
    bumpHistory();
    if (text === null) return;
    setSource(text);
    await analyze(text);
  }), [analyze, bumpHistory, enqueue, flushTyping, setSource]);
  const undo = useCallback(() => stepHistory("undo"), [stepHistory]);
  const redo = useCallback(() => stepHistory("redo"), [stepHistory]);

  const write = useCallback(async (overwrite: boolean) => {
    const target = pathRef.current;
    if (!target) throw new Error("no file is open: open or create one in the file list first");
    const text = sourceRef.current;
    try {
      const saved = await api.save(target, text, overwrite ? null : diskVersion.current);
      markSaved(text, saved.version);
      setConflict(null);
      setNotice({ kind: "info", text: `saved ${saved.path}` });
      void refreshFiles();
    } catch (error) {
      if (error instanceof EditorApiError && error.status === 409) {
        // The version on disk, wherever the answer carries it (the API's error details, or the top level).
        const body = error.body as { error?: { details?: { version?: string } }; version?: string } | null;
        const version = body?.error?.details?.version ?? body?.version ?? null;
        setConflict({ reason: "save", version, source: null });
        setNotice({ kind: "error", text: `${target} changed on disk since you opened it: reload it, or overwrite it with your version` });
        return;
      }
      throw error;
    }
  }, [api, markSaved, refreshFiles]);

  const save = useCallback(() => enqueue(async () => { await flushTyping(); await write(false); }), [enqueue, flushTyping, write]);
  const overwrite = useCallback(() => enqueue(async () => { await flushTyping(); await write(true); }), [enqueue, flushTyping, write]);

  /** Take the file as it is on disk (after a conflict, or an external change). Undo can still go
   * back to the text it replaced. */
  const reloadFromDisk = useCallback(() => enqueue(async () => {
    const target = pathRef.current;
    if (!target) return;
    if (typingTimer.current) { clearTimeout(typingTimer.current); typingTimer.current = null; }
    const file = await api.file(target);
    setSource(file.source);
    markSaved(file.source, file.version);
    history.current.push(file.source);
    bumpHistory();
    setConflict(null);
    await analyze(file.source);
    setNotice({ kind: "info", text: `reloaded ${target} from disk` });
  }), [analyze, api, bumpHistory, enqueue, markSaved, setSource]);

  const keepMine = useCallback(() => setConflict(null), []);

  // Pushes from the server: a file changed on disk (not by our own save), or files came and went.
  const onPush = useCallback((message: ServerPush) => {
    if (message.type === "files_changed") { void refreshFiles(); return; }
    if (message.type !== "file_changed") return;
    if (message.path !== pathRef.current || message.version === diskVersion.current) return;
    const clean = sourceRef.current === savedRef.current && !typingTimer.current;
    if (message.source === sourceRef.current) { diskVersion.current = message.version; return; }
    if (clean) {
      void enqueue(async () => {
        setSource(message.source);
        markSaved(message.source, message.version);
        history.current.push(message.source);
        bumpHistory();
        await analyze(message.source);
        setNotice({ kind: "info", text: `${message.path} changed on disk: reloaded` });
      });
    } else {
      setConflict({ reason: "external", version: message.version, source: message.source });
    }
  }, [analyze, bumpHistory, enqueue, markSaved, refreshFiles, setSource]);

  const onPushRef = useRef(onPush);
  onPushRef.current = onPush;
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const connect = () => {
      socket = new WebSocket(api.socketUrl());
      socket.onopen = () => setConnected(true);
      socket.onmessage = (event) => {
        try { onPushRef.current(JSON.parse(String(event.data)) as ServerPush); } catch { /* not ours */ }
      };
      socket.onclose = () => {
        setConnected(false);
        if (!stopped) retry = setTimeout(connect, 1000);
      };
    };
    connect();
    return () => { stopped = true; if (retry) clearTimeout(retry); socket?.close(); };
  }, [api]);

  useEffect(() => { void refreshFiles(); }, [refreshFiles]);

  const run = useCallback((mode: "offline" | "real") => enqueue(async () => {
    await flushTyping();
    const target = pathRef.current;
    if (!target) throw new Error("open a file before running it");
    if (sourceRef.current !== savedRef.current) await write(false);
    const started = await api.run(target, mode);
    setNotice({ kind: "info", text: `started run ${started.run_id}` });
    window.open(started.console_url, "_blank");
    return started;
  }), [api, enqueue, flushTyping, write]);

  const dirty = source !== savedSource;
  const historyState = useMemo(() => ({ canUndo: history.current.canUndo, canRedo: history.current.canRedo }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [historyTick]);

  return {
    files, dir, path, source, doc, lastParsed, dirty, selection, setSelection, notice, setNotice, conflict, busy,
    connected, ...historyState,
    refreshFiles, openFile, createFile, applyOps, typeSource, undo, redo, save, overwrite, reloadFromDisk,
    keepMine, run, flushTyping,
  };
}

export type EditorSession = ReturnType<typeof useEditorSession>;
