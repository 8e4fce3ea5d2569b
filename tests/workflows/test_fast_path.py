"""The fast path: `call:` nodes of fast, side-effect-free builtin tools run as local activities.

Each test runs real workflows on the session's dev server and reads what Temporal recorded: a
local activity is a `core_local_activity` marker (its summary names the node), an ordinary one an
ActivityTaskScheduled event. The same file run with `RunOptions.local_tools=False` (every tool call
an ordinary activity, as before the fast path) is the reference for outputs, events and counters.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from runs import events_with, finish, running_worker, start, state, wait_for
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.tools.builtins import EchoInput, EchoOutput
from activities.tools.registry import registry, tool_call
from activities.tools.spec import Tool
from runtime.connect import DATA_CONVERTER
from worker import workflow_runner
from workflows.contract.messages import TOOL_CALL, ToolCallRequest, ToolCallResult
from workflows.contract.state import RunResult
from workflows.contract.tool_catalog import LOCAL_TOOLS
from workflows.graph_run import GraphRun

LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"


def chain_source(n: int) -> str:
    tools = "".join(f"tool t{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  t{i} -> t{i + 1} with {{ payload: "{{{{outputs.t{i}.payload}}}}" }}\n' for i in range(n - 1))
    return f'vars:\n  payload: string = "hi"\n{tools}workflow chain:\n  entry: t0\n{edges}  t{n - 1} -> done\n'


def srm_chain_source(n: int) -> str:
    """A chain of `check_srm` nodes: a local tool that stays a local activity (echo and sum_values
    are evaluated in the workflow itself: tests/workflows/test_inline_tools.py)."""
    tools = "".join(f"tool t{i}:\n  call: check_srm\n" for i in range(n))
    edges = "".join(f'  t{i} -> t{i + 1} with {{ observed: "{{{{vars.observed}}}}" }}\n' for i in range(n - 1))
    return f"vars:\n  observed: json = [500, 505]\n{tools}workflow chain:\n  entry: t0\n{edges}  t{n - 1} -> done\n"


def summary_of(event: Any) -> str:
    """The one-line summary a command was given (`<node> · call <tool>` for a tool call)."""
    payload = event.user_metadata.summary
    return json.loads(payload.data) if payload.data else ""


def local_activity_nodes(history: Any) -> list[str]:
    """The node of each local activity, in history order (from its marker's summary)."""
    return [summary_of(e).split(" · ")[0] for e in history.events
            if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER]


def scheduled_activities(history: Any) -> list[tuple[str, str]]:
    """(node, activity type) of each ordinary activity scheduled, in history order."""
    return [(json.loads(a.input.payloads[0].data)["node_id"], a.activity_type.name)
            for a in events_with(history, "activity_task_scheduled_event_attributes")]


def workflow_tasks(history: Any) -> int:
    return len(events_with(history, "workflow_task_completed_event_attributes"))


async def run_to_end(env: WorkflowEnvironment, task_queue: str, src: str, **options: Any) -> tuple[
        WorkflowHandle[Any, RunResult], RunResult, Any]:
    handle = await start(env.client, task_queue, src, **options)
    result = await finish(handle)
    return handle, result, await handle.fetch_history()


async def test_a_chain_of_local_tool_nodes_runs_as_local_activities_in_a_few_workflow_tasks(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, srm_chain_source(12))
    assert result.status == "finished" and result.outputs["t11"]["srm_detected"] is False
    assert local_activity_nodes(history) == [f"t{i}" for i in range(12)]
    assert scheduled_activities(history) == []
    # One task starts the run and runs every node; a second may close it. Never one per node.
    assert workflow_tasks(history) <= 3
    patches = [e.marker_recorded_event_attributes for e in history.events
               if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name == PATCH_MARKER]
    assert [json.loads(p.details["patch-data"].payloads[0].data)["id"] for p in patches] == ["local-builtin-tools"]


async def test_a_run_that_asks_for_ordinary_activities_gets_one_per_node(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, chain_source(4), local_tools=False)
    assert result.status == "finished"
    assert local_activity_nodes(history) == []
    assert scheduled_activities(history) == [(f"t{i}", TOOL_CALL) for i in range(4)]


async def test_a_fast_path_run_replays_its_own_history(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, _, history = await run_to_end(temporal_env, task_queue, srm_chain_source(3))
    replayer = Replayer(workflows=[GraphRun], data_converter=DATA_CONVERTER, workflow_runner=workflow_runner())
    assert (await replayer.replay_workflow(history)).replay_failure is None


BAD_SUM = """
vars:
  values: json
tool add:
  call: sum_values
workflow adding:
  entry: add
  add -> done
"""


async def parked_failure(env: WorkflowEnvironment, task_queue: str, **options: Any) -> tuple[Any, Any]:
    handle = await start(env.client, task_queue, BAD_SUM, inputs={"values": ["one", 2]}, **options)
    view = await wait_for(handle, lambda v: v.status == "failed_resumable")
    history = await handle.fetch_history()
    await handle.cancel()
    return view, history


async def test_a_local_tools_bad_arguments_fail_the_node_as_an_ordinary_activitys_do(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        local_view, local_history = await parked_failure(temporal_env, task_queue)
        ordinary_view, _ = await parked_failure(temporal_env, task_queue, local_tools=False)
    assert local_activity_nodes(local_history) == ["add"]  # one attempt: a bad request is never retried
    [local], [ordinary] = local_view.failures, ordinary_view.failures
    assert local.error_type == ordinary.error_type == "BadRequest"
    assert local.error == ordinary.error and "invalid arguments for tool 'sum_values'" in local.error
    assert local_view.nodes["add"].attempts == ordinary_view.nodes["add"].attempts == 1


IO_TOOL = """
tool funnel:
  call: get_funnel_data
tool first:
  call: echo
workflow reading:
  entry: funnel
  funnel -> first with { steps: "{{outputs.funnel.steps}}" }
  first -> done
"""


async def test_a_tool_with_io_still_runs_as_an_ordinary_activity(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, IO_TOOL)
    assert result.status == "finished" and result.outputs["first"]["steps"]
    assert scheduled_activities(history) == [("funnel", TOOL_CALL)]
    assert local_activity_nodes(history) == []  # echo is evaluated in the workflow (test_inline_tools.py)


BIG_OUTPUT = """
vars:
  text: string
tool big:
  call: echo
tool after:
  call: echo
workflow big:
  entry: big
  big -> after with { whole: "{{outputs.big}}" }
  after -> done
"""


async def test_a_node_whose_input_holds_a_stored_artifact_runs_as_an_ordinary_activity(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    # `big`'s output is over the offload threshold: the run keeps a stub, and `after` gets a
    # reference its activity resolves by reading the artifact store.
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, BIG_OUTPUT, inputs={"text": "x" * 3000},
                                              offload_threshold_bytes=1024)
    assert result.status == "finished" and "$artifact" in result.outputs["big"]
    assert local_activity_nodes(history) == ["big"]
    assert scheduled_activities(history) == [("after", TOOL_CALL)]


FAN = """
router split:
  mode: fan_out_all
join merge:
  strategy: wait_all
workflow fan:
  entry: split
  merge -> done
"""


def srm_fan_source(n: int) -> str:
    """A fan-out of `check_srm` branches (a local tool, not evaluated inline)."""
    tools = "".join(f"tool b{i}:\n  call: check_srm\n" for i in range(n))
    edges = "".join(f'  split -> b{i} with {{ observed: "{{{{vars.observed}}}}" }}\n  b{i} -> merge\n' for i in range(n))
    return ("vars:\n  observed: json = [500, 505]\n" + tools
            + FAN.replace("  merge -> done\n", edges + "  merge -> done\n"))


def fan_source(n: int) -> str:
    tools = "".join(f"tool b{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  split -> b{i} with {{ i: "{i}" }}\n  b{i} -> merge\n' for i in range(n))
    return tools + FAN.replace("  merge -> done\n", edges + "  merge -> done\n")


async def test_a_fan_out_schedules_every_branch_in_one_workflow_task(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, fan_source(8), local_tools=False)
    assert result.status == "finished" and len(result.outputs) == 10
    scheduled = events_with(history, "activity_task_scheduled_event_attributes")
    assert len(scheduled) == 8
    assert len({a.workflow_task_completed_event_id for a in scheduled}) == 1


async def test_a_fan_out_of_local_tools_and_its_join_complete_in_one_workflow_task(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        _, result, history = await run_to_end(temporal_env, task_queue, srm_fan_source(20))
    assert result.status == "finished" and result.outputs["b19"]["srm_detected"] is False
    assert sorted(local_activity_nodes(history)) == sorted(f"b{i}" for i in range(20))
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.HasField("marker_recorded_event_attributes")]
    assert len({m.workflow_task_completed_event_id for m in markers}) == 1
    assert workflow_tasks(history) <= 2


def test_the_registry_marks_local_exactly_the_tools_the_catalog_lists() -> None:
    assert {name for name, tool in registry().items() if tool.local} == set(LOCAL_TOOLS)
    assert not any(tool.local and tool.mutating for tool in registry().values())


@pytest.mark.parametrize("local", [True, False])
def test_a_tool_declared_local_or_not_against_the_catalog_is_refused(local: bool) -> None:
    name = "get_funnel_data" if local else "echo"  # the catalog says the opposite of ``local``

    async def impostor(args: EchoInput) -> EchoOutput:
        """Returns its arguments."""
        return EchoOutput()

    with pytest.raises(ValueError, match=f"builtin tool '{name}': declared with local={local}.*LOCAL_TOOLS"):
        Tool.implementing(name, impostor, local=local)


@pytest.mark.parametrize(("value", "local"), [("0", False), ("false", False), ("", True), ("1", True)])
def test_iterloop_local_tools_decides_the_runs_started_there(value: str, local: bool) -> None:
    from runs import compile_ok

    from runtime.run_start import CompiledWorkflow, StartRequest, graph_run_start, prepare_start
    from runtime.settings import Settings

    compiled = CompiledWorkflow(workflow=compile_ok(chain_source(2)), source="chain.iter", location="/srv/chain.iter")
    prepared = prepare_start(StartRequest(compiled=compiled, origin="a test", given_by="request"),
                             Settings.from_env({"ITERLOOP_LOCAL_TOOLS": value}))
    assert graph_run_start(prepared, None).run_input.options.local_tools is local


@activity.defn(name=TOOL_CALL)
async def tool_call_on_a_slow_worker(req: ToolCallRequest) -> ToolCallResult:
    """The real tool activity, on a worker so loaded that a local attempt takes longer than a local
    activity may (an ordinary attempt of the same call is not slowed down)."""
    if activity.info().is_local:
        await asyncio.sleep(30)
    return await tool_call(req)


async def test_a_local_tool_that_outlasts_its_budget_runs_as_an_ordinary_activity(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    worker = Worker(temporal_env.client, task_queue=task_queue, workflows=[GraphRun],
                    activities=[tool_call_on_a_slow_worker], workflow_runner=workflow_runner())
    async with worker:
        handle, result, history = await run_to_end(temporal_env, task_queue, srm_chain_source(2))
        view = await state(handle)
    assert result.status == "finished" and result.outputs["t1"]["srm_detected"] is False
    assert scheduled_activities(history) == [("t0", TOOL_CALL), ("t1", TOOL_CALL)]
    assert view.nodes["t0"].attempts == 0 and not view.failures  # a slow attempt is no failure
