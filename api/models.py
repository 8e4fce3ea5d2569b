"""The REST API's own request and response bodies (they are also the OpenAPI schema).

What the API returns about runs (`RunDetail`, `RunList`, `EventList`, `GateAnswered`,
`RetryRequested`, `CancelRequested`) are the run service's models (`runtime.run_models`): the same
objects `iterloop inspect --json`, `list --json`, `answer --json`, `retry --json` and
`cancel --json` print, so the CLI, the API and the dashboard show the same data. This module holds
what only HTTP has: the request bodies, the start response with its links, health, errors.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dsl.ir import FieldType
from runtime.notify_options import NotifySection
from runtime.run_start import RUN_ID_PATTERN
from workflows.contract.state import RunStatus


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------------


class ErrorDetail(_Body):
    code: str = Field(description="Stable machine-readable code, e.g. `run_not_found`, `answer_rejected`.")
    message: str = Field(description="What went wrong and how to fix it, for people.")
    details: Any = Field(default=None, description="Extra data: validation problems, compile diagnostics.")


class ErrorResponse(_Body):
    error: ErrorDetail


# -- health ---------------------------------------------------------------------------------------


class Health(_Body):
    status: Literal["ok", "degraded"]
    temporal: Literal["reachable", "unreachable"]
    namespace: str
    task_queue: str
    message: str = ""


# -- workflows --------------------------------------------------------------------------------------


class VarInfo(_Body):
    name: str
    type: FieldType
    required: bool
    default: Any = None


class WorkflowInfo(_Body):
    name: str = Field(description="The registered name: the file's stem; start it with {\"workflow\": name}.")
    file: str
    workflow: str = Field(default="", description="The workflow's declared name (`workflow NAME:`).")
    ok: bool = Field(description="False when the file does not compile; `problems` says why.")
    problems: list[str] = Field(default_factory=list)
    vars: list[VarInfo] = Field(default_factory=list)
    gates: list[str] = Field(default_factory=list, description="Its human nodes.")


class WorkflowList(_Body):
    workflows_dir: str | None
    workflows: list[WorkflowInfo]


# -- starting runs -------------------------------------------------------------------------------


class StartRun(_Body):
    """Exactly one of `workflow` (registered), `file` (a path on the API's host) or `source` (the text)."""

    workflow: str | None = Field(default=None, description="A registered workflow (see GET /api/workflows).")
    file: str | None = Field(default=None, description=(
        "Path of a .iter file on the API's host, inside the workflows directory (or ITERLOOP_API_FILE_DIRS); "
        "a relative path starts there."))
    source: str | None = Field(default=None, max_length=512 * 1024, description=(
        "The .iter text itself; refused (403) unless the API runs with ITERLOOP_API_ALLOW_SOURCE=1."))
    vars: dict[str, Any] = Field(default_factory=dict, description=(
        "Values of declared vars, as JSON values of the declared type (`28`, `true`, `[\"a\"]`), or as the "
        "text `iterloop run --var` takes (`\"28\"`)."))
    inputs: dict[str, Any] = Field(default_factory=dict, description="Run inputs (`{{input.…}}`); vars win.")
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN,
                               description="The run's workflow id [default: <workflow>-<8 hex digits>].")
    offline: bool = Field(default=False, description="Use the offline scripted model for every model call.")
    script: dict[str, Any] | None = Field(default=None, description=(
        "Scripted model outputs (node id → output or list of outputs), as `iterloop run --script`; implies offline."))
    config: str | None = Field(default=None, description=(
        "A YAML preset, as `iterloop run --config` (docs/growth-loop.md), inside the presets directory "
        "(ITERLOOP_API_PRESETS_DIR, default the workflows directory); a relative path starts there."))
    skip_gates: bool = Field(default=False, description="Answer every human gate automatically, as --skip-gates.")
    stop_after: list[str] = Field(default_factory=list, description="End the run right after these nodes.")
    notify: NotifySection | None = Field(default=None, description=(
        "Where this run reports (Slack channel, webhooks), over the preset's and the deployment's defaults."))
    workdir: str | None = Field(default=None, max_length=4096, description=(
        "The absolute directory the run's shell commands run in, on the worker's host (as `iterloop run "
        "--workdir`) [default: the worker's own directory]. A worker that cannot see it fails the node, "
        "saying so."))

    @model_validator(mode="after")
    def _one_source(self) -> StartRun:
        given = [k for k in ("workflow", "file", "source") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'workflow' (a registered workflow), 'file' (a .iter path on the "
                             f"API's host) or 'source' (the .iter text); got {', '.join(given) or 'none'}")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise ValueError(f"'workdir' must be an absolute path on the worker's host; got {self.workdir!r}")
        return self


class RunLinks(_Body):
    self: str
    events: str
    stream: str
    report: str
    dashboard: str
    temporal_ui: str

    @classmethod
    def for_run(cls, run_id: str, temporal_ui: str) -> RunLinks:
        q = quote(run_id, safe="")
        return cls(self=f"/api/runs/{q}", events=f"/api/runs/{q}/events", stream=f"/api/runs/{q}/events/stream",
                   report=f"/api/runs/{q}/report", dashboard=f"/runs/{q}", temporal_ui=temporal_ui)


class RunStarted(_Body):
    run_id: str
    workflow: str
    source: str
    status: RunStatus
    task_queue: str
    ui_url: str
    links: RunLinks
    warnings: list[str] = Field(default_factory=list)


# -- acting on runs --------------------------------------------------------------------------------


class AnswerGate(_Body):
    answers: dict[str, Any] = Field(description=(
        "Every field of the gate's output schema: typed JSON values, or text as `iterloop answer` takes it."))
    answered_by: str | None = Field(default=None, max_length=200, description=(
        "On whose behalf the token answers: recorded as `<token name> (for <answered_by>)`; the token's name "
        "alone when it is absent or the same."))
    interaction_id: str | None = Field(default=None, description=(
        "Pin the gate opening you answer (from the run's open_gates); one that is closed or already answered is "
        "refused (409 gate_opening_closed). Without it, the opening open when the request arrives."))
    in_advance: bool = Field(default=False, description=(
        "Answer the gate's next opening while the gate is closed (the answer is kept until it opens). Without "
        "it, an answer to a closed gate is refused (409 gate_opening_closed): it never waits for a later opening."))


class RetryNodes(_Body):
    node: str | None = Field(default=None, description="The parked node to re-run [default: every parked node].")


class RewindRun(_Body):
    """`POST /api/runs/{run_id}/rewind`: resume the run from ``node`` (its latest visit)."""

    node: str = Field(min_length=1, max_length=200, description=(
        "The node to resume from; it and every node after it run again, gates after it open again."))
    vars: dict[str, Any] = Field(default_factory=dict, description=(
        "Vars to change from there on, as JSON values of the declared type or as `--var` text."))
    script: dict[str, Any] | None = Field(default=None, description=(
        "New scripted model outputs (offline runs) from there on, as `iterloop rewind --script`."))


class ForkRun(RewindRun):
    """`POST /api/runs/{run_id}/fork`: a new run starting at ``node`` with the outputs recorded before it."""

    node: str = Field(min_length=1, max_length=200, description="The node the new run starts at.")
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN,
                               description="The new run's workflow id [default: <workflow>-<8 hex digits>].")
