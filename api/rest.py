"""The REST API under `/api`: start, list, inspect, answer, retry, cancel, rewind, fork, report and stream runs.

`docs/api.md` documents every endpoint with curl examples; `/openapi.json` is the schema.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from api.auth import Principal, reader, recorded_answerer, writer
from api.deps import api_settings, run_service
from api.errors import Conflict
from api.event_stream import stream_events as sse_stream
from api.json_body import BoundedJsonRoute
from api.models import (
    AnswerGate,
    ErrorResponse,
    ForkRun,
    Health,
    RetryNodes,
    RewindRun,
    RunLinks,
    RunStarted,
    StartRun,
    WorkflowList,
)
from api.settings import ApiSettings
from api.workflow_sources import describe_registered, start_request
from runtime.command_errors import CommandError, RunAlreadyExists, TemporalUnavailable, short_error
from runtime.run_models import (
    CancelRequested,
    EventList,
    GateAnswered,
    RetryRequested,
    RunDetail,
    RunForked,
    RunList,
    RunRewound,
)
from runtime.run_service import RunService
from workflows.contract.state import RunStatus

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorResponse, "description": (
        "The token may not do this (read-only token, dashboard session), or the request names a file outside the "
        "allowed directories, or sends .iter text while ITERLOOP_API_ALLOW_SOURCE is off.")},
    413: {"model": ErrorResponse, "description": "The request body is too large."},
    422: {"model": ErrorResponse, "description": "The request is invalid; the message says what to change."},
    503: {"model": ErrorResponse, "description": "Temporal cannot be reached, or no worker answers for the run."},
}
_RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 404: {"model": ErrorResponse, "description": "No such run."}}
_NOT_JSON: dict[int | str, dict[str, Any]] = {415: {"model": ErrorResponse, "description": (
    "Not JSON: every POST under /api needs 'Content-Type: application/json' (or an 'X-Requested-With' header).")}}
_ACT_ERRORS: dict[int | str, dict[str, Any]] = {
    **_RUN_ERRORS, **_NOT_JSON,
    409: {"model": ErrorResponse, "description": "The run's state does not allow it (it has ended…)."}}

router = APIRouter(prefix="/api", route_class=BoundedJsonRoute)  # bodies: bounded JSON, no NaN

HEALTH_TIMEOUT = timedelta(seconds=5)

Runs = Annotated[RunService, Depends(run_service)]
Config = Annotated[ApiSettings, Depends(api_settings)]
Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
RunId = Annotated[str, Path(description="The run id (its Temporal workflow id).")]


@router.get("/health", response_model=Health, tags=["service"],
            responses={503: {"model": Health, "description": "Temporal cannot be reached."}})
async def health(runs: Runs) -> Any:
    """Whether the API can reach Temporal (no authentication: for load balancers and compose health checks)."""
    settings = runs.settings
    try:
        client = await runs.client()
        if not await client.service_client.check_health(timeout=HEALTH_TIMEOUT):
            raise TemporalUnavailable(f"Temporal at {runs.settings.address} reports it is not serving")
    except CommandError as exc:
        body = Health(status="degraded", temporal="unreachable", namespace=settings.namespace,
                      task_queue=settings.task_queue, message=str(exc))
        return JSONResponse(body.model_dump(), status_code=503)
    except Exception as exc:  # the connected client's RPC failed: the server went away
        body = Health(status="degraded", temporal="unreachable", namespace=settings.namespace,
                      task_queue=settings.task_queue, message=f"Temporal at {settings.address}: {short_error(exc)}")
        return JSONResponse(body.model_dump(), status_code=503)
    settings = runs.settings
    return Health(status="ok", temporal="reachable", namespace=settings.namespace, task_queue=settings.task_queue)


@router.get("/workflows", response_model=WorkflowList, tags=["workflows"], responses=_ERRORS)
async def list_workflows(settings: Config, _: Reader) -> WorkflowList:
    """The registered workflows (the `.iter` files of ITERLOOP_WORKFLOWS_DIR), their vars and gates."""
    return WorkflowList(workflows_dir=str(settings.workflows_dir) if settings.workflows_dir else None,
                        workflows=describe_registered(settings))


@router.post("/runs", response_model=RunStarted, status_code=201, tags=["runs"],
             responses={**_ERRORS, **_NOT_JSON, 409: {"model": ErrorResponse, "description": "The run id is taken."}})
async def start_run(body: StartRun, runs: Runs, settings: Config, who: Writer) -> RunStarted:
    """Start a run of a registered workflow, a `.iter` file of the allowed directories, or `.iter`
    text (only with ITERLOOP_API_ALLOW_SOURCE=1); docs/api.md, "the trust boundary".

    Vars are checked against their declarations before anything starts (422 with the reason);
    compile errors are a 422 whose `details` lists the diagnostics.
    """
    prepared = runs.prepare(start_request(settings, body, started_by=who.name))
    try:
        started = await runs.start(prepared)
    except RunAlreadyExists:
        raise Conflict(f"a run with id '{body.run_id}' already exists; run ids are never reused, choose another "
                       "run_id", code="run_exists") from None
    compiled = prepared.request.compiled
    return RunStarted(run_id=started.run_id, workflow=compiled.workflow.name, source=compiled.source,
                      status=started.status, task_queue=started.task_queue, ui_url=started.ui_url,
                      links=RunLinks.for_run(started.run_id, started.ui_url),
                      warnings=[*compiled.warnings, *prepared.warnings, *started.warnings])


@router.get("/runs", response_model=RunList, tags=["runs"], responses=_ERRORS)
async def list_runs(
    runs: Runs, _: Reader,
    status: Annotated[RunStatus | None, Query(description="Only runs with this status.")] = None,
    workflow: Annotated[str | None, Query(max_length=200, description="Only runs of this workflow name.")] = None,
    gate: Annotated[str | None, Query(max_length=200, description="Only runs with this gate open.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunList:
    """Runs from Temporal's visibility store, newest first (eventually consistent: a run that just
    changed status may take a moment to show under its new one)."""
    return await runs.list_runs(status=status, workflow=workflow, gate=gate, limit=limit)


@router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"], responses=_RUN_ERRORS)
async def get_run(run_id: RunId, runs: Runs, _: Reader) -> RunDetail:
    """The run's state: status, nodes, open gates (with their fields), failures, outputs, usage, budget
    (what `iterloop inspect --json` prints)."""
    return (await runs.inspect(run_id)).detail


@router.get("/runs/{run_id}/events", response_model=EventList, tags=["runs"], responses=_RUN_ERRORS)
async def get_events(run_id: RunId, runs: Runs, _: Reader,
                     after_seq: Annotated[int, Query(ge=0, description="Only events after this seq.")] = 0) -> EventList:
    """The run's events (the latest 2,000 are kept)."""
    return await runs.events(run_id, after_seq)


@router.get("/runs/{run_id}/events/stream", tags=["runs"], response_class=StreamingResponse,
            responses={**_RUN_ERRORS, 200: {"content": {"text/event-stream": {}},
                                            "description": "Server-sent events until the run ends."}})
async def stream_events(
    run_id: RunId, runs: Runs, _: Reader,
    after_seq: Annotated[int, Query(ge=0, description="Start after this seq.")] = 0,
    last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> StreamingResponse:
    """Server-sent events: each run event (`id` = its seq, `data` = the event as JSON), then
    `event: end` with the final status when the run ends. A reconnect with `Last-Event-ID`
    resumes after that event."""
    found = await runs.find(run_id)
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return StreamingResponse(sse_stream(found, max(after_seq, resume)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/runs/{run_id}/report", response_class=PlainTextResponse, tags=["runs"],
            responses={**_RUN_ERRORS, 200: {"content": {"text/markdown": {}}, "description": "The Markdown report."}})
async def get_report(run_id: RunId, runs: Runs, _: Reader) -> PlainTextResponse:
    """The Markdown run report, as `iterloop report` writes it."""
    text = await runs.report(run_id)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.post("/runs/{run_id}/gates/{gate}/answer", response_model=GateAnswered, tags=["runs"],
             responses={**_ACT_ERRORS, 409: {"model": ErrorResponse, "description": (
                 "The run has ended, or the gate opening is closed (`gate_opening_closed`): answered already "
                 "(the message says by whom and when), or the gate is not open and `in_advance` is not set.")}})
async def answer_gate(run_id: RunId, gate: Annotated[str, Path(description="The human node.")], body: AnswerGate,
                      runs: Runs, who: Writer) -> GateAnswered:
    """Answer a human gate's open opening through the run's validated update: an unknown gate or
    field, a missing field, a wrong type or a value outside the enum is a 422 with the reason, and
    nothing is recorded. Each opening takes one answer: an opening already answered ("already
    answered by … at …"), or a closed gate without `in_advance`, is a 409 `gate_opening_closed`.
    The answer is recorded as by the token's name (`ada`; `ada (for grace)` when `answered_by` names
    someone else)."""
    return await runs.answer(run_id, gate, body.answers, by=recorded_answerer(who.name, body.answered_by),
                             interaction_id=body.interaction_id, in_advance=body.in_advance)


@router.post("/runs/{run_id}/retry", response_model=RetryRequested, tags=["runs"], responses=_ACT_ERRORS)
async def retry_run(run_id: RunId, runs: Runs, _: Writer,
                    body: Annotated[RetryNodes | None, Body()] = None) -> RetryRequested:
    """Re-run the node(s) a run parked on (status failed_resumable), once the cause is fixed."""
    return await runs.retry(run_id, body.node if body else None)


@router.post("/runs/{run_id}/cancel", response_model=CancelRequested, tags=["runs"], responses=_ACT_ERRORS)
async def cancel_run(run_id: RunId, runs: Runs, _: Writer) -> CancelRequested:
    """Cancel a run wherever it is; it ends with status cancelled."""
    return await runs.cancel(run_id)


def _script(script: dict[str, Any] | None) -> dict[str, Any] | None:
    """A request's scripted outputs, shape-checked as `iterloop run --script` checks a file."""
    if script is None:
        return None
    from runtime.command_errors import InvalidScript
    from workflows.contract.scripts import script_shape_problem

    problem = script_shape_problem(script)
    if problem is not None:
        raise InvalidScript(f"script: {problem}")
    return script


@router.post("/runs/{run_id}/rewind", response_model=RunRewound, tags=["runs"], responses={
    **_ACT_ERRORS, 422: {"model": ErrorResponse, "description": (
        "The node is unknown or has no rewind point (`no_rewind_point`), or a var or the script is invalid.")}})
async def rewind_run(run_id: RunId, body: RewindRun, runs: Runs, who: Writer) -> RunRewound:
    """Resume the run from an earlier node with the outputs recorded before it, as `iterloop rewind`:
    the current execution ends and a new one of the same run id starts at the node; human gates after
    it open again (answers given before are not reused)."""
    return await runs.rewind(run_id, body.node, by=who.name, vars=body.vars, script=_script(body.script))


@router.post("/runs/{run_id}/fork", response_model=RunForked, status_code=201, tags=["runs"], responses={
    **_ACT_ERRORS, 409: {"model": ErrorResponse, "description": "The new run id is taken."},
    422: {"model": ErrorResponse, "description": (
        "The node is unknown or has no rewind point (`no_rewind_point`), or a var or the script is invalid.")}})
async def fork_run(run_id: RunId, body: ForkRun, runs: Runs, who: Writer) -> RunForked:
    """Start a new run at a node of this run, seeded with the outputs it recorded before the node, as
    `iterloop fork`; this run is left alone."""
    return await runs.fork(run_id, body.node, by=who.name, new_run_id=body.run_id, vars=body.vars,
                           script=_script(body.script))
