// The run console's entry: the dashboard's run page (api/templates/run.html) loads this bundle and
// leaves a #console-root with the run id, the page's CSRF token and the event stream's URL. The
// server-rendered details stay on the page; the console sits above them.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Console } from "./Console";
import "./console.css";

const root = document.getElementById("console-root") ?? document.getElementById("root");
if (root) {
  const data = root.dataset;
  const run = data.run ?? new URLSearchParams(window.location.search).get("run") ?? "";
  createRoot(root).render(
    <StrictMode>
      <Console run={run} csrf={data.csrf ?? ""} canWrite={data.canWrite === "true"} answerer={data.answerer ?? ""}
               stream={data.stream ?? `/api/runs/${encodeURIComponent(run)}/events/stream`}
               initialStatus={data.status ?? "running"} />
    </StrictMode>,
  );
}
