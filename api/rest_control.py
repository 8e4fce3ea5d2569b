"""Live control of a running run under `/api/runs/{run_id}`: raise its budget or grant loop
iterations, pause it at its next node boundary, resume it.

Beside the runs routes (api/rest.py), with the same tokens (a token that may write) and the same
errors; the work is the run service's (runtime/run_service.py, runtime/live_control.py), which
`iterloop budget|pause|resume` use too, so both return the same `ControlApplied`. The run refuses a
change it cannot take (a limit not above the one in force, an unknown loop, a pause of a paused
run) with a 422 `control_rejected`, and nothing is changed then. `docs/api.md` has curl examples.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, recorded_answerer, writer
from api.deps import run_service
from api.json_body import BoundedJsonRoute
from api.models import ErrorResponse
from runtime.live_control import budget_request
from runtime.run_models import ControlApplied
from runtime.run_service import RunService
from workflows.contract.state import PauseRequest

router = APIRouter(prefix="/api", route_class=BoundedJsonRoute, tags=["runs"])

Runs = Annotated[RunService, Depends(run_service)]
Writer = Annotated[Principal, Depends(writer)]
RunId = Annotated[str, Path(description="The run id (its Temporal workflow id).")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorResponse, "description": "The token may not change runs (a read-only token)."},
    404: {"model": ErrorResponse, "description": "No such run."},
    409: {"model": ErrorResponse, "description": "The run has ended (`run_ended`)."},
    413: {"model": ErrorResponse, "description": "The request body is too large."},
    415: {"model": ErrorResponse, "description": "Not JSON."},
    422: {"model": ErrorResponse, "description": (
        "The request is invalid, or the run refused it (`control_rejected`: a limit not above the one in "
        "force, an unknown loop, a paused run paused again); nothing was changed.")},
    503: {"model": ErrorResponse, "description": "Temporal cannot be reached, or no worker answers for the run."},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=200, description=(
        "On whose behalf (recorded as `<token name> (for <by>)`) [default: the token's name]."))
    reason: str = Field(default="", max_length=2000, description="Why (recorded in the run's events).")


class RaiseBudget(_Body):
    """`POST /api/runs/{run_id}/budget`: new limits (each above the one in force) and/or loop grants."""

    max_cost_usd: float | None = Field(default=None, gt=0, description="The new cost limit in US dollars.")
    max_tokens: int | None = Field(default=None, ge=1, description="The new token limit.")
    max_iterations: int | None = Field(default=None, ge=1, description="The new iteration limit.")
    max_duration: str | None = Field(default=None, max_length=50, description="The new duration limit, e.g. `2h`.")
    grant: dict[str, int] = Field(default_factory=dict, description=(
        "Loop name → how many more rounds it may go than its bound, e.g. `{\"refine\": 2}`."))


class PauseOrResume(_Body):
    """`POST /api/runs/{run_id}/pause` and `/resume`: who asks and why (both optional)."""


@router.post("/runs/{run_id}/budget", response_model=ControlApplied, responses=_ERRORS)
async def raise_budget(run_id: RunId, body: RaiseBudget, runs: Runs, who: Writer) -> ControlApplied:
    """Raise the run's limits (only upwards) or grant loops more rounds, as `iterloop budget`: a run
    waiting on its budget (status `waiting_budget`) goes on where it stopped once the raise covers
    what it has spent, without running its finished nodes again."""
    raised, grants = budget_request(
        max_cost_usd=body.max_cost_usd, max_tokens=body.max_tokens, max_iterations=body.max_iterations,
        max_duration=body.max_duration, grants=[f"{loop}={n}" for loop, n in body.grant.items()],
        by=recorded_answerer(who.name, body.by), reason=body.reason)
    return await runs.raise_budget(run_id, raised, grants)


@router.post("/runs/{run_id}/pause", response_model=ControlApplied, responses=_ERRORS)
async def pause_run(run_id: RunId, runs: Runs, who: Writer,
                    body: Annotated[PauseOrResume | None, Body()] = None) -> ControlApplied:
    """Hold the run at its next node boundary (status `paused`) until resumed, as `iterloop pause`."""
    body = body or PauseOrResume()
    return await runs.pause(run_id, PauseRequest(by=recorded_answerer(who.name, body.by), reason=body.reason))


@router.post("/runs/{run_id}/resume", response_model=ControlApplied, responses=_ERRORS)
async def resume_run(run_id: RunId, runs: Runs, who: Writer,
                     body: Annotated[PauseOrResume | None, Body()] = None) -> ControlApplied:
    """Let a paused run go on from the node boundary it holds at, as `iterloop resume`."""
    body = body or PauseOrResume()
    return await runs.resume(run_id, PauseRequest(by=recorded_answerer(who.name, body.by), reason=body.reason))
