"""What schedules are made of and what the schedule service returns (`runtime.schedules`).

`ScheduleRequest` is a schedule as its caller asks for it (the times, the overlap policy, its id);
the run it starts at each firing is an ordinary `StartRequest` (runtime/run_start.py), so a
schedule takes exactly what `iterloop run` and `POST /api/runs` take. The results are printed by
`iterloop schedule … --json` and returned by the `/api/schedules` routes as they are, so the CLI
and the API cannot drift apart; their field descriptions are the OpenAPI schema's.

Pure pydantic: checking a request (`check_schedule_request`) and building results from Temporal's
answers is the schedule service's job.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from runtime.run_models import WorkerState

#: What happens when a firing comes while the schedule's previous run is still going (Temporal's
#: overlap policies, spelled as the command line takes them). `skip` is the default: a weekly loop
#: that is still waiting for a human answer must not be started a second time beside itself.
OverlapPolicy = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"]
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)

#: What a schedule id may be: it names the schedule in commands and URLs, and each run it starts is
#: `<id>-<firing time, RFC 3339>` (about 21 more characters), which must still be a run id.
MAX_SCHEDULE_ID_LENGTH = 160
SCHEDULE_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_SCHEDULE_ID_LENGTH - 1}}}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleRequest(_Model):
    """When and how a schedule starts its runs (checked by `runtime.schedules.check_schedule_request`)."""

    schedule_id: str | None = Field(default=None, description=(
        "The schedule's id [default: the workflow's name]; its runs are `<id>-<firing time>`."))
    every: str | None = Field(default=None, description="Fire every this long: a duration such as `7d`, `1h`, `30s`.")
    cron: str | None = Field(default=None, description=(
        'Fire at these times: a cron expression such as `0 9 * * MON` (minute hour day-of-month month '
        'day-of-week) or `@daily`.'))
    time_zone: str | None = Field(default=None, description="The IANA time zone of `cron` [default: UTC].")
    overlap: OverlapPolicy = Field(default="skip", description=(
        "What a firing does while the previous run is still going: `skip` it (default), `buffer_one` or "
        "`buffer_all` (start after it ends), `cancel_other`, `terminate_other`, or `allow_all`."))
    note: str | None = Field(default=None, max_length=1000, description="Why the schedule exists, shown by describe.")
    paused: bool = Field(default=False, description="Create it paused (nothing fires until it is unpaused).")
    replace: bool = Field(default=False, description=(
        "Replace the workflow, vars and times of the schedule with this id, if there is one (its history "
        "and paused state stay)."))


class ScheduledRun(_Model):
    """One run a schedule started."""

    run_id: str
    scheduled_at: str = Field(description="The firing time the run is for.")
    started_at: str = Field(description="When Temporal started it.")


class ScheduleSummary(_Model):
    """A schedule as `iterloop schedule list` shows it."""

    schedule_id: str
    workflow: str = Field(description="The workflow's name (as `workflow NAME:` declares it).")
    paused: bool
    note: str = ""
    every: list[str] = Field(default_factory=list, description="Its intervals, e.g. `7d`.")
    cron: list[str] = Field(default_factory=list, description="Its cron expressions.")
    next_run_at: str | None = Field(default=None, description="When it fires next (none while paused).")
    last_run_id: str | None = Field(default=None, description="The run it started last.")


class ScheduleList(_Model):
    schedules: list[ScheduleSummary]


class ScheduleDetail(_Model):
    """A schedule as `iterloop schedule describe` and `GET /api/schedules/{id}` show it."""

    schedule_id: str
    workflow: str
    source: str = Field(description="The .iter file it was created from: its runs run the workflow compiled then.")
    content_hash: str = Field(default="", description="The compiled workflow's content hash.")
    task_queue: str
    offline: bool = Field(description="Its runs use the scripted model.")
    vars: dict[str, Any] = Field(default_factory=dict, description=(
        "The vars each run starts with: the declared defaults, under what the schedule was created with."))
    run_inputs: dict[str, Any] = Field(default_factory=dict, description="What the schedule was created with (vars, inputs).")
    every: list[str] = Field(default_factory=list)
    cron: list[str] = Field(default_factory=list)
    time_zone: str = ""
    overlap: OverlapPolicy
    paused: bool
    note: str = ""
    created_at: str
    updated_at: str | None = None
    runs_started: int = Field(description="How many runs it has started.")
    skipped_overlap: int = Field(description="Firings skipped because the previous run was still going.")
    missed_catchup: int = Field(description="Firings missed while Temporal was unavailable for too long.")
    running: list[str] = Field(default_factory=list, description="Its runs that are still going.")
    recent_runs: list[ScheduledRun] = Field(default_factory=list, description="Its latest runs (up to 10), oldest first.")
    next_runs: list[str] = Field(default_factory=list, description="Its next firing times (none while paused).")
    runs_command: str = Field(description="The command that lists every run it started.")
    ui_url: str = Field(description="The schedule in Temporal's Web UI.")


class ScheduleCreated(_Model):
    """A schedule the service created (or replaced)."""

    schedule_id: str
    workflow: str
    source: str
    replaced: bool = Field(description="An existing schedule of this id was replaced.")
    paused: bool
    task_queue: str
    every: list[str] = Field(default_factory=list)
    cron: list[str] = Field(default_factory=list)
    next_runs: list[str] = Field(default_factory=list, description="Its next firing times (none while paused).")
    worker: WorkerState
    ui_url: str
    warnings: list[str] = Field(default_factory=list, description=(
        "What creating it found: compile warnings, `${NAME}` defaults that resolved to nothing, no worker."))


class ScheduleChanged(_Model):
    """What pause, unpause, trigger and delete did."""

    schedule_id: str
    action: Literal["paused", "unpaused", "triggered", "deleted"]
    message: str = Field(description="What happens now, for people.")
