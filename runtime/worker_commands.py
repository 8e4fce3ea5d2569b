"""`iterloop worker status | stop`: the background workers `iterloop` started from this directory.

They are listed in `.iterloop/worker.json` (`runtime.background_workers`); these functions print
them, as text or one JSON document, and return the exit code. Nothing here talks to Temporal.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.background_workers import stop_background_workers, worker_status_rows
from runtime.command_errors import EXIT_OK
from runtime.settings import Settings


def worker_status(settings: Settings, *, as_json: bool) -> int:
    """The background workers that are alive: pid, task queue, kind, start time, directory, settings."""
    rows = worker_status_rows(settings)
    if as_json:
        print(json.dumps({"workers": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print("no background worker is running from here (`iterloop run` starts one when it needs it)")
        return EXIT_OK
    for row in rows:
        print(f"pid {row['pid']}  task queue {row['task_queue']}  "
              f"{'offline (scripted model)' if row['offline'] else 'real models'}")
        print(f"  started  {row['started_at']} in {row['cwd'] or '(unknown directory)'}")
        print(f"  server   {row['address']} namespace {row['namespace']}")
        print(f"  settings {_settings_line(row.get('fingerprint'))}")
        print(f"  log      {row['log_path']}")
    return EXIT_OK


def _settings_line(fingerprint: dict[str, Any] | None) -> str:
    if fingerprint is None:
        return "not recorded (started by an earlier iterloop; the next run restarts it)"
    if fingerprint.get("offline"):
        return "offline: no model keys needed"
    keys = ", ".join(fingerprint.get("model_keys") or []) or "none"
    parts = [f"model keys set: {keys}"]
    parts += [f"{name}={value}" for name, value in sorted((fingerprint.get("settings") or {}).items())]
    parts += [f"{name}={value}" for name, value in sorted((fingerprint.get("model_vars") or {}).items()) if value]
    return "; ".join(parts)


def worker_stop(settings: Settings, *, as_json: bool) -> int:
    """Stop them (SIGTERM: each finishes its running activities; runs are durable and go on with the
    next worker) and wait until they have exited."""
    stopped = stop_background_workers(settings, wait=True)
    if as_json:
        print(json.dumps({"stopped": stopped}))
    elif stopped:
        print(f"stopped background worker(s): pid {', '.join(str(p) for p in stopped)}")
    else:
        print("no background worker was running from here")
    return EXIT_OK
