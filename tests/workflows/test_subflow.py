"""`subbot` nodes on a real Temporal dev server: another workflow file run as a child workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import runs
from runs import finish, poll, wait_for
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import dsl
from dsl import ir
from workflows.contract.state import RunResult, RunView
from workflows.contract.vocabulary import SA_WORKFLOW, WORKFLOW_TYPE

pytestmark = pytest.mark.asyncio

#: The child: squares its var; until the marker file exists it holds on a one-hour timer first.
CHILD = """
vars:
  n: int = 1
  marker: string = ""
schema seen:
  ok: bool
schema squared:
  sq: int
tool look:
  command: `if [ -e {{vars.marker}} ]; then printf '{"ok": true}'; else printf '{"ok": false}'; fi`
  output: seen
wait hold:
  duration: "1h"
tool square:
  command: `n={{vars.n}}; printf '{"sq": %d}' $((n*n))`
  output: squared
workflow child:
  entry: look
  look -> square when ok
  look -> hold when not ok
  hold -> square
  square -> done
"""

PARENT = """
vars:
  marker: string
schema seed:
  n: int
tool pick:
  command: `printf '{"n": 7}'`
  output: seed
subbot squarer:
  bot: "child.iter"
  budget:
    max_iterations: 10
tool report:
  command: `printf '{"result": %s}' {{input.sq}}`
workflow parent:
  entry: pick
  pick -> squarer with { n: "{{outputs.pick.n}}", marker: "{{vars.marker}}" }
  squarer -> report with { sq: "{{outputs.squarer.square.sq}}" }
  report -> done
"""


def compiled(tmp: Path) -> ir.Workflow:
    (tmp / "child.iter").write_text(CHILD)
    (tmp / "parent.iter").write_text(PARENT)
    result = dsl.check_file(tmp / "parent.iter")
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    return result.workflow


async def start(client: Client, task_queue: str, tmp: Path, marker: Path) -> WorkflowHandle[Any, RunResult]:
    return await runs.start(client, task_queue, compiled(tmp), inputs={"marker": str(marker)}, max_attempts=1)


async def child_view(client: Client, child_id: str) -> RunView | None:
    try:
        return await client.get_workflow_handle(child_id).query("state", result_type=RunView)
    except (RPCError, WorkflowQueryFailedError):  # not started yet, or not yet past its first task
        return None


async def held(client: Client, child_id: str) -> bool:
    view = await child_view(client, child_id)
    return view is not None and view.current_nodes == ["hold"]


async def test_a_subbot_runs_its_file_as_a_child_run_and_hands_on_its_outputs(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("")
    client = temporal_env.client
    async with runs.running_worker(client, task_queue):
        handle = await start(client, task_queue, tmp_path, marker)
        result = await finish(handle)
        child = await client.get_workflow_handle(f"{handle.id}-squarer-1").describe()
    assert result.status == "finished", result.reason
    assert result.outputs["report"] == {"result": 49}
    assert result.outputs["squarer"]["_run"] == f"{handle.id}-squarer-1"
    assert child.workflow_type == WORKFLOW_TYPE and child.parent_id == handle.id
    assert child.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED


async def test_a_child_run_is_listed_like_any_run_with_its_own_workflow_name(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("")
    client = temporal_env.client
    async with runs.running_worker(client, task_queue):
        handle = await start(client, task_queue, tmp_path, marker)
        await finish(handle)
    child_id = f"{handle.id}-squarer-1"

    async def listed() -> list[Any]:
        query = f'WorkflowType="{WORKFLOW_TYPE}" AND {SA_WORKFLOW}="child" AND WorkflowId="{child_id}"'
        return [w async for w in client.list_workflows(query)]

    assert len(await poll(listed, "the child run in the run list")) == 1


async def test_the_node_budget_replaces_the_child_files_budget(tmp_path: Path) -> None:
    wf = compiled(tmp_path)
    node = wf.nodes["squarer"]
    assert isinstance(node, ir.SubbotNode) and node.workflow is not None
    assert node.budget is not None and node.budget.max_iterations == 10
    assert node.workflow.name == "child" and node.workflow.budget is None


async def test_a_child_terminated_mid_way_parks_the_node_and_a_retry_runs_a_new_child_to_the_end(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    client = temporal_env.client
    async with runs.running_worker(client, task_queue):
        handle = await start(client, task_queue, tmp_path, marker)
        first = f"{handle.id}-squarer-1"
        await poll(lambda: held(client, first), "the child to hold on its timer")
        await client.get_workflow_handle(first).terminate("killed mid-way")
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        assert [f.node for f in view.failures] == ["squarer"] and first in view.failures[0].error
        marker.write_text("")
        await handle.signal("retry", "squarer")
        result = await finish(handle)
        second = await client.get_workflow_handle(f"{handle.id}-squarer-2").describe()
    assert result.status == "finished", result.reason
    assert result.outputs["report"] == {"result": 49}
    assert second.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED


async def test_cancelling_the_parent_cancels_its_child(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    client = temporal_env.client
    async with runs.running_worker(client, task_queue):
        handle = await start(client, task_queue, tmp_path, tmp_path / "never")
        child_id = f"{handle.id}-squarer-1"
        await poll(lambda: held(client, child_id), "the child to hold on its timer")
        await handle.cancel()

        async def child_cancelled() -> bool:
            desc = await client.get_workflow_handle(child_id).describe()
            return desc.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED

        await poll(child_cancelled, "the child to be cancelled")


async def test_a_subbot_without_its_compiled_file_is_refused_before_the_run_starts() -> None:
    from runtime.command_errors import UsageError
    from runtime.run_start import check_sub_workflows

    wf = dsl.check_source(PARENT).workflow
    assert wf is not None
    with pytest.raises(UsageError, match="subbot node\\(s\\) 'squarer' \\(bot 'child.iter'\\)"):
        check_sub_workflows(wf, "<api>")
