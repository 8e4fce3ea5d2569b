"""`iterloop server start | stop | status`: the local Temporal dev server, as the terminal shows it.

`runtime.devserver` does the work (find or build the binary, start it detached, remember it in
`.iterloop/`); these functions print what happened, as text or one JSON document, and return the
exit code. A dev server that cannot be started or stopped is a `UsageError` (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime import devserver
from runtime.background_workers import stop_background_workers
from runtime.command_errors import EXIT_FAILED, EXIT_OK, UsageError
from runtime.settings import Settings


def start_server(settings: Settings, *, headless: bool, as_json: bool) -> int:
    """Start the dev server in the background, or report the one already running."""
    try:
        info = devserver.start(settings, headless=headless)
    except devserver.DevServerError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        print(json.dumps({"state": "running", "reused": info.reused, **info.model_dump(mode="json")}))
        return EXIT_OK
    if info.reused:
        uptime = devserver.format_uptime(info.uptime_seconds())
        headline = f"Temporal dev server already running (pid {info.pid}, up {uptime})"
    else:
        headline = f"Temporal dev server started (pid {info.pid})"
    print_server(info, headline=headline)
    return EXIT_OK


def stop_server(settings: Settings, *, as_json: bool) -> int:
    """Stop the background workers `iterloop run` started, then the dev server (its data stays)."""
    workers = stop_background_workers(settings)
    try:
        info = devserver.stop(settings)
    except devserver.DevServerError as exc:
        raise UsageError(str(exc)) from None
    if workers and not as_json:
        print(f"stopped {len(workers)} background worker(s): pid {', '.join(map(str, workers))}")
    if as_json:
        print(json.dumps({"stopped": info is not None, "server": info.model_dump(mode="json") if info else None,
                          "workers_stopped": workers}))
    elif info is None:
        print("no dev server was running")
    else:
        print(f"stopped the Temporal dev server (pid {info.pid}); data kept in {display_path(info.db_path)}")
    return EXIT_OK


def server_status(settings: Settings, *, as_json: bool) -> int:
    """Whether the dev server is running, where and for how long; exit 1 when it is stopped."""
    current = devserver.status(settings)
    if as_json:
        print(json.dumps(current.model_dump(mode="json")))
    elif current.state == "running" and current.server is not None:
        uptime = devserver.format_uptime(current.uptime_seconds or 0)
        answering = "" if current.reachable else "; its port does not answer yet"
        headline = f"Temporal dev server running (pid {current.server.pid}, up {uptime}{answering})"
        print_server(current.server, headline=headline)
    else:
        print(f"Temporal dev server stopped ({current.detail})")
        print("Start it with: iterloop server start")
    return EXIT_OK if current.state == "running" else EXIT_FAILED


def print_server(info: devserver.ServerInfo, *, headline: str) -> None:
    print(headline)
    print(f"  address:  {info.address}  (namespace {info.namespace})")
    print(f"  Web UI:   {info.ui_url or 'off (started with --headless)'}")
    print(f"  data:     {display_path(info.db_path)}  (closed runs kept 30 days)")
    print(f"  log:      {display_path(info.log_path)}")
    print(f"Point the worker at it: TEMPORAL_ADDRESS={info.address} iterloop worker")
    print("Stop it with: iterloop server stop")


def display_path(path: str) -> str:
    """Relative to the working directory when inside it (`.iterloop/temporal.db`), else absolute."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
