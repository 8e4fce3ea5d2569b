"""The text form of the `iterloop schedule` commands (their `--json` form is the service's model as is)."""

from __future__ import annotations

import json
import sys

from runtime.console import local_time, print_columns, print_json
from runtime.schedule_models import ScheduleChanged, ScheduleCreated, ScheduleDetail, ScheduleList


def _times(every: list[str], cron: list[str]) -> str:
    return ", ".join([*(f"every {e}" for e in every), *(f"cron {c!r}" for c in cron)])


def print_schedule_created(created: ScheduleCreated, *, as_json: bool) -> None:
    for warning in created.warnings:
        print(f"iterloop: warning: {warning}", file=sys.stderr)
    if as_json:
        print_json({**created.model_dump(mode="json"), "exit_code": 0})
        return
    verb = "replaced" if created.replaced else "created"
    print(f"schedule {created.schedule_id} {verb}: {created.workflow} ({created.source}), "
          f"{_times(created.every, created.cron)}, task queue {created.task_queue}"
          + (", paused" if created.paused else ""))
    if created.next_runs:
        print(f"next run: {local_time(created.next_runs[0])}")
    print(f"runs: iterloop list --schedule {created.schedule_id}")
    print(f"Temporal UI: {created.ui_url}")


def print_schedule_list(listing: ScheduleList, *, as_json: bool) -> None:
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    if not listing.schedules:
        print("no schedules")
        return
    rows = [(s.schedule_id, s.workflow, _times(s.every, s.cron), "paused" if s.paused else "active",
             local_time(s.next_run_at), s.last_run_id or "") for s in listing.schedules]
    print_columns(("ID", "WORKFLOW", "TIMES", "STATE", "NEXT RUN", "LAST RUN"), rows, right=set())


def print_schedule_detail(detail: ScheduleDetail, *, as_json: bool) -> None:
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    print(f"schedule {detail.schedule_id}: {'paused' if detail.paused else 'active'}"
          + (f" ({detail.note})" if detail.note else ""))
    print(f"workflow   {detail.workflow} from {detail.source}"
          + (f" (content hash {detail.content_hash[:12]})" if detail.content_hash else "")
          + (", scripted model (offline)" if detail.offline else ""))
    print(f"times      {_times(detail.every, detail.cron)}" + (f" ({detail.time_zone})" if detail.time_zone else ""))
    print(f"overlap    {detail.overlap}")
    print(f"task queue {detail.task_queue}")
    if detail.vars:
        print("vars       " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in detail.vars.items()))
    print(f"runs       {detail.runs_started} started"
          + (f", {detail.skipped_overlap} skipped (previous run still going)" if detail.skipped_overlap else "")
          + (f", {detail.missed_catchup} missed" if detail.missed_catchup else ""))
    for run in detail.recent_runs[-5:]:
        print(f"  {local_time(run.started_at)}  {run.run_id}" + ("  (running)" if run.run_id in detail.running else ""))
    if detail.next_runs:
        print("next runs  " + ", ".join(local_time(t) for t in detail.next_runs[:3]))
    print(f"all runs   {detail.runs_command}")
    print(f"Temporal UI: {detail.ui_url}")


def print_schedule_changed(changed: ScheduleChanged, *, as_json: bool) -> None:
    if as_json:
        print_json({**changed.model_dump(mode="json"), "exit_code": 0})
        return
    print(changed.message)
