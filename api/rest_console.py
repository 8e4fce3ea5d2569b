"""What the run console reads beyond the REST API's runs and events: the graph, a node's visits, rendered Markdown.

    GET /api/runs/RUN/graph           the run's compiled workflow as the browser's graph (api.graph_model)
    GET /api/runs/RUN/nodes/NODE      one node: its declared inputs, and per visit its output, model
                                      turns, tool calls, tokens, cost, gate questions and answerer
    GET /api/runs/RUN/nodes/NODE/calls[?visit=K]
                                      per visit, what the node was actually given and said: each
                                      activity's request (rendered prompts, input values, tool
                                      arguments, shell command) and result, from the Temporal history
    GET /api/runs/RUN/rendered        the Markdown report and the Markdown of published artifacts, as HTML

Everything a visit shows comes from the run's events and state, which the worker has already
redacted (activities/redaction.py runs on every activity result before it reaches history), so
this module adds no secret of its own. Markdown is rendered here with markdown-it in CommonMark
mode with raw HTML off: a `<script>` or `<img onerror>` in a model's output comes out as text,
and `javascript:` links are not made links, so the browser may insert the HTML as it is.

The calls come from the history's activity payloads (runtime/run_history.py), which are data by
design: `${ENV}` references are resolved and results redacted on the worker, never in history.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, reader
from api.deps import run_service
from api.errors import NotFound
from api.graph_model import GraphModel, graph_of, node_props
from api.json_body import BoundedJsonRoute
from api.models import ErrorResponse
from dsl.ir import Workflow
from runtime.run_history import NodeCalls, node_calls
from runtime.run_service import RunService
from runtime.temporal_runs import read_run_input, temporal_errors
from workflows.contract.state import Event
from workflows.contract.tool_catalog import INLINE_TOOLS

router = APIRouter(prefix="/api", route_class=BoundedJsonRoute)

Runs = Annotated[RunService, Depends(run_service)]
Reader = Annotated[Principal, Depends(reader)]
RunId = Annotated[str, Path(description="The run id (its Temporal workflow id).")]

_RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token."},
    404: {"model": ErrorResponse, "description": "No such run (or node)."},
    503: {"model": ErrorResponse, "description": "Temporal cannot be reached, or no worker answers for the run."},
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunGraph(_Out):
    """The run's workflow as the console draws it."""

    run_id: str
    workflow: str
    graph: GraphModel | None = Field(description="None when the compiled workflow cannot be read from the history.")


class Turn(_Out):
    """One model turn of a visit (an `llm_step_finished` event)."""

    turn: int
    status: str = Field(description="final, tool_calls or invalid (the answer did not match the schema).")
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: list[str] = Field(default_factory=list)


class ToolCall(_Out):
    """One tool call of a visit: called, denied, failed or reviewed by a person."""

    tool: str
    outcome: str = Field(description="called, denied, error or reviewed.")
    detail: str = ""


class Visit(_Out):
    """One visit of a node (a `node_started` … `node_finished`/`node_failed` span of events)."""

    visit: int
    branch: str = ""
    status: str = Field(description="running, waiting, succeeded or failed.")
    started_at: str = ""
    ended_at: str = ""
    output: dict[str, Any] | None = None
    error: str = ""
    turns: list[Turn] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    questions: dict[str, Any] | None = Field(default=None, description="A gate's questions, as the person saw them.")
    answered_by: str = ""
    first_seq: int = 0
    last_seq: int = 0


class NodeInputs(_Out):
    """What flows into a node, as declared: its prompts' text, its input schema, the `with` of incoming edges."""

    prompts: dict[str, str] = Field(default_factory=dict)
    input_schema: list[dict[str, Any]] = Field(default_factory=list)
    incoming: list[dict[str, Any]] = Field(default_factory=list)


class NodeVisits(_Out):
    """One node of a run: its kind and properties, declared inputs, and every visit the events kept."""

    run_id: str
    node: str
    kind: str
    status: str
    props: dict[str, Any] = Field(default_factory=dict)
    inputs: NodeInputs = Field(default_factory=NodeInputs)
    visits: list[Visit] = Field(default_factory=list)
    latest_output: dict[str, Any] | None = None
    events_trimmed: bool = Field(False, description="True when the run's oldest events were dropped (2,000 kept).")


class RenderedRun(_Out):
    """The report and the Markdown text of published artifacts, rendered safely to HTML."""

    run_id: str
    report_markdown: str
    report_html: str
    artifacts: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="artifact → field → HTML, for each text field of each artifact.")


# -- pure parts ----------------------------------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


_ALIGN = re.compile(r' style="text-align:(left|right|center)"')


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML off: tags in the text are escaped, unsafe link schemes dropped.

    A table column's alignment becomes a class (`align-right`): the dashboard's CSP allows no
    inline style attributes."""
    return _ALIGN.sub(r' class="align-\1"', _MARKDOWN.render(text))


def node_visits(events: list[Event], node: str) -> list[Visit]:
    """The node's visits from the run's events, oldest first.

    A visit opens at `node_started` (per branch: two parallel branches may run the node at once)
    and closes at `node_finished` or `node_failed`; what the node emits after it closes (the edge
    it took, an artifact) belongs to that visit still. Events of a node never started (the
    terminals, or a visit whose start was trimmed away) open one."""
    visits: list[Visit] = []
    open_by_branch: dict[str, Visit] = {}

    def current(event: Event) -> Visit:
        visit = open_by_branch.get(event.branch)
        if visit is None and event.type not in ("node_started", "node_finished", "node_failed"):
            visit = next((v for v in reversed(visits) if v.branch == event.branch), None)
        if visit is None:
            number = int(event.data.get("visit") or 0) if event.type == "node_started" else 0
            visit = Visit(visit=number or len(visits) + 1, branch=event.branch, status="running",
                          started_at=event.time, first_seq=event.seq)
            visits.append(visit)
            open_by_branch[event.branch] = visit
        visit.last_seq = event.seq
        return visit

    for event in events:
        if event.node != node:
            continue
        if event.type == "node_started":
            open_by_branch.pop(event.branch, None)
        visit = current(event)
        data = event.data
        if event.type == "llm_step_finished":
            turn = Turn(turn=int(data.get("turn") or len(visit.turns) + 1), status=str(data.get("status", "")),
                        input_tokens=int(data.get("input_tokens") or 0), output_tokens=int(data.get("output_tokens") or 0),
                        cached_tokens=int(data.get("cached_tokens") or 0), cost_usd=float(data.get("cost_usd") or 0.0),
                        tool_calls=[str(t) for t in data.get("tool_calls") or []])
            visit.turns.append(turn)
            visit.input_tokens += turn.input_tokens
            visit.output_tokens += turn.output_tokens
            visit.cost_usd += turn.cost_usd
        elif event.type in ("tool_called", "tool_denied", "tool_error", "tool_call_reviewed"):
            outcome = {"tool_called": "called", "tool_denied": "denied", "tool_error": "error"}.get(event.type, "reviewed")
            detail = str(data.get("error") or data.get("decision") or "")
            visit.tool_calls.append(ToolCall(tool=str(data.get("tool", "")), outcome=outcome, detail=detail))
        elif event.type == "human_input_requested":
            visit.status = "waiting"
            visit.questions = {k: v for k, v in dict(data.get("questions") or {}).items() if not str(k).startswith("_")}
        elif event.type == "gate_answered":
            visit.status = "running"
            visit.answered_by = str(data.get("by", ""))
        elif event.type == "node_finished":
            visit.status, visit.ended_at = "succeeded", event.time
            visit.output = data.get("output") if isinstance(data.get("output"), dict) else None
            open_by_branch.pop(event.branch, None)
        elif event.type == "node_failed":
            visit.status, visit.ended_at = "failed", event.time
            visit.error = str(data.get("error", ""))
            if not data.get("tolerated"):
                open_by_branch.pop(event.branch, None)
    return visits


def node_inputs(wf: Workflow, node: str) -> NodeInputs:
    """The node's declared inputs: the text of its prompts, its input schema's fields, incoming `with`."""
    ir_node = wf.nodes[node]
    prompts: dict[str, str] = {}
    for attr in ("system_prompt", "user_prompt", "instructions", "interaction_prompt"):
        name = getattr(ir_node, attr, "") or ""
        if name:
            prompt = wf.prompts.get(name)
            prompts[attr] = prompt.body if prompt is not None else name
    schema = wf.schemas.get(wf.input_schema_of(node))
    fields = [f.model_dump(mode="json", exclude_none=True) for f in schema.fields] if schema else []
    incoming = [{"from": e.source, "with": {m.key: m.raw for m in e.with_}} for e in wf.incoming(node) if e.with_]
    return NodeInputs(prompts=prompts, input_schema=fields, incoming=incoming)


def artifact_html(artifacts: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each text field of each published artifact as HTML (other values stay data: the console shows them as JSON)."""
    return {name: {key: render_markdown(value) for key, value in fields.items() if isinstance(value, str)}
            for name, fields in artifacts.items()}


# -- endpoints -----------------------------------------------------------------------------------


@router.get("/runs/{run_id}/graph", response_model=RunGraph, tags=["console"], responses=_RUN_ERRORS)
async def run_graph(run_id: RunId, runs: Runs, _: Reader) -> RunGraph:
    """The run's compiled workflow as a graph of nodes and edges (edge ids `e<index>` in source order)."""
    snapshot = await runs.inspect(run_id)
    graph = graph_of(snapshot.workflow) if snapshot.workflow is not None else None
    return RunGraph(run_id=run_id, workflow=snapshot.detail.workflow, graph=graph)


@router.get("/runs/{run_id}/nodes/{node}", response_model=NodeVisits, tags=["console"], responses=_RUN_ERRORS)
async def run_node(run_id: RunId, node: Annotated[str, Path(description="The node id.")], runs: Runs,
                   _: Reader) -> NodeVisits:
    """One node of the run: declared inputs, and per visit its output, model turns, tool calls,
    tokens and cost, gate questions and who answered (from the run's events, redacted by the worker)."""
    snapshot = await runs.inspect(run_id)
    wf = snapshot.workflow
    summary = snapshot.detail.nodes.get(node)
    if wf is None or node not in wf.nodes:
        known = ", ".join(wf.nodes) if wf is not None else ", ".join(snapshot.detail.nodes)
        raise NotFound(f"run {run_id} has no node '{node}'; its nodes are: {known}", code="unknown_node")
    events = (await runs.events(run_id)).events
    return NodeVisits(run_id=run_id, node=node, kind=wf.nodes[node].kind,
                      status=summary.status if summary else "pending", props=node_props(wf, node),
                      inputs=node_inputs(wf, node), visits=node_visits(events, node),
                      latest_output=snapshot.detail.outputs.get(node),
                      events_trimmed=bool(events) and events[0].seq > 1)


@router.get("/runs/{run_id}/nodes/{node}/calls", response_model=NodeCalls, tags=["console"], responses=_RUN_ERRORS)
async def run_node_calls(run_id: RunId, node: Annotated[str, Path(description="The node id.")], runs: Runs, _: Reader,
                         visit: Annotated[int | None, Query(ge=1, description="Only this visit (1-based).")] = None,
                         ) -> NodeCalls:
    """What each visit of the node was actually given and said, from the run's Temporal history: per
    visit, each activity's request (rendered system/user prompts, input values, tool arguments, shell
    command and values) and its result or failure. Texts are cut at 20,000 characters (`truncated`).
    Needs no worker: the history is read from Temporal."""
    found = await runs.find(run_id)
    run_input = await read_run_input(found.client, found.handle)
    if run_input is not None and node not in run_input.workflow.nodes:
        raise NotFound(f"run {run_id} has no node '{node}'; its nodes are: {', '.join(run_input.workflow.nodes)}",
                       code="unknown_node")
    async with temporal_errors(found.settings, run_id):
        calls = await node_calls(found.client, found.handle, node, visit=visit)
    calls.execution = found.desc.run_id or calls.execution  # the execution whose history was read
    ir_node = run_input.workflow.nodes[node] if run_input is not None else None
    calls.computed_in_workflow = getattr(ir_node, "call", "") in INLINE_TOOLS
    return calls


@router.get("/runs/{run_id}/rendered", response_model=RenderedRun, tags=["console"], responses=_RUN_ERRORS)
async def run_rendered(run_id: RunId, runs: Runs, _: Reader) -> RenderedRun:
    """The Markdown report and each published artifact's text fields as HTML (raw HTML in them escaped)."""
    report = await runs.report_document(run_id)
    snapshot = await runs.inspect(run_id)
    return RenderedRun(run_id=run_id, report_markdown=report.markdown, report_html=render_markdown(report.markdown),
                       artifacts=artifact_html(snapshot.detail.artifacts))
