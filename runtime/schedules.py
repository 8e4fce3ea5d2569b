"""Schedules: recurring runs of a workflow, as Temporal Schedules.

    service = ScheduleService(runs)                       # over a RunService (its client, settings, workers)
    created = await service.create(prepared, ScheduleRequest(every="7d"))
    detail = await service.describe("growth_loop")        # ScheduleDetail
    await service.pause("growth_loop", note="holidays")   # and unpause, trigger, delete, list

Temporal keeps the schedule and fires it; iterloop only writes its start action. That action is
the start of an ordinary run, built by the same code `iterloop run` uses
(`runtime.run_start.graph_run_start`): the same workflow type, `RunInput`, search attributes and
Web UI details, on the task queue a run would use (`RunService.new_run_target`), so every run it
starts is listed by `iterloop list` and the dashboard and answers every command. Temporal names
each run `<schedule id>-<firing time>` and sets `TemporalScheduledById` on it, which
`iterloop list --schedule ID` filters on; the action's memo says the same (`iterloop_schedule`).

The workflow is compiled when the schedule is created and travels in the action (as a run's
input does), so a schedule keeps running the workflow as it was then: editing the `.iter` file
changes nothing until `iterloop schedule create --replace` (or `POST /api/schedules` with
`replace`) compiles it again. A replace keeps the schedule's history and its paused state.

Only schedules whose action starts an iterloop run are iterloop's: the others in the namespace
are left out of the list and refused by the other commands (`ScheduleNotFound`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dsl.durations import format_duration, parse_duration
from runtime.command_errors import UsageError
from runtime.run_models import RunList, WorkerState
from runtime.run_start import PreparedStart, graph_run_start, missing_search_attributes
from runtime.schedule_models import (
    OVERLAP_POLICIES,
    SCHEDULE_ID_PATTERN,
    OverlapPolicy,
    ScheduleChanged,
    ScheduleCreated,
    ScheduleDetail,
    ScheduledRun,
    ScheduleList,
    ScheduleRequest,
    ScheduleSummary,
)
from runtime.server_address import web_ui_base
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, temporal_errors

if TYPE_CHECKING:
    from temporalio.client import Client, Schedule, ScheduleDescription, ScheduleHandle

    from runtime.run_service import RunService, RunTarget
    from workflows.contract.state import RunInput

#: The memo key each scheduled run carries: the id of the schedule that started it.
MEMO_SCHEDULE = "iterloop_schedule"
#: The memo key of the schedule's cron expression as it was given (Temporal keeps only the calendar
#: it translates it into): `describe` and `list` show it. Runs carry it too, which does no harm.
MEMO_CRON = "iterloop_schedule_cron"

#: Temporal refuses intervals under a second; anything that short is a mistake in a `.iter` loop anyway.
MIN_INTERVAL_SECONDS = 1.0


class ScheduleNotFound(UsageError):
    """No iterloop schedule with that id in the namespace (the API: 404 `schedule_not_found`)."""


class ScheduleExists(UsageError):
    """A schedule with that id exists and the request did not ask to replace it (the API: 409 `schedule_exists`)."""


class InvalidSchedule(UsageError):
    """The schedule's times or policy cannot be used: an unknown interval, a cron expression Temporal refuses."""


# -- checking a request (pure) ---------------------------------------------------------------------


def check_schedule_request(request: ScheduleRequest, *, from_cli: bool) -> ScheduleRequest:
    """``request`` if it can make a schedule; `InvalidSchedule` naming the option (``from_cli``) or
    the field otherwise. Temporal checks the cron expression and the time zone itself, on create."""
    every, cron, sid = (("--every", "--cron", "--id") if from_cli else ("every", "cron", "schedule_id"))
    if not request.every and not request.cron:
        raise InvalidSchedule(f"a schedule needs its times: give {every} (e.g. {every} 7d) or {cron} "
                              f"(e.g. {cron} \"0 9 * * MON\"), or both")
    if request.schedule_id is not None and not re.fullmatch(SCHEDULE_ID_PATTERN, request.schedule_id):
        raise InvalidSchedule(f"{sid} {request.schedule_id[:80]!r} is not a schedule id: 1 to 160 letters, digits and "
                              f"_ . -, starting with a letter or digit (e.g. {sid} weekly-growth)")
    if request.every is not None:
        interval_seconds(request.every, label=every)
    if request.overlap not in OVERLAP_POLICIES:  # the API's body is checked by pydantic; this is for callers in code
        raise InvalidSchedule(f"unknown overlap policy {request.overlap!r}; choose one of {', '.join(OVERLAP_POLICIES)}")
    return request


def interval_seconds(text: str, *, label: str) -> float:
    """The seconds of an interval such as `7d`, `1h30m`, `30s`; `InvalidSchedule` otherwise."""
    seconds = parse_duration(text)
    if seconds is None:
        raise InvalidSchedule(f"{label} {text!r} is not a duration; write a number and a unit (d, h, m, s), "
                              f"e.g. {label} 7d or {label} 1h30m")
    if seconds < MIN_INTERVAL_SECONDS:
        raise InvalidSchedule(f"{label} {text!r} is shorter than a second; Temporal fires at most once a second "
                              f"(give e.g. {label} 30s)")
    return seconds


def schedule_id_for(request: ScheduleRequest, prepared: PreparedStart) -> str:
    """The request's id, or the workflow's name (valid as a schedule id: the language's names are)."""
    return request.schedule_id or prepared.workflow.name


# -- the service -----------------------------------------------------------------------------------


class ScheduleService:
    """Create, list, describe, pause, unpause, trigger and delete the schedules of one Temporal namespace.

    It works through a `RunService`: the same client and settings, the same rule for the task queue
    and the worker of a new run (a command on this machine starts a background worker for the
    schedule's runs, as `iterloop run` does; the API only says when none polls).
    """

    def __init__(self, runs: RunService) -> None:
        self.runs = runs

    @property
    def settings(self) -> Settings:
        return self.runs.settings

    async def create(self, prepared: PreparedStart, request: ScheduleRequest) -> ScheduleCreated:
        """Create the schedule of ``prepared`` runs (or replace the one of that id, with ``replace``)."""
        from temporalio.client import ScheduleAlreadyRunningError, ScheduleUpdate

        given_by_cli = prepared.request.given_by == "command_line"
        check_schedule_request(request, from_cli=given_by_cli)
        schedule_id = schedule_id_for(request, prepared)
        target = await self.runs.new_run_target(prepared)
        settings = target.settings
        schedule = self._schedule(prepared, request, schedule_id, target)
        attributes = _schedule_attributes(prepared)
        replaced = False
        async with schedule_errors(settings, schedule_id, cron=request.cron, from_cli=given_by_cli):
            try:
                await target.client.create_schedule(schedule_id, schedule, search_attributes=attributes,
                                                    rpc_timeout=RPC_TIMEOUT)
            except ScheduleAlreadyRunningError:
                if not request.replace:
                    replace_how = "--replace" if given_by_cli else '"replace": true'
                    other_id = "--id" if given_by_cli else '"schedule_id"'
                    raise ScheduleExists(
                        f"a schedule '{schedule_id}' exists already; give {replace_how} to replace its workflow, vars "
                        f"and times (its history stays), or another {other_id} (see `iterloop schedule describe "
                        f"{schedule_id}`)") from None
                handle = target.client.get_schedule_handle(schedule_id)
                await self._iterloop_schedule(handle, settings)  # never replace another application's schedule

                def keep_state(update: Any) -> ScheduleUpdate:
                    old = update.description.schedule.state
                    schedule.state.paused = old.paused or request.paused
                    schedule.state.note = request.note if request.note is not None else old.note
                    return ScheduleUpdate(schedule=schedule, search_attributes=attributes)

                await handle.update(keep_state, rpc_timeout=RPC_TIMEOUT)
                replaced = True
            except Exception as exc:
                refused = missing_search_attributes(settings, exc)
                if refused is not None:
                    raise refused from None
                raise
            desc = await target.client.get_schedule_handle(schedule_id).describe(rpc_timeout=RPC_TIMEOUT)
        check, no_worker = await self.runs.worker_warnings(target, "its runs wait until one does")
        record = check.record
        compiled = prepared.request.compiled
        return ScheduleCreated(
            schedule_id=schedule_id, workflow=prepared.workflow.name, source=compiled.source, replaced=replaced,
            paused=desc.schedule.state.paused, task_queue=settings.task_queue,
            every=_every(desc.schedule), cron=await _cron(target.client, desc),
            next_runs=_times(desc.info.next_action_times, paused=desc.schedule.state.paused),
            worker=WorkerState(state=check.state, pid=record.pid if record else None,
                               log_path=record.log_path if record else None),
            ui_url=schedule_ui_link(settings, schedule_id),
            warnings=[*compiled.warnings, *prepared.warnings, *no_worker])

    def _schedule(self, prepared: PreparedStart, request: ScheduleRequest, schedule_id: str,
                  target: RunTarget) -> Schedule:
        """The Temporal schedule: its times, its overlap policy, and the start of an ordinary run."""
        from temporalio.client import (
            Schedule,
            ScheduleActionStartWorkflow,
            ScheduleIntervalSpec,
            ScheduleOverlapPolicy,
            SchedulePolicy,
            ScheduleSpec,
            ScheduleState,
        )

        from workflows.contract.state import WORKFLOW_TYPE

        origin = f"scheduled by schedule `{schedule_id}` ({prepared.request.origin})"
        start = graph_run_start(prepared, target.notify, origin=origin)
        action = ScheduleActionStartWorkflow(
            WORKFLOW_TYPE, start.run_input, id=schedule_id, task_queue=target.settings.task_queue,
            typed_search_attributes=start.search_attributes,
            memo={MEMO_SCHEDULE: schedule_id, **({MEMO_CRON: request.cron} if request.cron else {})},
            static_summary=start.static_summary, static_details=start.static_details)
        intervals = ([ScheduleIntervalSpec(every=timedelta(seconds=interval_seconds(request.every, label="every")))]
                     if request.every else [])
        spec = ScheduleSpec(intervals=intervals, cron_expressions=[request.cron] if request.cron else [],
                            time_zone_name=request.time_zone or None)
        return Schedule(action=action, spec=spec,
                        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy[request.overlap.upper()]),
                        state=ScheduleState(paused=request.paused, note=request.note))

    async def list(self, *, limit: int = 100) -> ScheduleList:
        """The iterloop schedules of the namespace, by id (eventually consistent: a schedule created a
        moment ago may take a moment to be listed). Each is described too: the list entry lacks the
        cron expression as it was given."""
        from temporalio.client import ScheduleListActionStartWorkflow

        from workflows.contract.state import WORKFLOW_TYPE

        client = await self.runs.client()
        ids: list[str] = []
        async with temporal_errors(self.settings):
            async for entry in await client.list_schedules(rpc_timeout=RPC_TIMEOUT):
                listed = entry.schedule
                if (listed is not None and isinstance(listed.action, ScheduleListActionStartWorkflow)
                        and listed.action.workflow == WORKFLOW_TYPE):
                    ids.append(entry.id)
                    if len(ids) >= limit:
                        break
        rows: list[ScheduleSummary] = []
        for schedule_id in sorted(ids):
            try:
                detail = await self.describe(schedule_id)
            except ScheduleNotFound:  # deleted since it was listed
                continue
            rows.append(ScheduleSummary(
                schedule_id=schedule_id, workflow=detail.workflow, paused=detail.paused, note=detail.note,
                every=detail.every, cron=detail.cron, next_run_at=next(iter(detail.next_runs), None),
                last_run_id=detail.recent_runs[-1].run_id if detail.recent_runs else None))
        return ScheduleList(schedules=rows)

    async def describe(self, schedule_id: str) -> ScheduleDetail:
        """The schedule: its workflow and vars, times, policy, state, and the runs it started."""
        client = await self.runs.client()
        settings = self.settings
        handle = client.get_schedule_handle(schedule_id)
        desc = await self._iterloop_schedule(handle, settings)
        schedule, info = desc.schedule, desc.info
        action: Any = schedule.action
        run_input = await _action_input(client, action)
        wf = run_input.workflow if run_input is not None else None
        return ScheduleDetail(
            schedule_id=schedule_id, workflow=wf.name if wf else "", source=run_input.source if run_input else "",
            content_hash=wf.content_hash if wf else "", task_queue=action.task_queue,
            offline=run_input is not None and run_input.options.script is not None,
            vars=_vars(run_input), run_inputs=run_input.run_inputs if run_input else {}, every=_every(schedule),
            cron=await _cron(client, desc), time_zone=schedule.spec.time_zone_name or "",
            overlap=_overlap_name(schedule.policy.overlap), paused=schedule.state.paused,
            note=schedule.state.note or "", created_at=info.created_at.isoformat(),
            updated_at=info.last_updated_at.isoformat() if info.last_updated_at else None,
            runs_started=info.num_actions, skipped_overlap=info.num_actions_skipped_overlap,
            missed_catchup=info.num_actions_missed_catchup_window,
            running=[getattr(r, "workflow_id", "") for r in info.running_actions],
            recent_runs=[ScheduledRun(run_id=getattr(r.action, "workflow_id", ""),
                                      scheduled_at=r.scheduled_at.isoformat(), started_at=r.started_at.isoformat())
                         for r in info.recent_actions],
            next_runs=_times(info.next_action_times, paused=schedule.state.paused),
            runs_command=f"iterloop list --schedule {schedule_id}", ui_url=schedule_ui_link(settings, schedule_id))

    async def runs_of(self, schedule_id: str, *, limit: int = 20) -> RunList:
        """The runs the schedule started (from the visibility store, newest first)."""
        client = await self.runs.client()
        await self._iterloop_schedule(client.get_schedule_handle(schedule_id), self.settings)
        return await self.runs.list_runs(schedule=schedule_id, limit=limit)

    async def pause(self, schedule_id: str, note: str | None = None) -> ScheduleChanged:
        """Stop the firings (the run that is going goes on); `unpause` starts them again."""
        handle = await self._handle(schedule_id)
        async with schedule_errors(self.settings, schedule_id):
            await handle.pause(note=note or "paused with iterloop", rpc_timeout=RPC_TIMEOUT)
        return ScheduleChanged(schedule_id=schedule_id, action="paused", message=(
            f"schedule {schedule_id} is paused: it starts no run until `iterloop schedule unpause {schedule_id}` "
            "(runs already going go on)"))

    async def unpause(self, schedule_id: str, note: str | None = None) -> ScheduleChanged:
        """Fire again from the next time on (missed firings are not made up)."""
        handle = await self._handle(schedule_id)
        async with schedule_errors(self.settings, schedule_id):
            await handle.unpause(note=note or "unpaused with iterloop", rpc_timeout=RPC_TIMEOUT)
        return ScheduleChanged(schedule_id=schedule_id, action="unpaused", message=(
            f"schedule {schedule_id} fires again from its next time on"))

    async def trigger(self, schedule_id: str, overlap: OverlapPolicy | None = None) -> ScheduleChanged:
        """Fire once now, even while paused, under the schedule's overlap policy (or ``overlap``)."""
        from temporalio.client import ScheduleOverlapPolicy

        if overlap is not None and overlap not in OVERLAP_POLICIES:
            raise InvalidSchedule(f"unknown overlap policy {overlap!r}; choose one of {', '.join(OVERLAP_POLICIES)}")
        handle = await self._handle(schedule_id)
        policy = ScheduleOverlapPolicy[overlap.upper()] if overlap is not None else None
        async with schedule_errors(self.settings, schedule_id):
            await handle.trigger(overlap=policy, rpc_timeout=RPC_TIMEOUT)
        how = f"overlap policy {overlap}" if overlap else "the schedule's overlap policy"
        return ScheduleChanged(schedule_id=schedule_id, action="triggered", message=(
            f"schedule {schedule_id} fires now, under {how} (with skip, nothing starts while one of its runs is "
            f"still going); see its runs with `iterloop list --schedule {schedule_id}`"))

    async def delete(self, schedule_id: str) -> ScheduleChanged:
        """Remove the schedule; the runs it started are left alone."""
        handle = await self._handle(schedule_id)
        async with schedule_errors(self.settings, schedule_id):
            await handle.delete(rpc_timeout=RPC_TIMEOUT)
        return ScheduleChanged(schedule_id=schedule_id, action="deleted", message=(
            f"schedule {schedule_id} is deleted; the runs it started are left as they are"))

    async def _handle(self, schedule_id: str) -> ScheduleHandle:
        """The handle of an iterloop schedule (`ScheduleNotFound` for any other id)."""
        client = await self.runs.client()
        handle = client.get_schedule_handle(schedule_id)
        await self._iterloop_schedule(handle, self.settings)
        return handle

    async def _iterloop_schedule(self, handle: ScheduleHandle, settings: Settings) -> ScheduleDescription:
        """The schedule's description, if it starts iterloop runs; `ScheduleNotFound` otherwise."""
        from workflows.contract.state import WORKFLOW_TYPE

        async with schedule_errors(settings, handle.id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        workflow = getattr(desc.schedule.action, "workflow", "")
        if workflow != WORKFLOW_TYPE:
            raise ScheduleNotFound(f"schedule '{handle.id}' starts {workflow or 'something other than'} workflows, "
                                   "not iterloop runs; iterloop leaves it alone (see `iterloop schedule list`)")
        return desc


# -- Temporal's answers, in iterloop's words --------------------------------------------------------


@contextlib.asynccontextmanager
async def schedule_errors(settings: Settings, schedule_id: str, *, cron: str | None = None,
                          from_cli: bool = True) -> AsyncIterator[None]:
    """An unknown schedule is `ScheduleNotFound`; times Temporal refuses are `InvalidSchedule`,
    saying which option to fix; other RPC errors are `temporal_errors`'."""
    from temporalio.service import RPCError, RPCStatusCode

    async with temporal_errors(settings):
        try:
            yield
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleNotFound(f"no schedule '{schedule_id}' in namespace '{settings.namespace}' at "
                                       f"{settings.address}; see the schedules with `iterloop schedule list`") from None
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                label, tz = ("--cron", "--timezone") if from_cli else ("cron", "time_zone")
                fix = (f"check {label} {cron!r} (five fields: minute hour day-of-month month day-of-week, e.g. "
                       f"\"0 9 * * MON\"; or @daily, @hourly) and {tz} (an IANA name such as Europe/Paris)"
                       if cron else f"check the schedule's times and {tz}")
                raise InvalidSchedule(f"Temporal refused schedule '{schedule_id}': {exc.message}; {fix}") from None
            raise


def _schedule_attributes(prepared: PreparedStart) -> Any:
    """The schedule's own search attributes: its workflow's name (Temporal's visibility store can find
    a workflow's schedules by it, as it finds its runs)."""
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    from workflows.contract.state import SA_WORKFLOW

    return TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKFLOW),
                                                      prepared.workflow.name)])


async def _action_input(client: Client, action: Any) -> RunInput | None:
    """The run input the schedule's action starts each run with; None if it cannot be read."""
    from workflows.contract.state import RunInput

    try:
        [decoded] = await client.data_converter.decode(list(action.args), [RunInput])
    except Exception:  # an action written by another iterloop version: describe works without it
        return None
    return decoded if isinstance(decoded, RunInput) else None


def _vars(run_input: RunInput | None) -> dict[str, Any]:
    """The vars a run starts with: declared defaults, then the given values (as the run reads them)."""
    if run_input is None:
        return {}
    declared = run_input.workflow.vars
    return {**{n: v.default for n, v in declared.items() if v.has_default},
            **{k: v for k, v in run_input.run_inputs.items() if k in declared}}


async def _cron(client: Client, desc: ScheduleDescription) -> list[str]:
    """The schedule's cron expression as it was given (kept in its action's memo)."""
    payload = (getattr(desc.schedule.action, "memo", None) or {}).get(MEMO_CRON)
    if payload is None:
        return []
    try:
        [cron] = await client.data_converter.decode([payload], [str])
    except Exception:
        return []
    return [cron] if isinstance(cron, str) else []


def _every(schedule: Any) -> list[str]:
    return [format_duration(i.every.total_seconds()) for i in schedule.spec.intervals]


def _times(times: Any, *, paused: bool) -> list[str]:
    """Next firing times, none while paused (Temporal lists them anyway)."""
    return [] if paused else [t.isoformat() for t in times]


def _overlap_name(policy: Any) -> OverlapPolicy:
    name = policy.name.lower()
    return name if name in OVERLAP_POLICIES else "skip"  # type: ignore[return-value]


def schedule_ui_link(settings: Settings, schedule_id: str) -> str:
    """The schedule's page in Temporal's Web UI."""
    from urllib.parse import quote

    base = web_ui_base(settings)
    return f"{base}/namespaces/{quote(settings.namespace, safe='')}/schedules/{quote(schedule_id, safe='')}"

