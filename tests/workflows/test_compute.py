"""Decisions without a model, on a real Temporal dev server: compute nodes, expression edges with
`when else`, the `{{loop.…}}`/`{{run.…}}` namespaces, and a loop's exhaustion exit."""

from __future__ import annotations

from typing import Any

import pytest
import runs
from runs import finish, state, wait_for
from temporalio.testing import WorkflowEnvironment

from workflows.contract.state import Event

pytestmark = pytest.mark.asyncio

STREAK = """
schema review:
  approved: bool
schema streak:
  count: int
  stop: bool
  round: int
  before: int
judge reviewer:
  model: "scripted"
  output: review
compute streak_check:
  input: review
  output: streak
  expr:
    count: "if(input.approved, default(outputs.streak_check.count, 0) + 1, 0)"
    stop: "input.approved && default(outputs.streak_check.count, 0) + 1 >= 2"
    round: "loop.rounds.iteration"
    before: "default(loop.rounds.previous_output.count, -1)"
workflow streaks:
  entry: reviewer
  reviewer -> streak_check with { approved: "{{outputs.reviewer.approved}}" }
  streak_check -> done when stop
  streak_check -> reviewer as rounds(5)
  streak_check -> fail
"""


async def test_compute_node_ends_a_loop_after_two_approvals_in_a_row(temporal_env: WorkflowEnvironment,
                                                                    task_queue: str) -> None:
    script = {"reviewer": [{"approved": True}, {"approved": False}, {"approved": True}, {"approved": True}]}
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, STREAK, script=script)
        result = await finish(handle)
        view = await state(handle)
        events = await run_events(handle)
        history = await handle.fetch_history()
    assert result.status == "finished" and result.last_node == "done"
    # `before`: the count when the loop was last taken (counts went 1, 0, 1, 2)
    assert result.outputs["streak_check"] == {"count": 2, "stop": True, "round": 3, "before": 1}
    finished = [e.data["output"] for e in events if e.type == "node_finished" and e.node == "streak_check"]
    assert [(o["count"], o["before"]) for o in finished] == [(1, -1), (0, 1), (1, 0), (2, 1)]
    assert view.nodes["reviewer"].visits == 4 and view.nodes["streak_check"].visits == 4
    assert view.loop_counters == {"rounds": 3}
    # the compute node ran in the workflow: the only activities are the reviewer's model calls
    scheduled = runs.events_with(history, "activity_task_scheduled_event_attributes")
    assert len(scheduled) == 4
    kinds = [(e.type, e.node) for e in events if e.node == "streak_check"]
    assert ("node_started", "streak_check") in kinds and ("node_finished", "streak_check") in kinds


async def test_exhausted_loop_takes_its_plain_exit_edge(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    script = {"reviewer": {"approved": False}}
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, STREAK, script=script)
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "failed" and result.last_node == "fail"
    assert view.nodes["reviewer"].visits == 6 and view.loop_counters == {"rounds": 5}


DECIDE = """
schema readout:
  lift: float
  srm: bool
schema decision:
  action: string
agent analyst:
  model: "scripted"
  output: readout
compute ship:
  output: decision
  expr:
    action: "'ship'"
compute hold:
  output: decision
  expr:
    action: "concat('hold at ', join([round(outputs.analyst.lift * 100, 1)], ''), '%')"
workflow decide:
  entry: analyst
  analyst -> ship when "lift > 0.02 && !srm"
  analyst -> fail when "srm"
  analyst -> hold when else
  ship -> done
  hold -> done
"""


@pytest.mark.parametrize(("readout", "last", "action"), [
    ({"lift": 0.05, "srm": False}, "ship", "ship"),
    ({"lift": 0.01, "srm": False}, "hold", "hold at 1.0%"),
])
async def test_expression_edges_route_and_else_takes_the_rest(temporal_env: WorkflowEnvironment, task_queue: str,
                                                              readout: dict[str, Any], last: str, action: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, DECIDE, script={"analyst": readout})
        result = await finish(handle)
        events = await run_events(handle)
    assert result.status == "finished"
    assert result.outputs[last] == {"action": action}
    chosen = [e.data for e in events if e.type == "edge_selected" and e.node == "analyst"]
    assert chosen == [{"from": "analyst", "to": last, **({"else": True} if last == "hold" else
                                                          {"expression": "lift > 0.02 && !srm"})}]


async def test_expression_edge_to_fail_is_taken_when_it_holds(temporal_env: WorkflowEnvironment,
                                                              task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, DECIDE,
                                  script={"analyst": {"lift": 0.09, "srm": True}})
        result = await finish(handle)
    assert result.status == "failed" and result.last_node == "fail"


BAD_TYPES = """
schema n:
  count: int
agent source:
  model: "scripted"
  output: n
compute measure:
  expr:
    size: "length(outputs.source.count)"
workflow w:
  entry: source
  source -> measure
  measure -> done
"""


async def test_a_type_error_in_an_expression_parks_the_node_naming_it(temporal_env: WorkflowEnvironment,
                                                                     task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, BAD_TYPES, script={"source": {"count": 3}})
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        await handle.cancel()
    assert [f.node for f in view.failures] == ["measure"]
    error = view.failures[0].error
    assert "'size'" in error and "length(outputs.source.count)" in error and "got int 3" in error


RUN_NAMESPACE = """
schema seen:
  run_id: string
  round: int
  elapsed_ok: bool
compute look:
  output: seen
  expr:
    run_id: "input.rid"
    round: "input.round"
    elapsed_ok: "input.elapsed >= 0 && run.tokens == 0"
compute again:
  expr:
    n: "loop.twice.iteration"
workflow w:
  entry: again
  again -> again as twice(2)
  again -> look with { rid: "{{run.id}}", round: "{{loop.twice.iteration}}", elapsed: "{{run.elapsed_seconds}}" }
  look -> done
"""


async def test_run_and_loop_namespaces_reach_with_mappings(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, RUN_NAMESPACE)
        result = await finish(handle)
    assert result.status == "finished"
    assert result.outputs["look"] == {"run_id": handle.id, "round": 2, "elapsed_ok": True}
    assert result.outputs["again"] == {"n": 2}


async def run_events(handle: Any) -> list[Event]:
    return await handle.query("events", 0, result_type=list[Event])


DATA_BOUND = """
vars:
  rounds: int
compute tick:
  expr:
    i: "loop.again.iteration"
    max: "loop.again.max"
workflow w:
  entry: tick
  tick -> tick as again("{{vars.rounds}}")
  tick -> done
"""


@pytest.mark.parametrize("rounds", [0, 3])
async def test_a_loop_bound_from_data_is_read_when_the_loop_is_entered(temporal_env: WorkflowEnvironment,
                                                                      task_queue: str, rounds: int) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, DATA_BOUND, inputs={"rounds": rounds})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert view.nodes["tick"].visits == rounds + 1
    # the first output is computed before the loop is entered: its bound is not known yet
    assert result.outputs["tick"] == {"i": rounds, "max": rounds if rounds else None}


async def test_a_loop_bound_that_is_not_a_number_parks_the_node(temporal_env: WorkflowEnvironment,
                                                                task_queue: str) -> None:
    src = DATA_BOUND.replace("rounds: int", "rounds: string")
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, src, inputs={"rounds": "many"})
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        await handle.cancel()
    assert "the bound of loop 'again'" in view.failures[0].error and "'many'" in view.failures[0].error

