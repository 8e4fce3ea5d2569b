"""`iterloop run`: start a run and follow it, with prompts at human gates on a terminal.

Following stops when the run ends, parks (failed_resumable), or waits for an answer nobody can
give here; the exit code says which (`runtime.command_errors`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsl.ir import Workflow
from runtime.background_workers import ensure_worker
from runtime.command_errors import (
    EXIT_OK,
    EXIT_PARKED,
    EXIT_WAITING,
    STATUS_EXIT_CODES,
    CommandError,
    RunAlreadyExists,
    short_error,
)
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
from runtime.notify_options import NotifySection, describe_notify, run_notify_options
from runtime.server_address import server_for_run, web_ui_base, web_ui_link
from runtime.settings import Settings
from runtime.temporal_runs import (
    POLL_INTERVAL_SECONDS,
    RPC_TIMEOUT,
    TERMINAL_STATUSES,
    connect_or_fail,
    effective_status,
    execution_failure,
    query_events,
    query_state,
    temporal_errors,
)

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from workflows.contract.state import Event, RunView


@dataclass
class RunRequest:
    """What `iterloop run` was asked to do, checked and resolved (vars typed, `${ENV}` defaults filled)."""

    file: Path
    wf: Workflow
    inputs: dict[str, Any]
    run_id: str | None
    script: dict[str, Any] | None
    detach: bool
    as_json: bool
    by: str
    #: More `RunOptions` fields: `stop_after`, `gate_answers` (--stop-after, --skip-gates, --config).
    run_options: dict[str, Any] = field(default_factory=dict)
    #: Lines for the run's details in the Web UI (e.g. what a preset changed).
    details: list[str] = field(default_factory=list)
    #: Template lines printed when the run ends (a preset's `summary:`), see `runtime.presets`.
    summary: list[str] = field(default_factory=list)
    #: Where the run reports: the preset's `notify:` and the command line's, over the defaults.
    notify_preset: NotifySection | None = None
    notify_request: NotifySection | None = None


async def start_and_follow(settings: Settings, req: RunRequest, started: list[str]) -> int:
    """Start the run (with a worker for it), then follow it unless --detach; ``started`` gets its id."""
    settings = await server_for_run(settings)
    client = await connect_or_fail(settings)
    check = await ensure_worker(client, settings, settings.task_queue)
    if check.state == "started" and check.record is not None:
        print(f"iterloop: started a background worker (pid {check.record.pid}) for task queue "
              f"'{settings.task_queue}'; log: {check.record.log_path}", file=sys.stderr)
    elif check.state == "none":
        print(f"iterloop: warning: no worker polls task queue '{settings.task_queue}' at {settings.address}; the run "
              "waits until one does (start one with `iterloop worker`)", file=sys.stderr)

    notify = run_notify_options(settings, preset=req.notify_preset, request=req.notify_request,
                                ui_base_url=web_ui_base(settings))
    run_id = await start_run(client, settings, wf=req.wf, inputs=req.inputs, source=str(req.file),
                             location=str(req.file.resolve()), run_id=req.run_id, script=req.script,
                             origin=f"`iterloop run {req.file}`",
                             options={**req.run_options, **({"notify": notify} if notify else {})},
                             details=req.details)
    if notify and not req.as_json:
        print(f"iterloop: reporting to {describe_notify(notify)}", file=sys.stderr)
    started.append(run_id)
    link = web_ui_link(settings, run_id)
    handle = client.get_workflow_handle(run_id)
    if req.detach:
        if req.as_json:
            print_json({"run_id": run_id, "workflow": req.wf.name, "file": str(req.file), "status": "running",
                         "task_queue": settings.task_queue, "address": settings.address,
                         "namespace": settings.namespace, "ui_url": link,
                         "worker": {"state": check.state, "pid": check.record.pid if check.record else None}})
        else:
            print(f"started run {run_id} (workflow {req.wf.name}, file {req.file})")
            print(f"  follow:  iterloop events {run_id} --follow")
            print(f"  inspect: iterloop inspect {run_id}")
            print(f"  Web UI:  {link}")
        return EXIT_OK
    if not req.as_json:
        print(f"started run {run_id} (workflow {req.wf.name}, file {req.file})")
        print(f"  Web UI: {link}")
    interactive = not req.as_json and is_tty(sys.stdin)
    return await follow_run(handle, settings, run_id, req.wf, as_json=req.as_json, interactive=interactive,
                            by=req.by, summary=req.summary)


def new_run_id(wf: Workflow) -> str:
    """`<workflow>-<8 hex digits>`: the id of a run started without one."""
    return f"{wf.name}-{uuid.uuid4().hex[:8]}"


async def start_run(client: Client, settings: Settings, *, wf: Workflow, inputs: dict[str, Any], source: str,
                    location: str, run_id: str | None, script: dict[str, Any] | None, origin: str,
                    options: dict[str, Any] | None = None, details: list[str] | None = None) -> str:
    """Start a GraphRun for ``wf`` and return its id (the CLI's `run` and the REST API share it).

    ``source`` is kept in the run input (inspect shows it); ``origin`` (how it was started) and
    ``location`` (where the workflow file is) go into the Web UI's run details. An existing id is
    `RunAlreadyExists`; a namespace without iterloop's search attributes says how to add them.
    ``options`` are further `RunOptions` fields (`stop_after`, `gate_answers`); ``details`` are
    extra lines for the run details (what a preset changed).
    """
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.contract.state import SA_STATUS, SA_WORKFLOW, WORKFLOW_TYPE, RunInput, RunOptions, RunResult

    run_id = run_id or new_run_id(wf)
    run_input = RunInput(workflow=wf, run_inputs=inputs, source=source,
                         options=RunOptions(script=script, **(options or {})))
    attributes = TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKFLOW), wf.name),
                                        SearchAttributePair(SearchAttributeKey.for_keyword(SA_STATUS), "running")])
    async with temporal_errors(settings):
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, run_input, id=run_id, task_queue=settings.task_queue, result_type=RunResult,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, search_attributes=attributes,
                static_summary=f"{wf.name} · {Path(source).name}",
                static_details=f"{origin}\n\nworkflow **{wf.name}** from `{location}`"
                               + (f"\n\ncontent hash `{wf.content_hash}`" if wf.content_hash else "")
                               + ("\n\nscripted model (offline run)" if script is not None else "")
                               + "".join(f"\n\n{line}" for line in details or []),
                rpc_timeout=RPC_TIMEOUT)
        except WorkflowAlreadyStartedError:
            raise RunAlreadyExists(f"a run with id '{run_id}' already exists; choose another --run-id "
                                   f"(or look at it: `iterloop inspect {run_id}`)") from None
        except Exception as exc:
            if "search attribute" in str(exc).lower():
                raise CommandError(
                    f"namespace '{settings.namespace}' lacks iterloop's search attributes ({short_error(exc)}); "
                    "`iterloop server start` registers them on the dev server; on a cluster run "
                    "`temporal operator search-attribute create --name IterloopWorkflow --type Keyword` "
                    "(and IterloopStatus Keyword, IterloopOpenGates KeywordList, IterloopCostUsd Double)") from None
            raise
    return run_id


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
