"""What the API does to runs, on top of the runtime's Temporal access (`runtime/`).

The REST routes and the dashboard both call these functions; they return the API's models and
raise `ApiError`s or the runtime's `CommandError`s (which `api.errors` maps to HTTP statuses).
Unlike the CLI, the API never starts a dev server or a background worker: it talks to the
Temporal server it is configured for, and says so when no worker polls the task queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from api.deps import TemporalConnection
from api.errors import Conflict, Unprocessable, api_error_from_command
from api.models import (
    AnswerGate,
    CancelRequested,
    EventList,
    GateAnswered,
    RetryRequested,
    RunDetail,
    RunLinks,
    RunList,
    RunStarted,
    RunSummary,
    StartRun,
)
from api.settings import ApiSettings, withheld_from_runs
from api.workflow_sources import CompiledSource, compile_file, compile_registered, compile_text, confined_path
from dsl.ir import Workflow
from runtime.command_errors import CommandError, RunAlreadyExists, UsageError
from runtime.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from workflows.contract.state import Event, RunView

#: How often an event stream asks the run for new events (the `events` query, after the last seq).
STREAM_POLL_SECONDS = 0.5
#: How often an event stream without `run_*` events asks whether the run has ended (`describe` +
#: the `state` query): a run terminated from outside Temporal records no event.
STREAM_STATUS_SECONDS = 5.0
#: A comment line keeps proxies from closing a quiet event stream.
STREAM_KEEPALIVE_SECONDS = 15.0
#: How long `cancel` waits for the run to end before answering (it ends anyway, later).
CANCEL_WAIT_SECONDS = 5.0


@dataclass
class FoundRun:
    client: Client
    settings: Settings
    handle: WorkflowHandle[Any, Any]
    desc: WorkflowExecutionDescription


async def find_run(conn: TemporalConnection, run_id: str) -> FoundRun:
    """The run's handle and description; `RunNotFound` (404) for an unknown id."""
    from runtime.temporal_runs import describe_run

    client = await conn.get()
    settings = conn.effective_settings()
    handle, desc = await describe_run(client, settings, run_id)
    return FoundRun(client, settings, handle, desc)


def ui_link(settings: Settings, run_id: str) -> str:
    """The run in the Temporal Web UI (ITERLOOP_TEMPORAL_UI_URL, else the dev server's UI)."""
    from runtime.server_address import web_ui_link

    return web_ui_link(settings, run_id)


def run_links(settings: Settings, run_id: str) -> RunLinks:
    q = quote(run_id, safe="")
    return RunLinks(self=f"/api/runs/{q}", events=f"/api/runs/{q}/events", stream=f"/api/runs/{q}/events/stream",
                    report=f"/api/runs/{q}/report", dashboard=f"/runs/{q}", temporal_ui=ui_link(settings, run_id))


def recorded_answerer(principal: str, given: str | None) -> str:
    """Who an answer is recorded as: the caller's token name, plus the name the request gives when it
    differs (`ada (for grace)`), so a request can say on whose behalf it answers but never forge who."""
    named = (given or "").strip()[:200]
    return principal if not named or named == principal else f"{principal} (for {named})"


# -- start ---------------------------------------------------------------------------------------


def compile_request(api: ApiSettings, body: StartRun) -> CompiledSource:
    if body.workflow is not None:
        return compile_registered(api, body.workflow)
    if body.file is not None:
        return compile_file(api, body.file)
    assert body.source is not None
    return compile_text(api, body.source)


def run_inputs_for(api: ApiSettings, wf: Workflow, body: StartRun) -> tuple[dict[str, Any], list[str]]:
    """The run inputs (vars checked as `iterloop run --var` checks them) and warnings."""
    from runtime.run_inputs import check_var_values, missing_vars, resolve_env_defaults

    inputs = {**body.inputs, **check_var_values(body.vars, wf)}
    env_values, warnings = resolve_env_defaults(wf, inputs, api.client_env, withheld=withheld_from_runs)
    missing = missing_vars(wf, inputs)
    if missing:
        raise UsageError(f"workflow '{wf.name}' needs a value for var(s) {', '.join(missing)}; give "
                         + ", ".join(f'"{n}"' for n in missing) + ' in "vars"')
    return {**env_values, **inputs}, warnings


async def start_run(conn: TemporalConnection, api: ApiSettings, body: StartRun, *, started_by: str) -> RunStarted:
    from runtime.background_workers import live_pollers
    from runtime.notify_options import run_notify_options
    from runtime.presets import prepare_run
    from runtime.run_follow import start_run as start_graph_run
    from runtime.server_address import web_ui_base
    from runtime.temporal_runs import temporal_errors

    compiled = compile_request(api, body)
    prepared = prepare_run(preset_path(api, body.config), compiled.wf, skip_gates=body.skip_gates,
                           stop_after=body.stop_after, preset_root=api.preset_root)
    inputs, warnings = run_inputs_for(api, prepared.workflow, body.model_copy(
        update={"inputs": {**prepared.inputs, **body.inputs}}))
    if body.script is not None:
        from workflows.contract.scripts import script_shape_problem

        problem = script_shape_problem(body.script)
        if problem is not None:
            raise Unprocessable(f"script: {problem}", code="invalid_script")
    script = body.script if body.script is not None else ({} if body.offline or api.runtime.offline else None)
    client = await conn.get()
    settings = conn.effective_settings()
    notify = run_notify_options(api.runtime, preset=prepared.notify, request=body.notify,
                                ui_base_url=web_ui_base(settings))
    options = {**prepared.run_options, **({"notify": notify} if notify else {})}
    try:
        run_id = await start_graph_run(client, settings, wf=prepared.workflow, inputs=inputs, source=compiled.source,
                                       location=compiled.location, run_id=body.run_id, script=script,
                                       origin=f"started through the iterloop REST API by {started_by}",
                                       options=options, details=prepared.notes)
    except RunAlreadyExists:
        raise Conflict(f"a run with id '{body.run_id}' already exists; run ids are never reused, choose another "
                       "run_id", code="run_exists") from None
    async with temporal_errors(settings):
        pollers = await live_pollers(client, settings.namespace, settings.task_queue)
    if not pollers:
        warnings.append(f"no worker polls task queue '{settings.task_queue}' at {settings.address}; the run waits "
                        "until one does (start one with `iterloop worker`)")
    return RunStarted(run_id=run_id, workflow=compiled.wf.name, source=compiled.source, status="running",
                      task_queue=settings.task_queue, ui_url=ui_link(settings, run_id),
                      links=run_links(settings, run_id), warnings=[*compiled.warnings, *warnings])


def preset_path(api: ApiSettings, config: str | None) -> Path | None:
    """The request's preset, confined to the presets directory (`Forbidden` outside it)."""
    if config is None:
        return None
    root = api.preset_root
    return confined_path(config, (root,) if root is not None else (), what="preset",
                         setting="ITERLOOP_API_PRESETS_DIR or ITERLOOP_WORKFLOWS_DIR")


# -- read ----------------------------------------------------------------------------------------


async def list_runs(conn: TemporalConnection, *, status: str | None, workflow: str | None, gate: str | None,
                    limit: int) -> RunList:
    from runtime.run_views import list_run_rows, visibility_query

    client = await conn.get()
    query = visibility_query(status, workflow=workflow, gate=gate)
    rows = await list_run_rows(client, conn.effective_settings(), query, limit)
    return RunList(runs=[RunSummary.model_validate(r) for r in rows], query=query)


@dataclass
class RunPage:
    """A run as the dashboard shows it: the details, the graph it runs, the raw state."""

    detail: RunDetail
    wf: Workflow | None
    view: RunView
    found: FoundRun


async def run_page(conn: TemporalConnection, run_id: str) -> RunPage:
    from runtime.run_views import current_view, inspect_document
    from runtime.temporal_runs import read_run_input

    found = await find_run(conn, run_id)
    view = await current_view(found.handle, found.desc, found.settings)
    run_input = await read_run_input(found.client, found.handle)
    doc = inspect_document(run_id, found.settings, found.desc, view, run_input)
    doc["ui_url"] = ui_link(found.settings, run_id)
    return RunPage(RunDetail.model_validate(doc), run_input.workflow if run_input else None, view, found)


async def run_detail(conn: TemporalConnection, run_id: str) -> RunDetail:
    return (await run_page(conn, run_id)).detail


async def run_events(conn: TemporalConnection, run_id: str, after_seq: int) -> EventList:
    from runtime.temporal_runs import query_events

    found = await find_run(conn, run_id)
    events = await query_events(found.handle, found.settings, after_seq)
    return EventList(run_id=run_id, events=events, last_seq=max([after_seq, *(e.seq for e in events)]))


async def run_report(conn: TemporalConnection, run_id: str) -> str:
    from runtime.report import render_report
    from runtime.run_views import current_view
    from runtime.temporal_runs import query_events

    found = await find_run(conn, run_id)
    view = await current_view(found.handle, found.desc, found.settings)
    events = await query_events(found.handle, found.settings, 0)
    return render_report(view, events, run_id=run_id, ui_url=ui_link(found.settings, run_id))


# -- act -----------------------------------------------------------------------------------------


async def answer_gate(conn: TemporalConnection, run_id: str, gate: str, body: AnswerGate, *,
                      principal: str) -> GateAnswered:
    """Through the validated update: a refused answer is `AnswerRejected` (422), nothing recorded.

    The answer is recorded as by ``principal`` (the caller's token name; see `recorded_answerer`)."""
    from runtime.command_errors import RunEnded
    from runtime.run_control import update_answer
    from runtime.temporal_runs import closed, ended_as, query_state

    found = await find_run(conn, run_id)
    if closed(found.desc):
        raise RunEnded(f"run '{run_id}' has ended ({ended_as(found.desc)}); there is no gate to answer")
    view = await query_state(found.handle, found.settings)
    gate_open = any(g.gate == gate for g in view.open_gates)
    record = await update_answer(found.handle, found.settings, view, gate, body.answers,
                                 by=recorded_answerer(principal, body.answered_by),
                                 interaction_id=body.interaction_id)
    return GateAnswered(run_id=run_id, gate_open=gate_open, **record.model_dump())


async def retry_run(conn: TemporalConnection, run_id: str, node: str | None) -> RetryRequested:
    from runtime.run_control import request_retry
    from runtime.run_views import current_view

    found = await find_run(conn, run_id)
    view = await current_view(found.handle, found.desc, found.settings)
    return RetryRequested(run_id=run_id, retried=await request_retry(found.handle, found.settings, found.desc,
                                                                     view, node))


async def cancel_run(conn: TemporalConnection, run_id: str) -> CancelRequested:
    from runtime.run_control import request_cancel
    from runtime.temporal_runs import closed, execution_status

    found = await find_run(conn, run_id)
    desc = await request_cancel(found.handle, found.settings, found.desc, wait_seconds=CANCEL_WAIT_SECONDS)
    return CancelRequested(run_id=run_id, cancel_requested=True, ended=closed(desc),
                           execution_status=execution_status(desc))


# -- server-sent events --------------------------------------------------------------------------


def sse_message(data: Any, *, event: str | None = None, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, ensure_ascii=False, default=str)}")
    return "\n".join(lines) + "\n\n"


async def stream_events(found: FoundRun, after_seq: int, *, poll_seconds: float = STREAM_POLL_SECONDS,
                        status_seconds: float = STREAM_STATUS_SECONDS,
                        keepalive_seconds: float = STREAM_KEEPALIVE_SECONDS) -> AsyncIterator[str]:
    """The run's events as server-sent events, until it ends.

    Each run event is a default (`message`) event with `id: <seq>` and the event as JSON; when the
    run reaches a terminal status the stream sends `event: end` (`{"run_id", "status", "reason"}`)
    and closes. A problem reaching the run is `event: error` (`{"code", "message"}`), then close.

    Every ``poll_seconds`` it asks only for the events after the last one sent (the `events`
    query); whether the run has ended (`describe` and the `state` query) it asks at the start,
    when a `run_*` event arrives, and otherwise every ``status_seconds`` (a run terminated from
    outside records no event).
    """
    from runtime.temporal_runs import query_events

    loop = asyncio.get_running_loop()
    yield f"retry: {int(poll_seconds * 4000)}\n\n"
    after = after_seq
    quiet_since = loop.time()
    checked_at: float | None = None
    while True:
        try:
            events: list[Event] = await query_events(found.handle, found.settings, after)
            for event in events:
                after = max(after, event.seq)
                yield sse_message(event.model_dump(mode="json"), event_id=event.seq)
            if events:
                quiet_since = loop.time()
            if (checked_at is None or loop.time() - checked_at >= status_seconds
                    or any(e.type.startswith("run_") for e in events)):
                checked_at = loop.time()
                ended = await _ended(found)
                if ended is not None:
                    for event in await query_events(found.handle, found.settings, after):  # the last ones
                        after = max(after, event.seq)
                        yield sse_message(event.model_dump(mode="json"), event_id=event.seq)
                    yield sse_message(ended, event="end")
                    return
        except CommandError as exc:
            problem = api_error_from_command(exc)
            yield sse_message({"code": problem.code, "message": problem.message}, event="error")
            return
        if loop.time() - quiet_since >= keepalive_seconds:
            quiet_since = loop.time()
            yield ": keepalive\n\n"
        await asyncio.sleep(poll_seconds)


async def _ended(found: FoundRun) -> dict[str, str] | None:
    """`{"run_id", "status", "reason"}` when the run has reached a terminal status, else None."""
    from runtime.temporal_runs import RPC_TIMEOUT, TERMINAL_STATUSES, effective_status, query_state, temporal_errors

    async with temporal_errors(found.settings, found.handle.id):
        desc = await found.handle.describe(rpc_timeout=RPC_TIMEOUT)
    view = await query_state(found.handle, found.settings)
    status = effective_status(view.status, desc)
    if status not in TERMINAL_STATUSES:
        return None
    return {"run_id": found.handle.id, "status": status, "reason": view.reason if view.status == status else ""}
