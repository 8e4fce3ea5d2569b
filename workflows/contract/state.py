"""The run's input, its visible state, and what continue-as-new carries.

Everything here is pydantic so the one data converter (pydantic) moves it through Temporal, and
the `state` query returns exactly this shape to the CLI and the API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import Schema, Workflow
from workflows.contract.mcp import McpServerSpec
from workflows.contract.messages import Usage
from workflows.contract.vocabulary import (  # noqa: F401  (re-exported for the clients)
    NOTIFY_EVENTS,
    SA_COST,
    SA_OPEN_GATES,
    SA_STATUS,
    SA_WORKFLOW,
    SEARCH_ATTRIBUTES,
    WORKFLOW_TYPE,
    NodeStatus,
    NotifyEvent,
    RunStatus,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotifyOptions(_Model):
    """Where a run reports gate openings and its end (Slack, signed webhooks).

    Filled by the client that starts the run, from the global configuration and the workflow's
    own; the bot token and webhook signing secret stay on the worker.
    """

    slack_channel: str = ""
    webhooks: list[str] = Field(default_factory=list)  # URLs; `${ENV}` resolved on the worker
    events: list[str] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    ui_base_url: str = ""  # e.g. http://localhost:8233 → links to the run in the Web UI


class RunOptions(_Model):
    """Per-run settings chosen by whoever starts the run."""

    script: dict[str, Any] | None = None  # scripted model outputs (offline demo/tests), clearly labelled
    shell_cwd: str | None = None
    shell_timeout_seconds: float = 600.0
    # How soon a shell command on a worker that died is noticed and retried on another one.
    shell_heartbeat_timeout_seconds: float = 30.0
    llm_timeout_seconds: float = 300.0
    # How long a delegated node's coding-agent CLI may work (one attempt) before it is stopped.
    delegate_timeout_seconds: float = 3600.0
    # Attempts of an activity that fail with a retryable error (rate limit, outage) before its node
    # parks as failed_resumable; permanent errors park at once (`workflows.activity_retries`).
    max_attempts: int = 3
    # Attempts of one activity that may be lost with their worker (killed, crashed, restarted: its
    # heartbeat or start-to-close timeout ran out) and are retried on another; they never use up
    # `max_attempts`.
    max_worker_losses: int = 10
    offload_threshold_bytes: int = 64 * 1024  # larger node outputs go to the artifact store
    continue_as_new_after_events: int = 0  # 0 = only when the server suggests it
    max_events_kept: int = 2000
    llm_max_repairs: int = 2  # extra turns asking the model to fix a schema-invalid answer
    llm_heartbeat_timeout_seconds: float = 60.0  # how soon a model call on a dead worker is retried
    # End the run (status finished) right after one of these nodes completes (`--stop-after`).
    stop_after: list[str] = Field(default_factory=list)
    # Gate id → the answer given automatically every time it opens (`--skip-gates`, presets).
    gate_answers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notify: NotifyOptions | None = None
    # A preset's `summary:` template lines, kept so `iterloop report` renders them after the fact
    # (the interpreter never reads them).
    summary: list[str] = Field(default_factory=list)
    # The servers of the project's `.mcp.json` (beside the `.iter` file), recorded when the run
    # starts: names and the file's path only, never the entries (their headers and env may hold
    # tokens; the worker reads them). Node server sets are computed from these and the IR.
    mcp_project_servers: list[McpServerSpec] = Field(default_factory=list)
    # What a budget stop does: "park" waits for `iterloop budget RUN --max-… X` to raise the limit and
    # goes on where it stopped (what `iterloop run`, the API and schedules ask for); "end" ends the
    # run with status budget_exceeded (`iterloop bench`, which compares what each recipe's budget lets
    # a run do; the default, so a run input that does not say, as every recorded one, keeps that).
    on_budget: Literal["park", "end"] = "end"
    # Whether `call:` nodes of the catalog's local tools (echo, sum_values, the statistics) run as
    # local activities, without a server round trip (docs/runtime.md, "What costs a server round
    # trip"); False keeps every tool call an ordinary activity (`ITERLOOP_LOCAL_TOOLS=0`).
    local_tools: bool = True


class Event(_Model):
    seq: int
    time: str
    type: str
    node: str = ""
    branch: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class NodeState(_Model):
    status: NodeStatus = "pending"
    visits: int = 0
    attempts: int = 0
    error: str = ""
    usage: Usage = Field(default_factory=Usage)


class Gate(_Model):
    """An open human gate: what the CLI, the API and Slack show and validate answers against."""

    gate: str
    interaction_id: str
    instructions: str = ""
    questions: dict[str, Any] = Field(default_factory=dict)
    schema_: Schema | None = Field(default=None, alias="schema")
    opened_at: str = ""
    timeout_seconds: float | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Answer(_Model):
    gate: str
    answers: dict[str, Any]
    answered_by: str = "cli"
    # The opening this answer is for (`answers.interaction_id`); senders bind it when they send.
    # Empty = the opening open when the run reads the answer; refused when the gate is closed,
    # unless ``in_advance`` says it is meant for the gate's next opening (then kept until then).
    interaction_id: str = ""
    in_advance: bool = False


class AnswerRecord(_Model):
    gate: str
    interaction_id: str
    answers: dict[str, Any]
    answered_by: str
    answered_at: str


class Failure(_Model):
    node: str
    branch: str = ""
    error: str
    error_type: str = ""
    at: str = ""


class Checkpoint(_Model):
    """Where a node's latest visit on the main walk started from: what `rewind` and `fork` restore.

    Small on purpose (counters, not outputs): the outputs before the visit are the first
    ``produced[node]`` entries of each node's output history (`RunState.history`, whose trimmed
    prefix `RunState.history_trimmed` counts), so the state grows by a few integers per node.
    """

    seq: int  # the last event before the visit
    visit: int  # the visit of the node this checkpoint precedes
    produced: dict[str, int] = Field(default_factory=dict)  # node → outputs produced before the visit
    statuses: dict[str, NodeStatus] = Field(default_factory=dict)  # nodes that were not pending
    loop_counters: dict[str, int] = Field(default_factory=dict)
    rr_counters: dict[str, int] = Field(default_factory=dict)
    artifact_versions: dict[str, int] = Field(default_factory=dict)
    sessions: dict[str, str] = Field(default_factory=dict)
    branch_sessions: dict[str, str] = Field(default_factory=dict)


class BudgetRaise(_Model):
    """A live change of a running run's limits (the `raise_budget` update, `iterloop budget`): limits
    only go up, each given one above the limit in force; None leaves a limit as it is."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_iterations: int | None = None
    max_duration_seconds: float | None = None
    by: str = "cli"
    reason: str = ""

    def limits(self) -> dict[str, float]:
        """The limits given, by budget dimension (the names `workflows.budget` counts in)."""
        given = {"cost_usd": self.max_cost_usd, "tokens": self.max_tokens, "iterations": self.max_iterations,
                 "duration_s": self.max_duration_seconds}
        return {dim: float(v) for dim, v in given.items() if v is not None}


class LoopGrant(_Model):
    """More rounds for one loop of a running run (the `grant_iterations` update, `--grant LOOP=N`)."""

    loop: str
    iterations: int
    by: str = "cli"
    reason: str = ""


class PauseRequest(_Model):
    """`pause` / `resume` (`iterloop pause|resume`): who asks and why, recorded in the run's events."""

    by: str = "cli"
    reason: str = ""


class LiveControl(_Model):
    """What an update changed, as the run now has it: the limits in force (by dimension, 0 = none),
    the iterations granted to each loop, and whether a pause is asked for."""

    limits: dict[str, float] = Field(default_factory=dict)
    loop_grants: dict[str, int] = Field(default_factory=dict)
    paused: bool = False
    status: str = ""


class Resume(_Model):
    """Why an execution starts from a carried state that is not a continue-as-new: a rewind of the
    same run or a fork into a new one (`iterloop rewind`, `iterloop fork`)."""

    kind: Literal["rewind", "fork"]
    node: str
    from_run: str = ""  # fork: the run forked; rewind: the Temporal run id of the execution replaced
    by: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)  # the vars the caller changed


class RunState(_Model):
    """The run's state: what the workflow changes as the run goes, kept in this one object so that
    continue-as-new hands it over whole (`RunInput.carried`).

    What belongs to one execution only (open gates, parked failures, the nodes running now, the
    final status, pending notifications) is not here: it is never carried over. The serialised
    shape is what recorded histories hold in their run input: fields are added with defaults,
    never renamed, and their order stays.
    """

    next_node: str  # where the next execution starts; set when the run continues as new
    vars: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    history: dict[str, list[dict[str, Any]]]
    artifacts: dict[str, dict[str, Any]]
    artifact_versions: dict[str, int]
    loop_counters: dict[str, int]
    rr_counters: dict[str, int]
    budget_used: dict[str, float]
    budget_warned: list[str]
    nodes: dict[str, NodeState]
    answers: list[AnswerRecord]
    early_answers: dict[str, Answer]
    events: list[Event]
    seq: int
    started_at: str
    executions: int
    sessions: dict[str, str] = Field(default_factory=dict)  # session id → conversation artifact URI
    branch_sessions: dict[str, str] = Field(default_factory=dict)  # branch → its latest session id
    # node → its latest main-walk visit's checkpoint (`rewind`, `fork`); outputs dropped from the
    # front of each node's history (kept to `_HISTORY_KEPT`), so counts stay absolute
    checkpoints: dict[str, Checkpoint] = Field(default_factory=dict)
    history_trimmed: dict[str, int] = Field(default_factory=dict)
    # live control: limits raised while the run ran (dimension → limit, over the workflow's budget),
    # extra rounds granted per loop, the pause asked for (its request, until resumed), and the budget
    # used when each loop's back edge was last taken (what the loop budget guard prices a round at)
    budget_limits: dict[str, float] = Field(default_factory=dict)
    loop_grants: dict[str, int] = Field(default_factory=dict)
    pause: PauseRequest | None = None
    loop_marks: dict[str, dict[str, float]] = Field(default_factory=dict)
    # each loop's edge source output when the loop was last taken (`loop.NAME.previous_output`)
    loop_previous: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # loops whose bound comes from data (`as NAME("{{vars.n}}")`): the bound evaluated on entering
    loop_bounds: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def begin(cls, wf: Workflow, vars: dict[str, Any]) -> RunState:
        """A new run's state: nothing done yet, every node pending, the walk at the entry."""
        return cls(next_node=wf.entry, vars=vars, outputs={}, history={}, artifacts={}, artifact_versions={},
                   loop_counters={}, rr_counters={}, budget_used={}, budget_warned=[],
                   nodes={n: NodeState() for n in wf.nodes}, answers=[], early_answers={}, events=[], seq=0,
                   started_at="", executions=1)

    def total_usage(self) -> Usage:
        """The run's usage: the sum of its nodes'."""
        total = Usage()
        for state in self.nodes.values():
            total = total.plus(state.usage)
        return total


#: The name continue-as-new's state had before it became the run's one state object.
CarriedState = RunState


class RunInput(_Model):
    workflow: Workflow
    run_inputs: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    options: RunOptions = Field(default_factory=RunOptions)
    carried: RunState | None = None
    resume: Resume | None = None  # set by rewind and fork (``carried`` is then their state)


class RunView(_Model):
    """The answer to the `state` query."""

    workflow: str
    source: str
    status: RunStatus
    current_nodes: list[str]
    nodes: dict[str, NodeState]
    outputs: dict[str, dict[str, Any]]
    artifacts: dict[str, dict[str, Any]]
    vars: dict[str, Any]
    loop_counters: dict[str, int]
    budget_used: dict[str, float]
    usage: Usage
    open_gates: list[Gate]
    failures: list[Failure]
    answers: list[AnswerRecord]
    last_seq: int
    reason: str = ""
    executions: int = 1
    rewind_points: list[str] = Field(default_factory=list)  # nodes `rewind --to` / `fork --at` can name
    # live control: the limits raised while the run ran, loop grants, and why it waits (paused by
    # whom; which budget it is parked on and how to raise it)
    budget_limits: dict[str, float] = Field(default_factory=dict)
    loop_grants: dict[str, int] = Field(default_factory=dict)
    paused_by: str = ""
    budget_wait: str = ""


class RunResult(_Model):
    status: RunStatus
    reason: str = ""
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    last_node: str = ""
