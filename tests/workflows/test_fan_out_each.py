"""`fan_out_each` on a real Temporal dev server: one branch per item, bounded, collected in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import runs
from runs import finish, wait_for
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from workflows.contract.state import Event, RunResult

pytestmark = pytest.mark.asyncio

#: Twenty items, four at a time; the item 13 makes the body's command fail (exit 3).
EACH = """
vars:
  numbers: json = []
schema squared:
  n: int
  sq: int
router each_number:
  mode: fan_out_each
  over: "{{vars.numbers}}"
  parallelism: 4
tool square:
  command: `n={{input.n}}; [ $n -ne 13 ] || exit 3; printf '{"n": %d, "sq": %d}' $n $((n*n))`
  output: squared
join collect:
  strategy: STRATEGY
workflow squares:
  entry: each_number
  each_number -> square with { n: "{{input.item}}" }
  square -> collect
  collect -> done
"""

NUMBERS = list(range(1, 21))


async def start(env: WorkflowEnvironment, task_queue: str, strategy: str, numbers: list[int],
                **options: Any) -> WorkflowHandle[Any, RunResult]:
    return await runs.start(env.client, task_queue, EACH.replace("STRATEGY", strategy),
                            inputs={"numbers": numbers}, **options)


async def events_of(handle: WorkflowHandle[Any, RunResult]) -> list[Event]:
    return await handle.query("events", 0, result_type=list[Event])


async def finished_branches(handle: WorkflowHandle[Any, RunResult], count: int) -> bool:
    return sum(e.type == "branch_finished" for e in await events_of(handle)) == count


def most_in_flight(events: list[Event]) -> int:
    """The most branches running at once, read from the branch events in order."""
    running = peak = 0
    for e in events:
        if e.type == "branch_started":
            running += 1
            peak = max(peak, running)
        elif e.type in ("branch_finished", "branch_failed"):
            running -= 1
    return peak


async def test_best_effort_collects_the_items_that_succeeded_in_item_order(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, "best_effort", NUMBERS)
        result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    collected = result.outputs["collect"]
    assert [r["item"] for r in collected["results"]] == [n for n in NUMBERS if n != 13]
    assert [r["output"]["sq"] for r in collected["results"]] == [n * n for n in NUMBERS if n != 13]
    assert [(f["index"], f["item"]) for f in collected["_failed_branches"]] == [(12, 13)]


async def test_each_branch_runs_at_most_parallelism_items_at_once(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, "best_effort", NUMBERS, max_events_kept=1000)
        await finish(handle, timeout=120)
        events = await events_of(handle)
    assert sum(e.type == "branch_started" for e in events) == 20
    assert most_in_flight(events) == 4


async def test_wait_all_parks_on_the_failed_item_after_the_others_finish(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, "wait_all", NUMBERS, max_attempts=1)
        view = await wait_for(handle, lambda v: v.status == "failed_resumable", timeout=120)
        await runs.poll(lambda: finished_branches(handle, 19), "the 19 other items to finish", timeout=120)
        assert [(f.node, f.branch) for f in view.failures] == [("square", "each_number>square[12]")]
        assert view.nodes["collect"].visits == 0
        await handle.terminate("test over")


async def test_an_empty_list_reaches_the_join_with_no_results(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await start(temporal_env, task_queue, "wait_all", []))
    assert result.status == "finished"
    assert result.outputs["collect"]["results"] == []
    assert "square" not in result.outputs


async def test_a_list_that_is_not_a_list_fails_the_run_naming_the_router(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, EACH.replace("STRATEGY", "wait_all"),
                                  inputs={"numbers": {"not": "a list"}})
        result = await finish(handle)
    assert result.status == "failed"
    assert "fan_out_each router 'each_number'" in result.reason and "must be a list" in result.reason


async def test_wait_all_finishes_with_every_item_once_the_parked_item_is_retried(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    src = EACH.replace("STRATEGY", "wait_all").replace("vars:\n", f'vars:\n  marker: string = "{marker}"\n').replace(
        "[ $n -ne 13 ] || exit 3", "[ $n -ne 13 ] || [ -e {{vars.marker}} ] || exit 3")
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, src, inputs={"numbers": NUMBERS}, max_attempts=1)
        await wait_for(handle, lambda v: v.status == "failed_resumable", timeout=120)
        await runs.poll(lambda: finished_branches(handle, 19), "the 19 other items to finish", timeout=120)
        marker.write_text("")
        await handle.signal("retry", "square")
        result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    assert [r["output"]["sq"] for r in result.outputs["collect"]["results"]] == [n * n for n in NUMBERS]


async def test_parallelism_one_runs_the_items_one_after_another_in_order(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = EACH.replace("STRATEGY", "wait_all").replace("parallelism: 4", "parallelism: 1")
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, src, inputs={"numbers": [5, 3, 8]})
        result = await finish(handle)
        events = await events_of(handle)
    assert result.status == "finished", result.reason
    branch_events = [(e.type, e.branch) for e in events if e.type in ("branch_started", "branch_finished")]
    assert branch_events == [(kind, f"each_number>square[{i}]") for i in range(3)
                             for kind in ("branch_started", "branch_finished")]
    assert [r["output"]["sq"] for r in result.outputs["collect"]["results"]] == [25, 9, 64]


#: Two nodes per item: the second reads the first's output and the item, in its own branch only.
CHAIN = """
vars:
  numbers: json = []
schema squared:
  sq: int
router each_number:
  mode: fan_out_each
  over: "{{vars.numbers}}"
  parallelism: 3
tool square:
  command: `n={{input.n}}; sleep 0.$((n % 3)); printf '{"sq": %d}' $((n*n))`
  output: squared
tool tag:
  command: `printf '{"index": %d, "n": %d, "sq": %d}' {{outputs.each_number.index}} {{outputs.each_number.item}} {{outputs.square.sq}}`
join collect:
  strategy: wait_all
workflow chain:
  entry: each_number
  each_number -> square with { n: "{{input.item}}" }
  square -> tag
  tag -> collect
  collect -> done
"""


async def test_nodes_deeper_in_a_branch_read_their_own_item_and_their_own_siblings_outputs(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    numbers = [4, 2, 7, 5, 1, 6]
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await runs.start(temporal_env.client, task_queue, CHAIN, inputs={"numbers": numbers}))
    assert result.status == "finished", result.reason
    assert [r["output"] for r in result.outputs["collect"]["results"]] == [
        {"index": i, "n": n, "sq": n * n} for i, n in enumerate(numbers)]
