"""Live control of a running run on a real Temporal dev server: a budget stop parks the run and a
raise lets it finish without running its finished nodes again; loop grants; pause and resume at a
node boundary; the loop budget guard. Scripted model at 0.01 USD a call, real worker."""

from __future__ import annotations

from typing import Any

import pytest
import runs
from runs import finish, state, wait_for
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from workflows.contract.state import Answer, BudgetRaise, LiveControl, LoopGrant, PauseRequest, RunResult

pytestmark = pytest.mark.asyncio

SCHEMAS = """
schema verdict:
  approved: bool
  summary: string
schema decision:
  approved: bool
agent writer:
  model: "scripted"
  output: verdict
judge reviewer:
  model: "scripted"
  output: verdict
"""

#: writer, reviewer, writer (0.03 spent, over 0.025): the run parks before the second review.
PARKS = SCHEMAS + """
workflow review:
  entry: writer
  budget:
    max_cost_usd: 0.025
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(3)
  reviewer -> fail
"""
REJECT_THEN_APPROVE = {"reviewer": [{"approved": False, "summary": "no"}, {"approved": True, "summary": "yes"}],
                       "cost_per_call_usd": 0.01}

#: A gate first (the test acts while it waits), then a loop that never approves.
GATED_LOOP = SCHEMAS + """
human go:
  output: decision
workflow gated:
  entry: go
  go -> writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(1)
  reviewer -> fail
"""
ALWAYS_REJECT = {"reviewer": {"approved": False, "summary": "no"}}


async def start(env: WorkflowEnvironment, task_queue: str, src: str, **options: Any) -> WorkflowHandle[Any, RunResult]:
    return await runs.start(env.client, task_queue, src, **options)


def events_of(view_events: list[Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in view_events if e["type"] == kind]


async def all_events(handle: WorkflowHandle[Any, RunResult]) -> list[dict[str, Any]]:
    return await handle.query("events", 0)


async def test_a_budget_stop_parks_and_a_raise_finishes_without_rerunning_finished_nodes(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, PARKS, script=REJECT_THEN_APPROVE, on_budget="park")
        parked = await wait_for(handle, lambda v: v.status == "waiting_budget")
        assert "iterloop budget" in parked.budget_wait and "--max-cost-usd" in parked.budget_wait
        assert "'reviewer'" in parked.budget_wait
        before = {n: s.visits for n, s in parked.nodes.items()}
        control = await handle.execute_update("raise_budget", BudgetRaise(max_cost_usd=0.1, by="ada", reason="worth it"),
                                              result_type=LiveControl)
        result = await finish(handle)
        events = await all_events(handle)
    assert control.limits["cost_usd"] == 0.1
    assert before == {"writer": 2, "reviewer": 1, "done": 0, "fail": 0}
    assert result.status == "finished" and result.outputs["reviewer"]["approved"] is True
    started = [e["node"] for e in events_of(events, "node_started")]
    assert started == ["writer", "reviewer", "writer", "reviewer"]  # the finished writer did not run again
    assert events_of(events, "budget_raised")[0]["data"] == {"limits": {"cost_usd": 0.1}, "by": "ada",
                                                             "reason": "worth it"}


async def test_a_raise_not_above_the_limit_is_refused_and_changes_nothing(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, PARKS, script=REJECT_THEN_APPROVE, on_budget="park")
        await wait_for(handle, lambda v: v.status == "waiting_budget")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("raise_budget", BudgetRaise(max_cost_usd=0.02), result_type=LiveControl)
        view = await state(handle)
        events = await all_events(handle)
        await handle.cancel()
    assert "limits only go up; the cost_usd limit is 0.025 now" in str(refused.value.cause)
    assert view.status == "waiting_budget" and view.budget_limits == {}
    assert not events_of(events, "budget_raised")


async def test_a_run_started_to_end_on_its_budget_still_ends_there(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await start(temporal_env, task_queue, PARKS, script=REJECT_THEN_APPROVE))
    assert result.status == "budget_exceeded" and "cost_usd" in result.reason


async def test_granted_iterations_let_an_exhausted_loop_go_round_again(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, GATED_LOOP, script=ALWAYS_REJECT)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        control = await handle.execute_update("grant_iterations", LoopGrant(loop="revise", iterations=2, by="ada"),
                                              result_type=LiveControl)
        await handle.execute_update("answer", Answer(gate="go", answers={"approved": True}))
        result = await finish(handle)
        view = await state(handle)
    assert control.loop_grants == {"revise": 2}
    assert result.status == "failed"  # the loop's exit once its bound and the grant are used up
    assert view.nodes["writer"].visits == 4 and view.loop_counters["revise"] == 3


async def test_a_grant_for_an_unknown_loop_is_refused(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, GATED_LOOP, script=ALWAYS_REJECT)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("grant_iterations", LoopGrant(loop="polish", iterations=1))
        view = await state(handle)
        await handle.cancel()
    assert "has no loop 'polish'; loops: revise" in str(refused.value.cause)
    assert view.loop_grants == {}


async def test_pause_holds_the_run_at_the_next_node_boundary_until_resumed(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, GATED_LOOP, script=ALWAYS_REJECT)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        await handle.execute_update("pause", PauseRequest(by="ada", reason="lunch"), result_type=LiveControl)
        await handle.execute_update("answer", Answer(gate="go", answers={"approved": True}))
        held = await wait_for(handle, lambda v: v.status == "paused")
        resumed = await handle.execute_update("resume", PauseRequest(by="ada"), result_type=LiveControl)
        result = await finish(handle)
        events = await all_events(handle)
    assert held.paused_by == "ada" and held.nodes["writer"].visits == 0  # held before writer started
    assert resumed.paused is False and resumed.status == "running"
    paused = events_of(events, "run_paused")
    assert [(e["node"], e["data"]) for e in paused] == [("writer", {"by": "ada", "reason": "lunch"})]
    assert result.status == "failed" and result.usage.calls > 0  # it went on from writer to the loop's exit


async def test_pause_and_resume_refuse_what_the_run_already_is(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, GATED_LOOP, script=ALWAYS_REJECT)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        with pytest.raises(WorkflowUpdateFailedError) as not_paused:
            await handle.execute_update("resume", PauseRequest())
        await handle.execute_update("pause", PauseRequest(by="ada"))
        with pytest.raises(WorkflowUpdateFailedError) as paused_twice:
            await handle.execute_update("pause", PauseRequest(by="bob"))
        await handle.cancel()
    assert "the run is not paused" in str(not_paused.value.cause)
    assert "paused already (by ada)" in str(paused_twice.value.cause)


#: A loop whose exhaustion exit is `done`: the guard can leave with the drafts made so far.
GUARDED = SCHEMAS + """
workflow guarded:
  entry: writer
  budget:
    max_cost_usd: 0.035
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(5)
  reviewer -> done
"""


async def test_the_loop_budget_guard_leaves_a_loop_the_budget_cannot_pay_another_round_of(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    script = {**ALWAYS_REJECT, "cost_per_call_usd": 0.01}
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, GUARDED, script=script, on_budget="park")
        result = await finish(handle)
        events = await all_events(handle)
    # writer + reviewer cost 0.02; 0.015 is left: another round would not fit, so the run leaves with its draft.
    assert result.status == "finished" and result.outputs["writer"]
    assert result.usage.cost_usd == pytest.approx(0.02)
    guard = events_of(events, "loop_budget_guard")
    assert [(g["data"]["loop"], g["data"]["dimension"], g["data"]["to"]) for g in guard] == [
        ("revise", "cost_usd", "done")]
    assert guard[0]["data"]["round_estimate"] == pytest.approx(0.02)
    assert guard[0]["data"]["remaining"] == pytest.approx(0.015)
