// Small behaviours of every dashboard page (no framework, no build step).
"use strict";

// Forms with data-confirm ask before they submit (e.g. cancelling a run).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
