"""`iterloop run` on a terminal: report the start, then follow the run, with prompts at human gates.

The run service starts the run (`RunService.start`); this module is what a person sees while it
goes: event lines, a progress line, the gate prompts, the final line and the preset's summary.
Following stops when the run ends, parks (failed_resumable), or waits for an answer nobody can
give here; the exit code says which (`runtime.command_errors`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsl.ir import Workflow
from runtime.command_errors import EXIT_BUDGET, EXIT_OK, EXIT_PARKED, EXIT_WAITING, STATUS_EXIT_CODES
from runtime.console import (
    Terminal,
    event_text,
    final_line,
    gate_answer_command,
    is_tty,
    print_failure,
    print_json,
    print_waiting,
    progress_text,
    prompt_gate,
)
from runtime.notify_options import describe_notify
from runtime.server_address import web_ui_link
from runtime.settings import Settings
from runtime.temporal_runs import (
    POLL_INTERVAL_SECONDS,
    RPC_TIMEOUT,
    TERMINAL_STATUSES,
    effective_status,
    execution_failure,
    query_events,
    query_state,
    temporal_errors,
)

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

    from runtime.run_service import RunService
    from runtime.run_start import PreparedStart
    from workflows.contract.state import Event, RunView


def print_prepared(prepared: PreparedStart, *, found_script: Path | None) -> None:
    """Before the start, on stderr: unresolved `${NAME}` defaults, the script found beside the file,
    and what the preset, --skip-gates and --stop-after changed."""
    for warning in prepared.warnings:
        print(f"iterloop: warning: {warning}", file=sys.stderr)
    if found_script is not None:
        print(f"iterloop: offline: model outputs from {found_script} (found beside the file; --script chooses "
              "another)", file=sys.stderr)
    for line in prepared.notes:
        print(f"iterloop: {line}", file=sys.stderr)


async def start_and_follow(service: RunService, prepared: PreparedStart, *, detach: bool, as_json: bool, by: str,
                           started: list[str]) -> int:
    """Start the prepared run, then follow it unless ``detach``; ``started`` gets its id (so Ctrl-C
    can say how to follow it again). The exit code says how the run stands (`STATUS_EXIT_CODES`)."""
    run = await service.start(prepared)
    for warning in run.warnings:
        print(f"iterloop: warning: {warning}", file=sys.stderr)
    if run.notify and not as_json:
        print(f"iterloop: reporting to {describe_notify(run.notify)}", file=sys.stderr)
    started.append(run.run_id)
    if detach:
        if as_json:
            print_json({"run_id": run.run_id, "workflow": run.workflow, "file": run.source, "status": run.status,
                        "task_queue": run.task_queue, "address": run.address, "namespace": run.namespace,
                        "ui_url": run.ui_url, "worker": {"state": run.worker.state, "pid": run.worker.pid}})
        else:
            print(f"started run {run.run_id} (workflow {run.workflow}, file {run.source})")
            print(f"  follow:  iterloop events {run.run_id} --follow")
            print(f"  inspect: iterloop inspect {run.run_id}")
            print(f"  Web UI:  {run.ui_url}")
        return EXIT_OK
    if not as_json:
        print(f"started run {run.run_id} (workflow {run.workflow}, file {run.source})")
        print(f"  Web UI: {run.ui_url}")
    handle = (await service.client()).get_workflow_handle(run.run_id)
    interactive = not as_json and is_tty(sys.stdin)
    return await follow_run(handle, service.settings, run.run_id, prepared.workflow, as_json=as_json,
                            interactive=interactive, by=by, summary=prepared.summary)


async def follow_run(handle: WorkflowHandle[Any, Any], settings: Settings, run_id: str, wf: Workflow, *,
                     as_json: bool, interactive: bool, by: str, summary: list[str] | None = None) -> int:
    """Stream the run's events until it ends, parks, or waits for an answer nobody can give here."""
    term = Terminal(sys.stdout, progress=not as_json and is_tty(sys.stdout))
    after = 0
    seen: list[Event] = []
    while True:
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        view = await query_state(handle, settings)
        events = await query_events(handle, settings, after)
        for event in events:
            after = max(after, event.seq)
            seen.append(event)
            term.line(event_text(event, as_json=as_json))
        status = effective_status(view.status, desc)
        if status in TERMINAL_STATUSES:
            reason = view.reason if view.status in TERMINAL_STATUSES else await execution_failure(handle, desc)
            view = view.model_copy(update={"status": status, "reason": reason})
            code = finish_follow(term, run_id, status, view, seen, as_json=as_json)
            if summary and not as_json:
                print_summary(term, summary, view, web_ui_link(settings, run_id))
            return code
        if status == "failed_resumable":
            if as_json:
                _print_summary(run_id, status, view, seen)
            else:
                print_failure(term, run_id, view)
            return EXIT_PARKED
        if status == "waiting_budget":  # parked on a spent budget: `iterloop budget` lets it go on
            if as_json:
                _print_summary(run_id, status, view, seen)
            else:
                term.line(f"run {run_id} waits: {view.budget_wait}")
            return EXIT_BUDGET
        if status == "waiting_human":
            if not interactive:
                if as_json:
                    _print_summary(run_id, status, view, seen)
                else:
                    print_waiting(term, run_id, view)
                return EXIT_WAITING
            term.clear()
            for gate in sorted(view.open_gates, key=lambda g: g.gate):
                try:
                    await prompt_gate(handle, settings, gate, by=by, ask=input, say=term.line)
                except EOFError:
                    term.line()
                    print_waiting(term, run_id, await query_state(handle, settings))
                    return EXIT_WAITING
            continue
        term.progress(progress_text(view, wf))
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


def finish_follow(term: Terminal, run_id: str, status: str, view: RunView, events: list[Event], *,
                  as_json: bool) -> int:
    """The last lines of a followed run that ended, and the exit code for its status."""
    if as_json:
        _print_summary(run_id, status, view, events)
    else:
        term.line(final_line(run_id, status, view, events))
        if status == "finished":
            term.line(f"report: iterloop report {run_id}")
    return STATUS_EXIT_CODES[status]


def print_summary(term: Terminal, lines: list[str], view: RunView, link: str) -> None:
    """A preset's `summary:` lines, rendered against the run's final state, then the Web UI link."""
    from runtime.presets import render_summary

    term.line()
    for line in render_summary(lines, outputs=view.outputs, vars=view.vars, artifacts=view.artifacts):
        term.line(line)
    term.line(f"Web UI    {link}")


def _print_summary(run_id: str, status: str, view: RunView, events: list[Event]) -> None:
    """The last JSON line of `run --json`: where the run stands and what to do next."""
    doc: dict[str, Any] = {"run_id": run_id, "status": status, "reason": view.reason,
                           "exit_code": STATUS_EXIT_CODES.get(status, EXIT_OK),
                           "usage": view.usage.model_dump(mode="json"), "outputs": view.outputs}
    if view.open_gates:
        doc["answer_commands"] = [gate_answer_command(run_id, g) for g in view.open_gates]
    if view.failures:
        doc["retry_commands"] = [f"iterloop retry {run_id} --node {f.node}" for f in view.failures]
    print(json.dumps(doc, ensure_ascii=False, default=str), flush=True)
