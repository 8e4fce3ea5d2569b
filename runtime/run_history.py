"""What each visit of a node was given and what came back, read from the run's Temporal history.

The run's events say that a model turn happened and what it cost; the history says what it was
sent. Every activity the interpreter schedules for a node carries its request (an `LLMTurnRequest`
with the rendered system and user prompts and the input values, a tool call's arguments, a shell
command and its values) and its completion carries the result. Those payloads are data by design:
`${ENV}` references and secrets are resolved only on the worker, and every activity result is
redacted there (activities/redaction.py) before it is recorded, so reading them back adds no secret.

Payloads are decoded with the client's data converter as plain JSON (not into the contract's
models), so a history written by an older or newer version of the contract still reads. What is
noise to a person (offload thresholds, artifact-token lists, the offline model's `script`, MCP
server launch specs) is dropped, every string is cut at `MAX_TEXT` characters (the call says
`truncated`), a visit keeps at most `MAX_CALLS_PER_VISIT` calls, and at most `MAX_EVENTS` history
events are read.

Visits: model turns and delegate requests carry their visit number. A builtin tool or MCP call a
model asked for belongs to that model's current visit. A tool node's activities carry none: its
visit count goes up with each scheduled activity that follows a completed one (an activity
scheduled after a failure is the same visit's retry).

Only the run's current execution is read (after a continue-as-new, the latest one): `execution`
in the result names it. Local activities (fast side-effect-free tools) are `MarkerRecorded`
events whose payload keeps the result but not the request; tools evaluated inside the workflow
(echo, sum_values) have no activity at all, and the console says so instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.contract import vocabulary

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowHandle

MAX_TEXT = 20_000  # characters of one string value (a prompt, stdout) before it is cut
MAX_CALLS_PER_VISIT = 60
MAX_EVENTS = 50_000  # history events read for one look (a long run's page-through stays bounded)
_PAGE_SIZE = 1000

#: Request fields a person has no use for (plumbing, the offline model's script, launch specs).
_NOISE = frozenset({
    "run_id", "node_id", "script", "offload_threshold_bytes", "artifact_tokens", "heartbeat_seconds",
    "timeout_seconds", "mcp_servers", "cwd", "conversation_ref", "native", "keep_conversation",
    "output_schema", "route_candidates", "tool_approval", "tool_policy", "allow_tools", "server",
})

#: The local activity marker's name and detail keys, as the SDK's core records them.
_LOCAL_MARKER = "core_local_activity"


class ActivityCall(BaseModel):
    """One activity of a visit: what it was sent, and what it returned or why it failed."""

    model_config = ConfigDict(extra="forbid")

    activity: str = Field(description="The activity type, e.g. iterloop.llm_turn, iterloop.tool_call, iterloop.shell_exec.")
    summary: str = Field("", description="The interpreter's one-line summary (`node · llm node turn 1`).")
    local: bool = Field(False, description="A local activity: its request is not recorded, only its result.")
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    failure: str | None = None
    attempts: int = 1
    truncated: bool = Field(False, description="A text in the request or result was cut at 20,000 characters.")


class VisitCalls(BaseModel):
    """The activities of one visit of the node, in the order they were scheduled."""

    model_config = ConfigDict(extra="forbid")

    visit: int
    calls: list[ActivityCall] = Field(default_factory=list)
    calls_dropped: int = Field(0, description="Calls beyond the per-visit cap that are not listed.")


class NodeCalls(BaseModel):
    """Every visit of a node as the run's history recorded it."""

    model_config = ConfigDict(extra="forbid")

    node: str
    execution: str = Field("", description="The Temporal run id of the execution read (the latest after continue-as-new).")
    visits: list[VisitCalls] = Field(default_factory=list)
    history_truncated: bool = Field(False, description="The history was longer than 50,000 events; later ones were not read.")
    computed_in_workflow: bool = Field(
        False, description="A `call:` of a pure builtin (echo, sum_values) evaluated in the workflow: it has no "
                           "activity, so its visits show only the node's output.")


# -- pure parts ----------------------------------------------------------------------------------


def bounded(value: Any, limit: int = MAX_TEXT) -> tuple[Any, bool]:
    """``value`` with every string longer than ``limit`` cut (and `…` added); True if any was."""
    if isinstance(value, str):
        return (value[:limit] + "…", True) if len(value) > limit else (value, False)
    if isinstance(value, dict):
        cut = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], was = bounded(item, limit)
            cut = cut or was
        return out, cut
    if isinstance(value, list):
        items = [bounded(item, limit) for item in value]
        return [item for item, _ in items], any(was for _, was in items)
    return value, False


def _without_noise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_noise(v) for k, v in value.items() if k not in _NOISE}
    if isinstance(value, list):
        return [_without_noise(v) for v in value]
    return value


def shown_request(activity: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request as a person reads it: noise dropped, an MCP call's server reduced to its name."""
    shown = _without_noise(request)
    if activity == vocabulary.MCP_CALL and isinstance(request.get("server"), dict):
        shown["server"] = request["server"].get("name", "")
    return shown


def shown_result(result: Any) -> dict[str, Any] | None:
    """The result as a person reads it (a non-object result is wrapped as `{"value": …}`)."""
    if result is None:
        return None
    if not isinstance(result, dict):
        return {"value": result}
    shown = _without_noise(result)
    if isinstance(shown.get("tools"), list):  # the tools offered this turn: their names say enough
        shown["tools"] = [t.get("name", "") if isinstance(t, dict) else t for t in shown["tools"]]
    return shown


def node_of_summary(summary: str) -> str:
    """The node id an activity summary starts with (`writer · llm node turn 1` → `writer`)."""
    return summary.split(" · ", 1)[0].strip() if " · " in summary else ""


@dataclass
class _Pending:
    """A scheduled activity of the node whose completion is still to come in the history."""

    call: ActivityCall


@dataclass
class Grouper:
    """Assigns each activity of one node to a visit and collects them (pure: fed decoded events)."""

    node: str
    visits: dict[int, VisitCalls] = field(default_factory=dict)
    llm_visit: int = 0  # the visit of the node's latest model turn (its tool calls belong to it)
    tool_visit: int = 0  # a tool node's visit count, by its activities
    last_succeeded: bool = True  # the node's previous activity completed (the next one is a new visit)

    def visit_for(self, activity: str, request: dict[str, Any] | None) -> int:
        given = request.get("visit") if isinstance(request, dict) else None
        if activity in (vocabulary.LLM_TURN, vocabulary.DELEGATE) and isinstance(given, int):
            self.llm_visit = given
            return given
        if self.llm_visit and activity in (vocabulary.TOOL_CALL, vocabulary.MCP_CALL):
            return self.llm_visit
        if self.last_succeeded or not self.tool_visit:
            self.tool_visit += 1
        return self.tool_visit

    def add(self, visit: int, call: ActivityCall) -> None:
        """Record ``call`` for ``visit``; past `MAX_CALLS_PER_VISIT` it is counted, not kept."""
        slot = self.visits.setdefault(visit, VisitCalls(visit=visit))
        if len(slot.calls) >= MAX_CALLS_PER_VISIT:
            slot.calls_dropped += 1
        else:
            slot.calls.append(call)

    def finished(self, succeeded: bool) -> None:
        self.last_succeeded = succeeded

    def result(self, execution: str, truncated: bool, only_visit: int | None = None) -> NodeCalls:
        visits = [v for k, v in sorted(self.visits.items()) if only_visit is None or k == only_visit]
        return NodeCalls(node=self.node, execution=execution, visits=visits, history_truncated=truncated)


# -- reading the history -------------------------------------------------------------------------


async def _decode(client: Client, payloads: Any) -> Any:
    """The first payload as plain JSON data; None when there is none or it does not decode."""
    if not payloads:
        return None
    try:
        values = await client.data_converter.decode(list(payloads))
    except Exception:  # a payload this version cannot read: show the call without it
        return None
    return values[0] if values else None


async def _summary(client: Client, event: HistoryEvent) -> str:
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    decoded = await _decode(client, [event.user_metadata.summary])
    return decoded if isinstance(decoded, str) else ""


def _marker_json(details: Any, key: str) -> Any:
    """A local activity marker's detail (its payloads hold JSON), or None."""
    if key not in details:
        return None
    payloads = details[key].payloads
    if not payloads:
        return None
    try:
        return json.loads(payloads[0].data)
    except (ValueError, UnicodeDecodeError):
        return None


async def node_calls(client: Client, handle: WorkflowHandle[Any, Any], node: str, *,
                     visit: int | None = None, max_events: int = MAX_EVENTS) -> NodeCalls:
    """What each visit of ``node`` was sent and got back, from the history of the run's current execution."""
    from temporalio.api.enums.v1 import EventType

    grouper = Grouper(node)
    pending: dict[int, _Pending] = {}  # scheduled event id → the call waiting for its completion
    read = 0
    truncated = False
    execution = ""
    async for event in handle.fetch_history_events(page_size=_PAGE_SIZE):
        read += 1
        if read > max_events:
            truncated = True
            break
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            execution = event.workflow_execution_started_event_attributes.original_execution_run_id
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            summary = await _summary(client, event)
            if summary and node_of_summary(summary) not in ("", node):
                continue  # another node's: its input need not be decoded
            request = await _decode(client, attrs.input.payloads)
            request = request if isinstance(request, dict) else {}
            if request.get("node_id") != node:  # every node's request names it (notifications, MCP checks do not)
                continue
            activity = attrs.activity_type.name
            number = grouper.visit_for(activity, request)
            shown, cut = bounded(shown_request(activity, request))
            call = ActivityCall(activity=activity, summary=summary, request=shown, truncated=cut)
            grouper.add(number, call)  # past the visit's cap the call is counted, not kept
            pending[event.event_id] = _Pending(call)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = pending.get(event.activity_task_started_event_attributes.scheduled_event_id)
            if started is not None:
                started.call.attempts = max(1, event.activity_task_started_event_attributes.attempt)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            done = pending.pop(attrs_c.scheduled_event_id, None)
            if done is not None:
                shown_res, cut = bounded(shown_result(await _decode(client, attrs_c.result.payloads)))
                done.call.result, done.call.truncated = shown_res, done.call.truncated or cut
                grouper.finished(True)
        elif kind in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                      EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED):
            attrs_f = (event.activity_task_failed_event_attributes if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                       else event.activity_task_timed_out_event_attributes
                       if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
                       else event.activity_task_canceled_event_attributes)
            failed = pending.pop(attrs_f.scheduled_event_id, None)
            if failed is not None:
                failure = getattr(attrs_f, "failure", None)
                message = failure.message if failure is not None and failure.message else (
                    "timed out" if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT else "cancelled")
                failed.call.failure = bounded(message)[0]
                grouper.finished(False)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            await _local_activity(client, event, grouper, node)
    return grouper.result(execution or (handle.result_run_id or handle.run_id or ""), truncated, visit)


async def _local_activity(client: Client, event: HistoryEvent, grouper: Grouper, node: str) -> None:
    """A local activity's marker: its result (or failure) belongs to the node its summary names."""
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != _LOCAL_MARKER:
        return
    summary = await _summary(client, event)
    data = _marker_json(attrs.details, "data") or {}
    if node_of_summary(summary) != node:
        return
    activity = str(data.get("activity_type") or "")
    number = grouper.visit_for(activity, None)
    result = None
    if "result" in attrs.details:
        result = await _decode(client, attrs.details["result"].payloads)
    shown, cut = bounded(shown_result(result))
    failure = attrs.failure.message if attrs.HasField("failure") else None
    call = ActivityCall(activity=activity, summary=summary, local=True, result=None if failure else shown,
                        failure=failure, attempts=max(1, int(data.get("attempt") or 1)), truncated=cut)
    grouper.add(number, call)
    grouper.finished(failure is None)
