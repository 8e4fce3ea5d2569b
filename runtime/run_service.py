"""The run service: everything `iterloop` and the REST API do to runs, written once.

    service = RunService(settings)                  # the API: one per app, shared by its requests
    service = RunService(settings, manage_local=True, notice=say)   # a CLI command
    prepared = service.prepare(StartRequest(...))   # pure: presets, vars, script (UsageError)
    started = await service.start(prepared)         # StartedRun
    detail = (await service.inspect(run_id)).detail # RunDetail: inspect --json and GET /api/runs/{id}

It holds the `Settings` and one Temporal client, connected on first use (so the API starts while
Temporal is down and recovers when it is up; an unreachable server is `TemporalUnavailable`). It
returns the typed results of `runtime.run_models` and raises `CommandError`s, which the CLI turns
into `iterloop: message` and an exit code and the API into an HTTP status.

The one difference between its callers is ``manage_local``. A command on a person's machine
(`manage_local=True`) uses the local dev server when no address is configured (starting it for a
new run) and makes sure a worker polls the run's task queue, starting one in the background on a
local server; ``notice`` tells the person when it did either. The API (`manage_local=False`) only
talks to the server and the workers it is configured for, and says when no worker polls.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dsl.ir import Workflow
from runtime.background_workers import (
    WorkerCheck,
    WorkerNeed,
    ensure_worker,
    ensure_worker_for_run,
    started_worker_notice,
)
from runtime.command_errors import (
    AnswerRejected,
    ControlRejected,
    GateOpeningClosed,
    InvalidFilter,
    NodeNotParked,
    NoRewindPoint,
    NothingToRetry,
    RunEnded,
    TemporalUnavailable,
)
from runtime.console import gate_answer_command, gate_fields
from runtime.notify_options import run_notify_options
from runtime.run_models import (
    AnswerSignalled,
    BudgetRow,
    CancelRequested,
    ControlApplied,
    EventBatch,
    EventList,
    FailureDetail,
    GateAnswered,
    GateDetail,
    NodeDetail,
    RetryRequested,
    RunDetail,
    RunEnd,
    RunForked,
    RunList,
    RunReport,
    RunRewound,
    RunSummary,
    StartedRun,
    WorkerState,
)
from runtime.run_start import PreparedStart, StartRequest, check_run_id, prepare_start, start_graph_run
from runtime.server_address import server_for_run, settings_for_existing_runs, web_ui_base, web_ui_link
from runtime.settings import Settings
from runtime.temporal_runs import (
    POLL_INTERVAL_SECONDS,
    RPC_TIMEOUT,
    TERMINAL_STATUSES,
    closed,
    connect_or_fail,
    describe_run,
    effective_status,
    ended_as,
    execution_failure,
    execution_status,
    query_events,
    query_state,
    read_run_input,
    temporal_errors,
    update_failure_message,
)
from runtime.worker_fingerprint import caller_fingerprint, is_offline_queue, model_variables, run_task_queue

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from runtime.run_rewind import ResumeSource
    from workflows.contract.state import (
        Answer,
        AnswerRecord,
        BudgetRaise,
        Event,
        LiveControl,
        LoopGrant,
        PauseRequest,
        RunInput,
        RunState,
        RunView,
    )

#: How long `cancel` waits for the run to end before answering (it ends anyway, later); the CLI,
#: which a person watches, waits longer.
CANCEL_WAIT_SECONDS = 5.0


@dataclass
class FoundRun:
    """An existing run: the client that found it, the settings used, its handle and description."""

    client: Client
    settings: Settings
    handle: WorkflowHandle[Any, Any]
    desc: WorkflowExecutionDescription


@dataclass
class RunTarget:
    """Where new runs go: the client, the settings (their task queue), the worker check made before
    starting (None: not made, the API's service), and the run's notify options."""

    client: Client
    settings: Settings
    check: WorkerCheck | None
    notify: dict[str, Any] | None


@dataclass
class RunSnapshot:
    """One look at a run: the `RunDetail` every caller shows, plus what the dashboard draws from (the
    compiled workflow, for the graph; the raw state, for the gate forms and the last event seq)."""

    detail: RunDetail
    workflow: Workflow | None
    view: RunView
    found: FoundRun


def _ignore(message: str) -> None:
    """The API's notice sink: it tells nobody about processes it never starts."""


class RunService:
    """Start, answer, retry, cancel, inspect, list, follow and report runs on one Temporal server."""

    def __init__(self, settings: Settings, *, manage_local: bool = False,
                 notice: Callable[[str], None] = _ignore, environment: Mapping[str, str] | None = None) -> None:
        self.configured = settings
        self.manage_local = manage_local
        self.notice = notice
        #: The caller's environment (the CLI's: the process environment over `.env`): what a
        #: background worker is started with and what its settings are compared with.
        self.environment = environment
        self._effective: Settings | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @property
    def settings(self) -> Settings:
        """The settings in use: the configured ones, with the local dev server's address once connected."""
        return self._effective or self.configured

    async def client(self, *, new_run: bool = False) -> Client:
        """The Temporal client, connected once (concurrent first callers share it).

        With no address configured, the dev server this directory started; a command starting a new
        run (``new_run``, with ``manage_local``) starts that server when it is not running.
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                if new_run and self.manage_local:
                    settings = await server_for_run(self.configured, self.notice)
                else:
                    settings = await asyncio.to_thread(settings_for_existing_runs, self.configured)
                self._client = await connect_or_fail(settings)  # TemporalUnavailable
                self._effective = settings
        return self._client

    # -- finding runs ------------------------------------------------------------------------------

    async def find(self, run_id: str) -> FoundRun:
        """The run's handle and description; `RunNotFound` for an unknown id."""
        client = await self.client()
        handle, desc = await describe_run(client, self.settings, run_id)
        return FoundRun(client, self.settings, handle, desc)

    async def _find_served(self, run_id: str, *, acting: bool = False) -> FoundRun:
        """The run, with a worker on its task queue when this service manages local processes
        (queries, updates and retries need one; ``acting``: one that suits the run, see `_served`)."""
        found = await self.find(run_id)
        await self._served(found, acting=acting)
        return found

    async def _served(self, found: FoundRun, *, acting: bool = False) -> None:
        """Make sure a worker polls the run's task queue. Reading (queries) any worker will do; a
        command that makes the run go on (``acting``: answer, retry) needs one whose settings suit
        the run (`runtime.background_workers`: ours are restarted, others refused)."""
        if self.manage_local:
            need = await self._need_for_run(found) if acting else None
            check = await ensure_worker_for_run(found.client, found.settings, found.desc, need)
            self._tell_started(check, found.desc.task_queue or found.settings.task_queue)

    async def _polled(self, found: FoundRun) -> None:
        """A command on this machine that only reads: `TemporalUnavailable` at once, with the command
        that starts a worker, when no worker polls the run's task queue (instead of starting one, or
        waiting for a query to time out)."""
        if not self.manage_local:
            return
        queue = found.desc.task_queue or found.settings.task_queue
        check = await ensure_worker(found.client, found.settings, queue, spawn=False)
        if check.state == "none":
            offline = " --offline" if is_offline_queue(queue) else ""
            raise TemporalUnavailable(
                f"no worker polls task queue '{queue}', and inspect only reads (it starts none); start one with "
                f"`iterloop worker{offline} --task-queue {queue}`, or let a command that acts on the run "
                f"(answer, retry, events) start it")

    def _worker_need(self, *, offline: bool, workflow: Workflow | None) -> WorkerNeed:
        """What a worker needs for a run of ``workflow`` from this caller: its kind, the model settings."""
        env = os.environ if self.environment is None else self.environment
        names = [] if offline else model_variables(workflow)
        return WorkerNeed(caller_fingerprint(env, offline=offline, model_vars=names), env, names)

    async def _need_for_run(self, found: FoundRun) -> WorkerNeed:
        offline = is_offline_queue(found.desc.task_queue or found.settings.task_queue)
        run_input = None if offline else await read_run_input(found.client, found.handle)
        return self._worker_need(offline=offline, workflow=run_input.workflow if run_input is not None else None)

    def _tell_started(self, check: WorkerCheck, task_queue: str) -> None:
        notice = started_worker_notice(check, task_queue)
        if notice is not None:
            self.notice(notice)

    # -- start -------------------------------------------------------------------------------------

    def prepare(self, request: StartRequest) -> PreparedStart:
        """Check and resolve a start request without touching Temporal (`UsageError`s)."""
        return prepare_start(request, self.configured)

    async def start(self, prepared: PreparedStart) -> StartedRun:
        """Start the prepared run.

        Managing local processes, it first makes sure a worker polls the task queue (starting one in
        the background on a local server). Otherwise it only looks, after the start: the run waits
        for a worker either way, and one that has just started is listed only once it has polled.
        """
        target = await self.new_run_target(prepared)
        settings = target.settings
        run_id = await start_graph_run(target.client, settings, prepared, target.notify)
        check, warnings = await self.worker_warnings(target, "the run waits until one does")
        record = check.record
        return StartedRun(run_id=run_id, workflow=prepared.workflow.name, source=prepared.request.compiled.source,
                          task_queue=settings.task_queue, address=settings.address, namespace=settings.namespace,
                          ui_url=web_ui_link(settings, run_id),
                          worker=WorkerState(state=check.state, pid=record.pid if record else None,
                                             log_path=record.log_path if record else None),
                          notify=target.notify, warnings=warnings)

    async def new_run_target(self, prepared: PreparedStart) -> RunTarget:
        """Where runs of ``prepared`` go (now, or at each firing of a schedule): the client, the
        settings with the task queue, the worker check and the notify options.

        Managing local processes, offline (scripted) runs go to their own task queue, so an offline
        worker never serves a real run, and a worker that suits the run is made sure of (started in
        the background on a local server); the API uses the queue it is configured with.
        """
        client = await self.client(new_run=True)
        settings = self.settings
        check: WorkerCheck | None = None
        offline = prepared.script is not None
        if self.manage_local:
            settings = replace(settings, task_queue=run_task_queue(settings.task_queue, offline=offline))
            check = await ensure_worker(client, settings, settings.task_queue,
                                        need=self._worker_need(offline=offline, workflow=prepared.workflow))
            self._tell_started(check, settings.task_queue)
        notify = run_notify_options(settings, preset=prepared.notify_preset, request=prepared.request.notify,
                                    ui_base_url=web_ui_base(settings))
        return RunTarget(client, settings, check, notify)

    async def worker_warnings(self, target: RunTarget, consequence: str) -> tuple[WorkerCheck, list[str]]:
        """The worker check of ``target`` (looking now when it was not made before) and, when no worker
        polls its task queue, the warning that says so, what follows (``consequence``) and the command."""
        settings = target.settings
        check = target.check or await ensure_worker(target.client, settings, settings.task_queue, spawn=False)
        command = ("iterloop worker" + (f" --offline --task-queue {settings.task_queue}" if is_offline_queue(
            settings.task_queue) else (f" --task-queue {settings.task_queue}" if settings.task_queue
                                       != self.configured.task_queue else "")))
        warnings = [] if check.state != "none" else [(
            f"no worker polls task queue '{settings.task_queue}' at {settings.address}; {consequence} "
            f"(start one with `{command}`)")]
        return check, warnings

    # -- read --------------------------------------------------------------------------------------

    async def inspect(self, run_id: str) -> RunSnapshot:
        """The run as `iterloop inspect` and `GET /api/runs/{id}` show it.

        Read-only: it never starts or restarts a worker (a look must not leave processes behind);
        with none polling the run's task queue the state cannot be queried, and it says how to start one.
        """
        found = await self.find(run_id)
        await self._polled(found)
        view = await current_view(found.handle, found.desc, found.settings)
        run_input = await read_run_input(found.client, found.handle)
        detail = run_detail(run_id, found.settings, found.desc, view, run_input)
        return RunSnapshot(detail, run_input.workflow if run_input is not None else None, view, found)

    async def list_runs(self, *, status: str | None = None, workflow: str | None = None, gate: str | None = None,
                        limit: int = 20, schedule: str | None = None) -> RunList:
        """Runs from Temporal's visibility store (optionally with a status, a workflow, an open gate,
        started by a schedule), newest first."""
        client = await self.client()
        query = visibility_query(status, workflow=workflow, gate=gate, schedule=schedule)
        return RunList(runs=await list_summaries(client, self.settings, query, limit), query=query)

    async def events(self, run_id: str, after_seq: int = 0) -> EventList:
        """The run's events after ``after_seq`` (the latest 2,000 are kept)."""
        found = await self._find_served(run_id)
        events = await query_events(found.handle, found.settings, after_seq)
        return EventList(run_id=run_id, events=events, last_seq=max([after_seq, *(e.seq for e in events)]))

    async def follow(self, run_id: str, after_seq: int = 0, *,
                     until: tuple[str, ...] = TERMINAL_STATUSES) -> AsyncIterator[EventBatch]:
        """The run's events as they happen, until it reaches one of ``until`` (by default: it ends;
        `SETTLED_STATUSES` also stops at a park or an open gate), looking every half second."""
        found = await self._find_served(run_id)
        async for batch in watch_events(found, after_seq, poll_seconds=POLL_INTERVAL_SECONDS,
                                        status_seconds=POLL_INTERVAL_SECONDS, until=until):
            yield batch

    async def report(self, run_id: str) -> str:
        """The Markdown run report (`iterloop report`, `GET /api/runs/{id}/report`)."""
        return (await self.report_document(run_id)).markdown

    async def report_document(self, run_id: str) -> RunReport:
        """The run report and its parts (`iterloop report --json`): each node's final output and the
        preset's summary block, recorded in the run's input, for a run followed live or not."""
        from runtime.report import render_report

        found = await self._find_served(run_id)
        view = await current_view(found.handle, found.desc, found.settings)
        events = await query_events(found.handle, found.settings, 0)
        run_input = await read_run_input(found.client, found.handle)
        summary = summary_lines(view, run_input)
        markdown = render_report(view, events, run_id=run_id, ui_url=web_ui_link(found.settings, run_id),
                                 summary=summary)
        return RunReport(run_id=run_id, workflow=view.workflow, status=view.status, reason=view.reason,
                         markdown=markdown, summary=summary, outputs=view.outputs, usage=view.usage,
                         cost_complete=not view.usage.unpriced_calls)

    # -- act ---------------------------------------------------------------------------------------

    async def answer(self, run_id: str, gate: str, values: dict[str, Any], *, by: str,
                     interaction_id: str | None = None, in_advance: bool = False) -> GateAnswered:
        """Answer a gate's open opening through the run's validated `answer` update: a refused answer
        is `AnswerRejected` (`GateOpeningClosed` when that opening is answered already or closed) and
        nothing is recorded. ``interaction_id`` pins the opening; ``in_advance`` answers the gate's
        next opening while it is closed (the only way an answer waits for a later opening)."""
        found, view = await self._open_run(run_id)
        message = answer_message(view, gate, values, by, interaction_id, in_advance=in_advance)
        record = await send_answer_update(found.handle, found.settings, message)
        return GateAnswered(run_id=run_id, gate_open=any(g.gate == gate for g in view.open_gates),
                            **record.model_dump())

    async def signal_answer(self, run_id: str, gate: str, values: dict[str, Any], *, by: str,
                            in_advance: bool = False) -> AnswerSignalled:
        """Answer the gate's open opening (its next one with ``in_advance``) through the idempotent
        `answer` signal (fire and forget: the run records a rejection in its events if it refuses it).
        A gate that is not open is `GateOpeningClosed` here unless the answer is sent in advance."""
        found, view = await self._open_run(run_id)
        message = answer_message(view, gate, values, by, None, in_advance=in_advance)
        if not message.interaction_id and not in_advance and gate in view.nodes:
            raise GateOpeningClosed(f"answer rejected: {gate_not_open(view, gate, run_id)}")
        await send_answer_signal(found.handle, found.settings, message)
        return AnswerSignalled(run_id=run_id, gate=gate, answers=values, answered_by=by,
                               gate_open=any(g.gate == gate for g in view.open_gates))

    async def _open_run(self, run_id: str) -> tuple[FoundRun, RunView]:
        """A run that has not ended, and its state (`RunEnded` otherwise: no gate to answer)."""
        found = await self.find(run_id)
        if closed(found.desc):
            raise RunEnded(f"run '{run_id}' has ended ({ended_as(found.desc)}); there is no gate to answer")
        await self._served(found, acting=True)
        return found, await query_state(found.handle, found.settings)

    async def retry(self, run_id: str, node: str | None) -> RetryRequested:
        """Ask the run to re-run ``node`` (every parked node when None) after the cause was fixed
        (by a worker that suits the run: one started before the fix, e.g. an exported key, is restarted)."""
        found = await self._find_served(run_id, acting=True)
        view = await current_view(found.handle, found.desc, found.settings)
        if closed(found.desc):
            raise RunEnded(f"run '{run_id}' has ended ({view.status}); there is nothing to retry")
        parked = [f.node for f in view.failures]
        if node and node not in parked:
            raise NodeNotParked(f"node '{node}' of run '{run_id}' is not parked; "
                                f"parked nodes: {', '.join(parked) or '(none)'}")
        if not parked:
            raise NothingToRetry(f"run '{run_id}' has no parked node to retry (status {view.status})")
        async with temporal_errors(found.settings, run_id):
            await found.handle.signal("retry", node or "", rpc_timeout=RPC_TIMEOUT)
        return RetryRequested(run_id=run_id, retried=[node] if node else parked)

    async def cancel(self, run_id: str, *, wait_seconds: float = CANCEL_WAIT_SECONDS) -> CancelRequested:
        """Ask the run to cancel and wait up to ``wait_seconds`` for it to end (a worker makes it end
        within moments); `RunEnded` when it has ended already."""
        found = await self.find(run_id)
        desc = found.desc
        if closed(desc):
            raise RunEnded(f"run '{run_id}' has already ended ({ended_as(desc)}); nothing to cancel")
        async with temporal_errors(found.settings, run_id):
            await found.handle.cancel(rpc_timeout=RPC_TIMEOUT)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while not closed(desc) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            async with temporal_errors(found.settings, run_id):
                desc = await found.handle.describe(rpc_timeout=RPC_TIMEOUT)
        return CancelRequested(run_id=run_id, cancel_requested=True, ended=closed(desc),
                               execution_status=execution_status(desc))

    # -- live control: GraphRun's validated raise_budget, grant_iterations, pause, resume updates ---

    async def raise_budget(self, run_id: str, raised: BudgetRaise | None, grants: list[LoopGrant]) -> ControlApplied:
        """Grant loop iterations, then raise limits, on a run that has not ended (a run parked on its
        budget goes on once the raise covers it, without running its finished nodes again). Each
        change is a validated update: a refused one (`ControlRejected`) records nothing, and says
        what was applied before it."""
        from runtime.command_errors import UsageError

        if (raised is None or not raised.limits()) and not grants:
            raise UsageError("nothing to change: give --max-cost-usd, --max-tokens, --max-iterations, "
                             "--max-duration and/or --grant LOOP=N")
        found = await self._live_run(run_id, "raise the budget of")
        changes: list[tuple[str, Any]] = [("grant_iterations", g) for g in grants]
        if raised is not None and raised.limits():
            changes.append(("raise_budget", raised))
        control, done = None, []
        for update, request in changes:
            try:
                control = await send_control_update(found.handle, found.settings, update, request)
            except ControlRejected as exc:
                applied = f" (applied before it: {', '.join(done)})" if done else ""
                raise ControlRejected(f"{exc}{applied}") from None
            done.append(f"--grant {request.loop}={request.iterations}" if update == "grant_iterations" else "the raise")
        assert control is not None
        return ControlApplied(run_id=run_id, action="budget", **control.model_dump())

    async def pause(self, run_id: str, request: PauseRequest) -> ControlApplied:
        """Ask the run to hold at its next node boundary (a node running now finishes first)."""
        found = await self._live_run(run_id, "pause")
        control = await send_control_update(found.handle, found.settings, "pause", request)
        return ControlApplied(run_id=run_id, action="pause", **control.model_dump())

    async def resume(self, run_id: str, request: PauseRequest) -> ControlApplied:
        """Let a paused run go on from the node boundary it holds at."""
        found = await self._live_run(run_id, "resume")
        control = await send_control_update(found.handle, found.settings, "resume", request)
        return ControlApplied(run_id=run_id, action="resume", **control.model_dump())

    async def _live_run(self, run_id: str, action: str) -> FoundRun:
        """A run that has not ended, with a worker that suits it (`RunEnded` otherwise)."""
        found = await self.find(run_id)
        if closed(found.desc):
            raise RunEnded(f"run '{run_id}' has ended ({ended_as(found.desc)}); there is nothing to {action}")
        await self._served(found, acting=True)
        return found

    # -- rewind and fork (runtime/run_rewind.py) -------------------------------------------------

    async def _resume_source(self, run_id: str, node: str, var_assignments: list[str] | None,
                             vars: dict[str, Any] | None) -> tuple[FoundRun, ResumeSource, dict[str, Any]]:
        """What `rewind` and `fork` start from: the run (served by a suitable worker), its input and
        whole state, and the checked var overrides; an unknown node is refused first."""
        from runtime.run_rewind import check_node, read_source, var_overrides

        found = await self._find_served(run_id, acting=True)
        source = await read_source(found.client, found.handle, found.settings, run_id)
        check_node(source.run_input.workflow, node)
        return found, source, var_overrides(source.run_input.workflow, var_assignments or [], vars or {})

    async def rewind(self, run_id: str, node: str, *, by: str, var_assignments: list[str] | None = None,
                     vars: dict[str, Any] | None = None, script: dict[str, Any] | None = None) -> RunRewound:
        """Resume run ``run_id`` from ``node`` with the outputs recorded before it (its latest main-walk
        visit): the current execution ends and a new one of the same run id starts there; later gates
        open again. ``vars``/``script`` change the run's vars and scripted outputs from there on."""
        from runtime.run_rewind import resumed_input, start_resumed
        from workflows.contract.rewind import rewound

        found, source, overrides = await self._resume_source(run_id, node, var_assignments, vars)
        carried = _rebuilt(lambda: rewound(source.state, source.run_input.workflow, node, vars=overrides,
                                           events_kept=source.run_input.options.max_events_kept // 4))
        old_execution = found.desc.run_id
        run_input = resumed_input(source, carried, kind="rewind", node=node, from_run=old_execution, by=by,
                                  overrides=overrides, script=script)
        details = (f"rewound to {node} by {by}\n\nreplaces execution `{old_execution}`"
                   + (f"\n\nvars changed: {', '.join(overrides)}" if overrides else ""))
        pinned = found.client.get_workflow_handle(run_id, run_id=old_execution)
        execution = await start_resumed(found.client, found.settings, run_input, run_id=run_id,
                                        task_queue=found.desc.task_queue or found.settings.task_queue,
                                        replace=pinned, running=not closed(found.desc), details=details)
        return RunRewound(run_id=run_id, node=node, replaced_execution=old_execution, execution=execution,
                          outputs=sorted(carried.outputs), vars=overrides, ui_url=web_ui_link(found.settings, run_id))

    async def fork(self, run_id: str, node: str, *, by: str, new_run_id: str | None = None,
                   var_assignments: list[str] | None = None, vars: dict[str, Any] | None = None,
                   script: dict[str, Any] | None = None) -> RunForked:
        """Start a new run of ``run_id``'s workflow at ``node``, seeded with the outputs ``run_id`` had
        recorded before it (its latest main-walk visit); the source run is left alone."""
        from runtime.run_rewind import resumed_input, start_resumed
        from runtime.run_start import new_run_id as make_run_id
        from workflows.contract.rewind import forked

        check_run_id(new_run_id, label="--run-id")  # before any Temporal call: a usage error (exit 2)
        found, source, overrides = await self._resume_source(run_id, node, var_assignments, vars)
        wf = source.run_input.workflow
        carried = _rebuilt(lambda: forked(source.state, wf, node, vars=overrides))
        fork_id = new_run_id or make_run_id(wf)
        run_input = resumed_input(source, carried, kind="fork", node=node, from_run=run_id, by=by,
                                  overrides=overrides, script=script)
        details = (f"forked from run `{run_id}` at {node} by {by}"
                   + (f"\n\nvars changed: {', '.join(overrides)}" if overrides else ""))
        await start_resumed(found.client, found.settings, run_input, run_id=fork_id,
                            task_queue=found.desc.task_queue or found.settings.task_queue,
                            replace=None, running=False, details=details)
        return RunForked(run_id=fork_id, forked_from=run_id, node=node, workflow=wf.name,
                         outputs=sorted(carried.outputs), vars=overrides, ui_url=web_ui_link(found.settings, fork_id))



def _rebuilt(rebuild: Callable[[], RunState]) -> RunState:
    """The state a rewind or fork starts from; a node with no usable checkpoint is `NoRewindPoint`."""
    from workflows.contract.rewind import RewindError

    try:
        return rebuild()
    except RewindError as exc:
        raise NoRewindPoint(str(exc)) from None

# -- the run's state -----------------------------------------------------------------------------


async def current_view(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription,
                       settings: Settings) -> RunView:
    """The run's `state`, with the status corrected when Temporal ended the execution itself."""
    view = await query_state(handle, settings)
    status = effective_status(view.status, desc)
    if status != view.status:
        view = view.model_copy(update={"status": status, "reason": await execution_failure(handle, desc)})
    return view


def run_detail(run_id: str, settings: Settings, desc: WorkflowExecutionDescription, view: RunView,
               run_input: RunInput | None) -> RunDetail:
    """The one run view: the `state` query, Temporal's description of the execution and, when the
    run's input can be read, what the compiled workflow adds (node kinds, budget limits)."""
    wf = run_input.workflow if run_input is not None else None
    nodes = {name: NodeDetail(kind=wf.nodes[name].kind if wf is not None and name in wf.nodes else "",
                              visits=state.visits, status=state.status, attempts=state.attempts,
                              tokens=state.usage.total_tokens, cached_tokens=state.usage.cached_tokens,
                              model_calls=state.usage.calls, cost_usd=round(state.usage.cost_usd, 6),
                              model=state.usage.model, error=state.error, unpriced_calls=state.usage.unpriced_calls)
             for name, state in view.nodes.items()}
    return RunDetail(
        run_id=run_id, workflow=view.workflow, source=view.source, status=view.status, reason=view.reason,
        execution_status=execution_status(desc), task_queue=desc.task_queue,
        started_at=desc.start_time.isoformat() if desc.start_time else None,
        closed_at=desc.close_time.isoformat() if desc.close_time else None,
        current_nodes=view.current_nodes, nodes=nodes,
        open_gates=[GateDetail(gate=g.gate, interaction_id=g.interaction_id, instructions=g.instructions,
                               questions=g.questions, opened_at=g.opened_at, timeout_seconds=g.timeout_seconds,
                               fields=gate_fields(g), answer_command=gate_answer_command(run_id, g))
                    for g in view.open_gates],
        failures=[FailureDetail(**f.model_dump(), retry_command=f"iterloop retry {run_id} --node {f.node}")
                  for f in view.failures],
        answers=view.answers, usage=view.usage, budget=budget_rows(view, wf, _elapsed(desc)),
        loop_counters=view.loop_counters, outputs=view.outputs, artifacts=view.artifacts, vars=view.vars,
        executions=view.executions, ui_url=web_ui_link(settings, run_id), rewind_points=view.rewind_points,
        cost_complete=not view.usage.unpriced_calls, summary=summary_lines(view, run_input),
        paused_by=view.paused_by, budget_wait=view.budget_wait, loop_grants=view.loop_grants)


def summary_lines(view: RunView, run_input: RunInput | None) -> list[str]:
    """The preset's `summary:` lines (kept in the run's options) rendered against the run's state."""
    lines = run_input.options.summary if run_input is not None else []
    if not lines:
        return []
    from runtime.presets import render_summary

    return render_summary(lines, outputs=view.outputs, vars=view.vars, artifacts=view.artifacts)


def budget_rows(view: RunView, wf: Workflow | None, elapsed_seconds: float | None) -> list[BudgetRow]:
    """Each budget dimension: used, and the limit when the workflow sets one."""
    b = wf.budget if wf is not None else None
    if b is not None and view.budget_limits:  # raised while the run ran (`iterloop budget`)
        fields = {"cost_usd": "max_cost_usd", "tokens": "max_tokens", "iterations": "max_iterations",
                  "duration_s": "max_duration_seconds"}
        b = b.model_copy(update={fields[d]: (int(v) if d in ("tokens", "iterations") else v)
                                 for d, v in view.budget_limits.items() if d in fields})
    used = view.budget_used
    rows = [
        BudgetRow(dimension="tokens", used=int(used.get("tokens", view.usage.total_tokens)),
                  limit=(b.max_tokens or None) if b else None),
        BudgetRow(dimension="cost_usd", used=round(used.get("cost_usd", view.usage.cost_usd), 6),
                  limit=(b.max_cost_usd or None) if b else None),
        BudgetRow(dimension="iterations", used=int(used.get("iterations", 0)),
                  limit=(b.max_iterations or None) if b else None),
        BudgetRow(dimension="duration_s", used=round(elapsed_seconds, 1) if elapsed_seconds is not None else None,
                  limit=(b.max_duration_seconds or None) if b else None),
    ]
    if b is not None and b.max_parallel_branches:
        rows.append(BudgetRow(dimension="parallel_branches", used=None, limit=b.max_parallel_branches))
    return rows


def _elapsed(desc: WorkflowExecutionDescription) -> float | None:
    if desc.start_time is None:
        return None
    end = desc.close_time or datetime.now(UTC)
    return max(0.0, (end - desc.start_time).total_seconds())


# -- listing -------------------------------------------------------------------------------------


def visibility_query(status: str | None, *, workflow: str | None = None, gate: str | None = None,
                     schedule: str | None = None) -> str:
    """The visibility query for iterloop runs, optionally with a status, a workflow name, an open gate,
    or the schedule that started them (Temporal's own `TemporalScheduledById`, which it sets on every
    run a schedule starts).

    A run that Temporal ended behind the interpreter's back (terminated, timed out) keeps the
    status it last published, so asking for a status of a live run, or for an open gate, also
    asks for a running execution.

    A workflow or gate filter must be a name as the language spells one (`_FILTER_NAME`): the value
    goes into Temporal's query language, where a quote or a backslash would change the query (or
    make it invalid, which Temporal reports like an outage), so anything else is `InvalidFilter`.
    """
    from workflows.contract.state import SA_OPEN_GATES, SA_STATUS, SA_WORKFLOW, WORKFLOW_TYPE

    query = f'WorkflowType="{WORKFLOW_TYPE}"'
    for label, value, example in (("workflow", workflow, "growth_loop"), ("gate", gate, "approval")):
        if value and not _FILTER_NAME.fullmatch(value):
            raise InvalidFilter(f"{label} filter {value[:80]!r} is not a {label} name (a letter or _, then letters, "
                                f"digits or _); give the name as the .iter file declares it, e.g. {label}={example}")
    for attribute, value in ((SA_STATUS, status), (SA_WORKFLOW, workflow), (SA_OPEN_GATES, gate)):
        if value:
            query += f' AND {attribute}="{_quoted(value)}"'
    if schedule:
        query += f' AND {SCHEDULED_BY}="{_quoted(schedule)}"'
    if gate or (status and status not in TERMINAL_STATUSES):
        query += ' AND ExecutionStatus="Running"'
    return query


#: The search attribute Temporal sets on each workflow a schedule starts: the schedule's id.
SCHEDULED_BY = "TemporalScheduledById"


#: A node or workflow name, as `dsl.lexer` reads one.
_FILTER_NAME = re.compile(r"[^\W\d]\w*")


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def list_summaries(client: Client, settings: Settings, query: str, limit: int) -> list[RunSummary]:
    """The runs matching a visibility ``query`` (at most ``limit``), newest first."""
    from temporalio.common import SearchAttributeKey

    from workflows.contract.state import SA_COST, SA_OPEN_GATES, SA_STATUS, SA_WORKFLOW

    key_wf, key_status = SearchAttributeKey.for_keyword(SA_WORKFLOW), SearchAttributeKey.for_keyword(SA_STATUS)
    key_cost, key_gates = SearchAttributeKey.for_float(SA_COST), SearchAttributeKey.for_keyword_list(SA_OPEN_GATES)
    rows: list[RunSummary] = []
    async with temporal_errors(settings):
        async for execution in client.list_workflows(query, limit=limit, rpc_timeout=RPC_TIMEOUT):
            attrs = execution.typed_search_attributes
            run_status = attrs.get(key_status) or ""
            temporal_status = execution.status.name.lower() if execution.status is not None else ""
            if temporal_status in ("terminated", "timed_out", "failed") and run_status not in TERMINAL_STATUSES:
                run_status = "failed"
            closed_run = temporal_status not in ("", "running")
            rows.append(RunSummary(
                run_id=execution.id, workflow=attrs.get(key_wf) or "", status=run_status or "running",
                execution_status=temporal_status,
                started_at=execution.start_time.isoformat() if execution.start_time else None,
                closed_at=execution.close_time.isoformat() if execution.close_time else None,
                cost_usd=attrs.get(key_cost) or 0.0,
                open_gates=[] if closed_run else list(attrs.get(key_gates) or [])))
    rows.sort(key=lambda r: r.started_at or "", reverse=True)  # visibility lists open runs first
    return rows


# -- following -----------------------------------------------------------------------------------


#: The statuses a run cannot leave by itself: it ended, or it waits for a person (an answer, or a
#: fix and `iterloop retry`). `iterloop events --follow` stops at these.
SETTLED_STATUSES = (*TERMINAL_STATUSES, "failed_resumable", "waiting_human", "waiting_budget", "paused")


async def watch_events(found: FoundRun, after_seq: int, *, poll_seconds: float, status_seconds: float,
                       until: tuple[str, ...] = TERMINAL_STATUSES) -> AsyncIterator[EventBatch]:
    """Look at the run every ``poll_seconds`` until it ends (reaches a status of ``until``): one
    `EventBatch` per look (its new events, often none), then a last one with ``end`` set.

    Each look asks only for the events after the last one seen (the `events` query). Whether the
    run has ended (`describe` and the `state` query) it asks at the first look, when a `run_*`
    event arrives, and otherwise every ``status_seconds`` (a run terminated from outside Temporal
    records no event). Once it has ended, one more `events` query picks up what came meanwhile.
    Problems reaching the run are `CommandError`s (the events already seen have been yielded).
    """
    loop = asyncio.get_running_loop()
    after = after_seq
    checked_at: float | None = None
    while True:
        events: list[Event] = await query_events(found.handle, found.settings, after)
        after = max([after, *(e.seq for e in events)])
        yield EventBatch(events=events)
        if (checked_at is None or loop.time() - checked_at >= status_seconds
                or any(e.type.startswith("run_") for e in events)):
            checked_at = loop.time()
            end = await _ended(found, until)
            if end is not None:
                yield EventBatch(events=await query_events(found.handle, found.settings, after), end=end)
                return
        await asyncio.sleep(poll_seconds)


async def _ended(found: FoundRun, until: tuple[str, ...] = TERMINAL_STATUSES) -> RunEnd | None:
    """The run's status and reason once it has reached one of ``until`` (a terminal one), else None."""
    async with temporal_errors(found.settings, found.handle.id):
        desc = await found.handle.describe(rpc_timeout=RPC_TIMEOUT)
    view = await query_state(found.handle, found.settings)
    status = effective_status(view.status, desc)
    if status not in until:
        return None
    return RunEnd(run_id=found.handle.id, status=status, reason=view.reason if view.status == status else "")


# -- answers -------------------------------------------------------------------------------------


def answer_message(view: RunView, gate: str, values: dict[str, Any], by: str, interaction_id: str | None, *,
                   in_advance: bool = False) -> Answer:
    """The answer bound, as it is sent, to the gate opening the sender sees open (``interaction_id``
    pins one); unbound when the gate is closed, which the run refuses unless ``in_advance``. Binding
    here is what stops a late answer from answering a later opening nobody has seen."""
    from workflows.contract.state import Answer

    if interaction_id is None:
        open_gate = None if in_advance else next((g for g in view.open_gates if g.gate == gate), None)
        interaction_id = open_gate.interaction_id if open_gate else ""
    return Answer(gate=gate, answers=values, answered_by=by, interaction_id=interaction_id, in_advance=in_advance)


def gate_not_open(view: RunView, gate: str, run_id: str) -> str:
    """The run's own words for an answer to a closed gate (`workflows.contract.answers.not_open`)."""
    from workflows.contract.answers import not_open

    last = next((a for a in reversed(view.answers) if a.gate == gate), None)
    return not_open(gate, run_id, last_id=last.interaction_id if last else "",
                    last_by=last.answered_by if last else "", last_at=last.answered_at if last else "")


async def send_answer_update(handle: WorkflowHandle[Any, Any], settings: Settings, message: Answer) -> AnswerRecord:
    """The validated `answer` update: `AnswerRejected` (nothing recorded) when the run refuses it."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.contract.state import AnswerRecord
    from workflows.contract.vocabulary import ERR_GATE_OPENING_CLOSED

    try:
        async with temporal_errors(settings, handle.id):
            return await handle.execute_update("answer", message, result_type=AnswerRecord, rpc_timeout=RPC_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        closed_opening = any(getattr(c, "type", None) == ERR_GATE_OPENING_CLOSED for c in _causes(exc))
        error = GateOpeningClosed if closed_opening else AnswerRejected
        raise error(f"answer rejected: {update_failure_message(exc)}") from None


async def send_control_update(handle: WorkflowHandle[Any, Any], settings: Settings, update: str,
                              request: BudgetRaise | LoopGrant | PauseRequest) -> LiveControl:
    """One live-control update; `ControlRejected` (nothing changed) when the run refuses it."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.contract.state import LiveControl

    try:
        async with temporal_errors(settings, handle.id):
            return await handle.execute_update(update, request, result_type=LiveControl, rpc_timeout=RPC_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise ControlRejected(f"{update.replace('_', ' ')} refused: {update_failure_message(exc)}; "
                              "nothing was changed") from None


def _causes(exc: BaseException) -> list[BaseException]:
    found, cause = [], getattr(exc, "cause", None)
    while cause is not None:
        found.append(cause)
        cause = getattr(cause, "cause", None)
    return found


async def send_answer_signal(handle: WorkflowHandle[Any, Any], settings: Settings, message: Answer) -> None:
    """The idempotent `answer` signal (fire and forget; Slack clicks answer this way)."""
    async with temporal_errors(settings, handle.id):
        await handle.signal("answer", message, rpc_timeout=RPC_TIMEOUT)
