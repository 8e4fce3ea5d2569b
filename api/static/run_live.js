// Keeps a run page current while the run goes on.
//
// It follows the run's server-sent events (GET /api/runs/RUN/events/stream, authorised by the
// session cookie) and reloads the page when something happens, so the graph, nodes, gates and
// timeline are always rendered by the server in the same words as the CLI. Rendering the page
// asks Temporal for the whole run, so a busy run does not reload it at every event: at most once
// per `data-min-reload-ms` (a few seconds) since the page loaded, whatever happened meanwhile.
// While someone is filling in a form, it shows a note instead of reloading under their hands.
"use strict";

(() => {
  const script = document.currentScript;
  const url = script && script.dataset.stream;
  if (!url || !window.EventSource) {
    return;
  }
  let dirty = false;
  document.addEventListener("input", (event) => {
    if (event.target.closest("form.answer")) {
      dirty = true;
    }
  });

  const editing = () => {
    const active = document.activeElement;
    return dirty || (active && active.closest && active.closest("form.answer") !== null);
  };

  const loadedAt = Date.now();
  const minReload = Number(script.dataset.minReloadMs) || 5000;
  let timer = null;
  const refresh = () => {
    if (timer !== null) {
      return;  // a reload is already due: everything until then comes with it
    }
    const wait = Math.max(600, loadedAt + minReload - Date.now());
    timer = window.setTimeout(() => {
      timer = null;
      if (editing()) {
        document.getElementById("live-note").hidden = false;
      } else {
        window.location.reload();
      }
    }, wait);
  };

  const source = new EventSource(url, { withCredentials: true });
  source.onmessage = refresh;
  source.addEventListener("end", (event) => {
    source.close();
    const status = document.getElementById("run-status");
    try {
      const data = JSON.parse(event.data);
      if (status && data.status) {
        status.textContent = data.status;
        status.className = "badge status-" + data.status;
      }
    } catch (_) {
      // the reload below shows the final state anyway
    }
    refresh();
  });
  source.addEventListener("error", (event) => {
    if (event.data) {  // the server's error event; a dropped connection has no data and reconnects
      source.close();
      const note = document.getElementById("live-note");
      note.textContent = "Live updates stopped: " + JSON.parse(event.data).message;
      note.hidden = false;
    }
  });
})();
