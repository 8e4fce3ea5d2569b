"""What the run service returns: one typed model per answer, serialised by both of its callers.

`iterloop inspect --json` prints `RunDetail.model_dump(mode="json")` and `GET /api/runs/{id}`
returns the same `RunDetail` (FastAPI serialises it with the same keys), so the terminal, the
REST API and the dashboard cannot drift apart; likewise `list --json` and `GET /api/runs` (the
rows of `RunList`), `answer --json` and the gate-answer endpoint (`GateAnswered`), `retry` and
`cancel`. The models reuse the shapes of the `state` query (`workflows.contract.state`), and they
are the REST API's OpenAPI schema, so their field descriptions are for API users too.

Pure pydantic: building them from Temporal's answers is `runtime.run_service`'s job.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import SchemaField
from workflows.contract.messages import Usage
from workflows.contract.state import AnswerRecord, Event, RunStatus


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- one run ---------------------------------------------------------------------------------------


class NodeDetail(_Result):
    """One node of a run: its kind, visits, status, retries, tokens and cost."""

    kind: str
    visits: int
    status: str
    attempts: int
    tokens: int
    cached_tokens: int = 0
    model_calls: int = 0
    cost_usd: float
    model: str
    error: str
    #: Calls of a model with no known price (0 USD each): the node's cost is incomplete.
    unpriced_calls: int = 0


class GateDetail(_Result):
    """An open human gate: what it asks, the answer's fields, and the command that answers it."""

    gate: str
    interaction_id: str
    instructions: str
    questions: dict[str, Any]
    opened_at: str
    timeout_seconds: float | None
    fields: list[SchemaField] = Field(description="The answer's fields; every one is required.")
    answer_command: str


class FailureDetail(_Result):
    """A node the run parked on (failed_resumable), with the command that retries it."""

    node: str
    branch: str = ""
    error: str
    error_type: str = ""
    at: str = ""
    retry_command: str


class BudgetRow(_Result):
    """One budget dimension: what the run used, and the workflow's limit (None: no limit)."""

    dimension: str
    used: int | float | None  # tokens and iterations are counts, cost and duration are not
    limit: int | float | None


class RunDetail(_Result):
    """The `state` query, completed with Temporal's view of the execution (`iterloop inspect --json`,
    `GET /api/runs/{run_id}`)."""

    run_id: str
    workflow: str
    source: str
    status: RunStatus
    reason: str
    execution_status: str
    task_queue: str
    started_at: str | None
    closed_at: str | None
    current_nodes: list[str]
    nodes: dict[str, NodeDetail]
    open_gates: list[GateDetail]
    failures: list[FailureDetail]
    answers: list[AnswerRecord]
    usage: Usage
    budget: list[BudgetRow]
    loop_counters: dict[str, int]
    outputs: dict[str, dict[str, Any]]
    artifacts: dict[str, dict[str, Any]]
    vars: dict[str, Any]
    rewind_points: list[str] = Field(default_factory=list, description=(
        "The nodes `rewind --to` and `fork --at` can name (each node's latest visit on the main walk), in order."))
    executions: int
    ui_url: str
    #: False when a model had no price (``usage.unpriced_calls``): ``usage.cost_usd`` is a lower bound.
    cost_complete: bool = True
    #: The preset's `summary:` lines rendered against the run (`--config`; empty without one).
    summary: list[str] = Field(default_factory=list)
    #: Live control: who paused the run (empty: not paused), why it waits for a budget raise and
    #: how to give one (status waiting_budget), extra rounds granted per loop.
    paused_by: str = ""
    budget_wait: str = ""
    loop_grants: dict[str, int] = Field(default_factory=dict)


class RunReport(_Result):
    """`iterloop report` (`--json`): the Markdown report and what it is made of."""

    run_id: str
    workflow: str
    status: str
    reason: str
    markdown: str
    summary: list[str] = Field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    usage: Usage
    cost_complete: bool = True


# -- many runs -------------------------------------------------------------------------------------


class RunSummary(_Result):
    """A run as Temporal's visibility store lists it (`iterloop list --json` prints these rows)."""

    run_id: str
    workflow: str
    status: str
    execution_status: str
    started_at: str | None
    closed_at: str | None
    cost_usd: float
    open_gates: list[str]


class RunList(_Result):
    runs: list[RunSummary]
    query: str = Field(description="The Temporal visibility query used (works in the Web UI too).")


# -- events ----------------------------------------------------------------------------------------


class EventList(_Result):
    run_id: str
    events: list[Event]
    last_seq: int = Field(description="Pass it as `after_seq` to get only newer events.")


class RunEnd(_Result):
    """How a followed run ended: its terminal status and the reason it gives."""

    run_id: str
    status: str
    reason: str


class EventBatch(_Result):
    """What one look at a followed run found: the new events, and ``end`` once it has ended."""

    events: list[Event] = Field(default_factory=list)
    end: RunEnd | None = None


# -- acting on runs --------------------------------------------------------------------------------


class GateAnswered(_Result):
    """An answer the run accepted through its validated `answer` update."""

    run_id: str
    gate: str
    interaction_id: str
    answers: dict[str, Any]
    answered_by: str
    answered_at: str
    gate_open: bool = Field(description="False: the gate was not open; the answer was sent in advance and is kept "
                                        "for its next opening.")


class AnswerSignalled(_Result):
    """An answer sent as the fire-and-forget `answer` signal: the run checks it when it reads it."""

    run_id: str
    gate: str
    sent: Literal["signal"] = "signal"
    answers: dict[str, Any]
    answered_by: str
    gate_open: bool


class RetryRequested(_Result):
    run_id: str
    retried: list[str]


class ControlApplied(_Result):
    """`iterloop budget|pause|resume` (`POST /api/runs/{id}/budget|pause|resume`): what the run now has."""

    run_id: str
    action: str = Field(description="budget, pause or resume.")
    limits: dict[str, float] = Field(description=(
        "The limits in force after the change, by dimension (cost_usd, tokens, iterations, duration_s; 0 = none)."))
    loop_grants: dict[str, int] = Field(description="Extra rounds granted to each loop so far.")
    paused: bool = Field(description="True while a pause is asked for (the run holds at its next node boundary).")
    status: str = Field(description="The run's status as the change was applied.")


class CancelRequested(_Result):
    run_id: str
    cancel_requested: bool
    ended: bool = Field(description="True once the run has ended (within a few seconds when a worker is up).")
    execution_status: str


class RunRewound(_Result):
    """A run rewound to a node: the same run id goes on from there in a new execution."""

    run_id: str
    node: str = Field(description="Where the run resumes: the node runs again, and every node after it.")
    replaced_execution: str = Field(description="The Temporal run id of the execution the rewind ended.")
    execution: str = Field(description="The Temporal run id of the execution that goes on.")
    outputs: list[str] = Field(description="The nodes whose outputs (recorded before the node) the run keeps.")
    vars: dict[str, Any] = Field(default_factory=dict, description="The vars the rewind changed.")
    ui_url: str


class RunForked(_Result):
    """A new run started from another run's state before a node."""

    run_id: str
    forked_from: str
    node: str = Field(description="Where the new run starts.")
    workflow: str
    outputs: list[str] = Field(description="The nodes whose outputs (recorded before the node) the new run starts with.")
    vars: dict[str, Any] = Field(default_factory=dict, description="The vars the fork changed.")
    status: RunStatus = "running"
    ui_url: str


# -- starting runs ---------------------------------------------------------------------------------


class WorkerState(_Result):
    """Who will run it: a worker already polling the task queue, one started in the background for
    it (the CLI on a local server), or none yet (the run waits until one polls)."""

    state: Literal["polling", "started", "none"]
    pid: int | None = None
    log_path: str | None = None


class StartedRun(_Result):
    """A run the service started: where it runs, where to look at it, and where it reports."""

    run_id: str
    workflow: str
    source: str
    status: RunStatus = "running"
    task_queue: str
    address: str
    namespace: str
    ui_url: str
    worker: WorkerState
    notify: dict[str, Any] | None = Field(default=None, description="`RunOptions.notify`: where the run reports.")
    warnings: list[str] = Field(default_factory=list, description="What the start found (e.g. no worker polls).")
