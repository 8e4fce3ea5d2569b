"""The REST API's schedules under `/api/schedules`: recurring runs as Temporal Schedules.

Beside the runs routes (api/rest.py), with the same tokens (reading: any token; changing: a token
that may write) and the same trust boundary: the run a schedule starts is described by a
`POST /api/runs` body (`run`), compiled and confined by the same code (`api.workflow_sources`).
The work is the schedule service's (runtime/schedules.py), which `iterloop schedule` uses too, so
both return the same models. `docs/api.md` documents the endpoints with curl examples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Principal, reader, writer
from api.deps import api_settings, run_service
from api.errors import Conflict, NotFound, Unprocessable
from api.json_body import BoundedJsonRoute
from api.models import ErrorResponse, StartRun
from api.settings import ApiSettings
from api.workflow_sources import start_request
from runtime.run_models import RunList
from runtime.run_service import RunService
from runtime.schedule_models import (
    SCHEDULE_ID_PATTERN,
    OverlapPolicy,
    ScheduleChanged,
    ScheduleCreated,
    ScheduleDetail,
    ScheduleList,
    ScheduleRequest,
)
from runtime.schedules import InvalidSchedule, ScheduleExists, ScheduleNotFound, ScheduleService

router = APIRouter(prefix="/api", route_class=BoundedJsonRoute, tags=["schedules"])


# -- bodies ----------------------------------------------------------------------------------------


class CreateSchedule(ScheduleRequest):
    """`POST /api/schedules`: when to fire (`every` and/or `cron`) and the run each firing starts."""

    schedule_id: str | None = Field(default=None, pattern=SCHEDULE_ID_PATTERN, description=(
        "The schedule's id [default: the workflow's name]; its runs are `<id>-<firing time>`."))
    run: StartRun = Field(description=(
        "The run each firing starts, as a `POST /api/runs` body (without `run_id`): `workflow`, `file` or "
        "`source`, `vars`, `inputs`, `config`, `offline`, `script`, `skip_gates`, `stop_after`, `notify`, `workdir`."))

    @model_validator(mode="after")
    def _no_run_id(self) -> CreateSchedule:
        if self.run.run_id is not None:
            raise ValueError("run.run_id: a scheduled run's id is `<schedule id>-<firing time>`; leave run_id out "
                             "and name the schedule with schedule_id")
        return self


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleNote(_Body):
    note: str | None = Field(default=None, max_length=1000, description="Why (shown by describe).")


class TriggerSchedule(_Body):
    overlap: OverlapPolicy | None = Field(default=None, description=(
        "The overlap policy for this firing [default: the schedule's; with `skip`, nothing starts while one of "
        "its runs is still going]."))


# -- errors ----------------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorResponse, "description": "The token may not do this (read-only token, dashboard session)."},
    503: {"model": ErrorResponse, "description": "Temporal cannot be reached."},
}
_ONE: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 404: {"model": ErrorResponse, "description": "No iterloop schedule with this id (`schedule_not_found`)."}}
_ACT: dict[int | str, dict[str, Any]] = {
    **_ONE, 415: {"model": ErrorResponse, "description": (
        "Not JSON: every POST and DELETE under /api needs 'Content-Type: application/json' (or an "
        "'X-Requested-With' header).")}}


@contextlib.contextmanager
def _schedule_errors() -> Iterator[None]:
    """The schedule service's errors with their own HTTP status and code."""
    try:
        yield
    except ScheduleNotFound as exc:
        raise NotFound(str(exc), code="schedule_not_found") from None
    except ScheduleExists as exc:
        raise Conflict(str(exc), code="schedule_exists") from None
    except InvalidSchedule as exc:
        raise Unprocessable(str(exc), code="invalid_schedule") from None


def schedule_service(runs: Annotated[RunService, Depends(run_service)]) -> ScheduleService:
    """The schedule service over the app's run service (its client, its task queue)."""
    return ScheduleService(runs)


Schedules = Annotated[ScheduleService, Depends(schedule_service)]
Config = Annotated[ApiSettings, Depends(api_settings)]
Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
ScheduleId = Annotated[str, Path(description="The schedule id.", pattern=SCHEDULE_ID_PATTERN)]


# -- routes ----------------------------------------------------------------------------------------


@router.get("/schedules", response_model=ScheduleList, responses=_ERRORS)
async def list_schedules(schedules: Schedules, _: Reader,
                         limit: Annotated[int, Query(ge=1, le=500)] = 100) -> ScheduleList:
    """The iterloop schedules of the namespace, by id (eventually consistent: a schedule created a
    moment ago may take a moment to be listed)."""
    with _schedule_errors():
        return await schedules.list(limit=limit)


@router.post("/schedules", response_model=ScheduleCreated, status_code=201, responses={
    **_ACT, 409: {"model": ErrorResponse, "description": "A schedule with this id exists and `replace` is not set."},
    422: {"model": ErrorResponse, "description": (
        "The times are unusable (`invalid_schedule`), the workflow does not compile (`compile_errors`), or a var "
        "is invalid.")}})
async def create_schedule(body: CreateSchedule, schedules: Schedules, settings: Config,
                          who: Writer) -> ScheduleCreated:
    """Create a schedule that starts a run at each firing, as `iterloop schedule create`.

    The workflow is compiled now and each firing runs it as it is now; to change it, post again with
    `replace: true` (the schedule's history and paused state stay). The runs are ordinary runs named
    `<id>-<firing time>` (see `GET /api/schedules/{id}/runs`); they go to the API's task queue, where a
    worker must poll when the schedule fires.
    """
    request = start_request(settings, body.run, started_by=who.name).model_copy(
        update={"origin": f"created through the iterloop REST API by {who.name}"})
    times = ScheduleRequest.model_validate(body.model_dump(exclude={"run"}))
    with _schedule_errors():
        prepared = schedules.runs.prepare(request)
        return await schedules.create(prepared, times)


@router.get("/schedules/{schedule_id}", response_model=ScheduleDetail, responses=_ONE)
async def get_schedule(schedule_id: ScheduleId, schedules: Schedules, _: Reader) -> ScheduleDetail:
    """The schedule: its workflow and vars, times, overlap policy, state, recent and next runs
    (what `iterloop schedule describe --json` prints)."""
    with _schedule_errors():
        return await schedules.describe(schedule_id)


@router.get("/schedules/{schedule_id}/runs", response_model=RunList, responses=_ONE)
async def get_schedule_runs(schedule_id: ScheduleId, schedules: Schedules, _: Reader,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> RunList:
    """The runs the schedule started, newest first (as `iterloop list --schedule ID`)."""
    with _schedule_errors():
        return await schedules.runs_of(schedule_id, limit=limit)


@router.delete("/schedules/{schedule_id}", response_model=ScheduleChanged, responses=_ACT)
async def delete_schedule(schedule_id: ScheduleId, schedules: Schedules, _: Writer) -> ScheduleChanged:
    """Delete the schedule; the runs it started are left alone."""
    with _schedule_errors():
        return await schedules.delete(schedule_id)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleChanged, responses=_ACT)
async def pause_schedule(schedule_id: ScheduleId, schedules: Schedules, _: Writer,
                         body: Annotated[ScheduleNote | None, Body()] = None) -> ScheduleChanged:
    """Stop the schedule's firings (a run already going goes on)."""
    with _schedule_errors():
        return await schedules.pause(schedule_id, body.note if body else None)


@router.post("/schedules/{schedule_id}/unpause", response_model=ScheduleChanged, responses=_ACT)
async def unpause_schedule(schedule_id: ScheduleId, schedules: Schedules, _: Writer,
                           body: Annotated[ScheduleNote | None, Body()] = None) -> ScheduleChanged:
    """Let the schedule fire again from its next time on."""
    with _schedule_errors():
        return await schedules.unpause(schedule_id, body.note if body else None)


@router.post("/schedules/{schedule_id}/trigger", response_model=ScheduleChanged, responses=_ACT)
async def trigger_schedule(schedule_id: ScheduleId, schedules: Schedules, _: Writer,
                           body: Annotated[TriggerSchedule | None, Body()] = None) -> ScheduleChanged:
    """Fire the schedule once now, even while paused."""
    with _schedule_errors():
        return await schedules.trigger(schedule_id, body.overlap if body else None)
