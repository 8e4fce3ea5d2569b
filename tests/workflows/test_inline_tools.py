"""Pure builtin tools (echo, sum_values) evaluated inside the workflow, with no activity at all.

Each run is real, on the session's dev server, and the tests read what Temporal recorded: an
inline call leaves no ActivityTaskScheduled event and no `core_local_activity` marker. The same
file run with `RunOptions.local_tools=False` (every call an ordinary activity, as before either
fast path) is the reference for outputs, events, counters and failures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from runs import events_with, finish, running_worker, start, state, wait_for
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities import artifacts
from activities.tools.registry import call_tool, registry
from runtime.connect import DATA_CONVERTER
from worker import workflow_runner
from workflows.contract import inline_tools
from workflows.contract.messages import TOOL_CALL
from workflows.contract.state import Event, RunResult
from workflows.contract.tool_catalog import INLINE_TOOLS, LOCAL_TOOLS
from workflows.graph_run import GraphRun

LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"


def chain_source(n: int) -> str:
    tools = "".join(f"tool t{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  t{i} -> t{i + 1} with {{ payload: "{{{{outputs.t{i}.payload}}}}" }}\n' for i in range(n - 1))
    return f'vars:\n  payload: string = "hi"\n{tools}workflow chain:\n  entry: t0\n{edges}  t{n - 1} -> done\n'


def fan_source(n: int) -> str:
    tools = "".join(f"tool b{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  split -> b{i} with {{ i: "{i}" }}\n  b{i} -> merge\n' for i in range(n))
    return (f"{tools}router split:\n  mode: fan_out_all\njoin merge:\n  strategy: wait_all\n"
            f"workflow fan:\n  entry: split\n{edges}  merge -> done\n")


def markers(history: Any, name: str) -> list[Any]:
    return [e.marker_recorded_event_attributes for e in history.events
            if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == name]


def patch_ids(history: Any) -> list[str]:
    return [json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in markers(history, PATCH_MARKER)]


def activity_nodes(history: Any) -> list[str]:
    """The node of every activity, ordinary or local, in history order."""
    ordinary = [json.loads(a.input.payloads[0].data)["node_id"]
                for a in events_with(history, "activity_task_scheduled_event_attributes")]
    local = [json.loads(m.user_metadata.summary.data).split(" · ")[0] for m in
             (e for e in history.events if e.HasField("marker_recorded_event_attributes")
              and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER)]
    return ordinary + local


def workflow_tasks(history: Any) -> int:
    return len(events_with(history, "workflow_task_completed_event_attributes"))


async def run_to_end(env: WorkflowEnvironment, task_queue: str, src: str, **options: Any) -> tuple[
        WorkflowHandle[Any, RunResult], RunResult, Any]:
    handle = await start(env.client, task_queue, src, **options)
    result = await finish(handle)
    return handle, result, await handle.fetch_history()


# -- the table and the shared code -------------------------------------------------------------


def test_the_inline_table_and_its_functions_name_the_same_local_tools() -> None:
    assert set(inline_tools.INLINE_FUNCTIONS) == set(INLINE_TOOLS)
    assert set(INLINE_TOOLS) <= set(LOCAL_TOOLS)  # pure is a stronger promise than local


def test_the_registered_tools_validate_with_the_inline_modules_models() -> None:
    tools = registry()
    for name, entry in inline_tools.INLINE_FUNCTIONS.items():
        assert tools[name].input_model is entry.input_model


@pytest.mark.parametrize(("tool", "arguments"), [
    ("echo", {"a": 1, "b": [1.5, "x", None], "c": {"d": True}}),
    ("sum_values", {"values": [1, 2.5, -3]}),
    ("sum_values", {"values": []}),
])
async def test_inline_evaluation_returns_what_the_activitys_tool_call_returns(
        tool: str, arguments: dict[str, Any]) -> None:
    assert inline_tools.evaluate(tool, arguments, 0) == await call_tool(tool, arguments)


def test_the_inline_size_is_the_size_the_activity_offloads_by() -> None:
    output = {"b": "é" * 10, "a": [1, 2.5, None]}
    assert inline_tools.output_bytes(output) == len(artifacts._json_bytes(output))


@pytest.mark.parametrize("text", ["https://bi:pw@db/x", "api?token=abcdef", '{"password": "hunter22"}',
                                  "Authorization: Bearer abc"])
def test_text_the_activity_would_redact_is_left_to_the_activity(text: str) -> None:
    assert inline_tools.evaluate("echo", {"text": text}, 0) is None


def test_a_sum_json_cannot_write_is_left_to_the_activity() -> None:
    # inf is no JSON number: the data converter carrying an activity's result writes it as null.
    assert inline_tools.evaluate("sum_values", {"values": ["1e999", 1]}, 0) is None


# -- runs -----------------------------------------------------------------------------------------


async def test_a_20_node_echo_chain_completes_in_one_workflow_task_without_activities(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, chain_source(20))
    assert result.status == "finished" and result.outputs["t19"] == {"payload": "hi"}
    assert activity_nodes(history) == []
    # The only marker is the patch's, recorded once for the whole run.
    assert [m.marker_name for m in markers(history, PATCH_MARKER)] == [PATCH_MARKER]
    assert len([e for e in history.events if e.HasField("marker_recorded_event_attributes")]) == 1
    assert patch_ids(history) == ["inline-pure-tools"]
    assert workflow_tasks(history) == 1


async def test_a_50_branch_echo_fan_out_and_its_join_complete_in_one_workflow_task(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, fan_source(50))
    assert result.status == "finished" and result.outputs["b49"] == {"i": "49"}
    assert activity_nodes(history) == []
    assert workflow_tasks(history) == 1


async def test_run_options_local_tools_false_turns_inline_evaluation_off(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, chain_source(3), local_tools=False)
    assert result.status == "finished"
    assert [(json.loads(a.input.payloads[0].data)["node_id"], a.activity_type.name)
            for a in events_with(history, "activity_task_scheduled_event_attributes")] == [
        (f"t{i}", TOOL_CALL) for i in range(3)]
    assert patch_ids(history) == []


SAME_EITHER_WAY = """
vars:
  values: json = [1, 2, 3]
  fewer: json = [1, 1]
  observed: json = [500, 505]
  more: bool = true
schema tick:
  more: bool
schema totals:
  total: float
  count: int
tool add:
  call: sum_values
  output: totals
  publish: totals
tool again:
  call: echo
  output: tick
router split:
  mode: fan_out_all
tool left:
  call: echo
tool right:
  call: check_srm
join merge:
  strategy: wait_all
workflow same:
  budget:
    max_iterations: 40
  entry: add
  add -> again with { more: "{{vars.more}}", total: "{{outputs.add.total}}" }
  again -> add with { values: "{{vars.fewer}}" } when more as rounds(2)
  again -> split
  split -> left with { total: "{{artifacts.totals.total}}" }
  split -> right with { observed: "{{vars.observed}}" }
  left -> merge with { l: "{{outputs.left.total}}" }
  right -> merge with { srm: "{{outputs.right.srm_detected}}" }
  merge -> done
"""


def comparable(events: list[Event]) -> list[tuple[str, str, str, Any]]:
    """A run's events without what differs between any two runs (sequence numbers are kept in order)."""
    return [(e.type, e.node, e.branch, e.data) for e in events]


async def test_inline_tools_give_the_same_outputs_events_and_counters_as_ordinary_activities(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    runs: dict[bool, tuple[RunResult, list[Event], Any, Any]] = {}
    async with running_worker(temporal_env.client, task_queue):
        for fast in (True, False):
            handle, result, history = await run_to_end(temporal_env, task_queue, SAME_EITHER_WAY, local_tools=fast)
            events = await handle.query("events", 0, result_type=list[Event])
            runs[fast] = (result, events, await state(handle), history)
    (inline, inline_events, inline_view, inline_history), (ordinary, ordinary_events, ordinary_view, _) = (
        runs[True], runs[False])
    assert inline.status == ordinary.status == "finished"
    assert inline.outputs == ordinary.outputs and inline.outputs["merge"] == {"l": 2.0, "srm": False}
    assert comparable(inline_events) == comparable(ordinary_events)
    assert {n: (s.visits, s.attempts, s.status) for n, s in inline_view.nodes.items()} == {
        n: (s.visits, s.attempts, s.status) for n, s in ordinary_view.nodes.items()}
    assert inline_view.nodes["add"].visits == 3 and inline_view.loop_counters == ordinary_view.loop_counters
    assert inline_view.budget_used == ordinary_view.budget_used
    assert inline_view.artifacts == ordinary_view.artifacts
    assert activity_nodes(inline_history) == ["right"]  # check_srm (numpy/scipy) stays an activity, local


BAD_SUM = """
vars:
  values: json
tool add:
  call: sum_values
workflow adding:
  entry: add
  add -> done
"""


async def parked_failure(env: WorkflowEnvironment, task_queue: str, **options: Any) -> Any:
    handle = await start(env.client, task_queue, BAD_SUM, inputs={"values": ["one", 2]}, **options)
    view = await wait_for(handle, lambda v: v.status == "failed_resumable")
    await handle.cancel()
    return view


async def test_bad_arguments_fail_the_node_exactly_as_the_activity_path_does(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        fast_view = await parked_failure(temporal_env, task_queue)
        ordinary_view = await parked_failure(temporal_env, task_queue, local_tools=False)
    [fast], [ordinary] = fast_view.failures, ordinary_view.failures
    assert fast.error_type == ordinary.error_type == "BadRequest"
    assert fast.error == ordinary.error and "invalid arguments for tool 'sum_values'" in fast.error
    assert fast_view.nodes["add"].attempts == ordinary_view.nodes["add"].attempts == 1
    assert fast_view.nodes["add"].status == ordinary_view.nodes["add"].status


ECHO_LINK = """
vars:
  link: string
tool show:
  call: echo
workflow showing:
  entry: show
  show -> done
"""


async def test_secret_shaped_text_is_redacted_as_the_activity_path_redacts_it(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    outputs = {}
    async with running_worker(temporal_env.client, task_queue):
        for fast in (True, False):
            handle = await start(temporal_env.client, task_queue, ECHO_LINK,
                                 inputs={"link": "https://h/x?token=abcdef"}, local_tools=fast)
            outputs[fast] = (await finish(handle)).outputs["show"]
    assert outputs[True] == outputs[False] == {"link": "https://h/x?token=[redacted]"}


async def test_an_inline_run_replays_its_own_history(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, _, history = await run_to_end(temporal_env, task_queue, SAME_EITHER_WAY)
    assert patch_ids(history) == ["inline-pure-tools", "local-builtin-tools"]
    replayer = Replayer(workflows=[GraphRun], data_converter=DATA_CONVERTER, workflow_runner=workflow_runner())
    assert (await replayer.replay_workflow(history)).replay_failure is None
