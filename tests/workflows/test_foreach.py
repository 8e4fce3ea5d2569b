"""`foreach` on a real Temporal dev server: items one after another, in order, each seeing the ones
before it; a failing item parks the run there and `retry` goes on from it."""

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

#: A running total: each item adds its number to the total of the item before it. The item 13
#: fails (exit 3) until the file `marker` names exists.
FOREACH = """
vars:
  numbers: json = []
  marker: string = "MARKER"
router each_number:
  mode: foreach
  over: "{{vars.numbers}}"
tool add:
  command: `python3 -c 'import json, os, sys; a = sys.argv; n = int(a[1]); sys.exit(3) if n == 13 and not os.path.exists(a[5]) else None; prev = json.loads(a[4]); print(json.dumps({"n": n, "first": a[2] == "true", "last": a[3] == "true", "total": n + (prev[-1]["output"]["total"] if prev else 0), "seen": [r["item"] for r in prev]}))' {{input.n}} {{input.first}} {{input.last}} {{input.before}} {{vars.marker}}`
join collect:
  strategy: wait_all
workflow totals:
  entry: each_number
  each_number -> add with { n: "{{input.item}}", first: "{{input.first}}", last: "{{input.last}}", before: "{{input.results}}" }
  add -> collect
  collect -> done
"""


async def start(env: WorkflowEnvironment, task_queue: str, numbers: list[int], marker: Path,
                **options: Any) -> WorkflowHandle[Any, RunResult]:
    return await runs.start(env.client, task_queue, FOREACH.replace("MARKER", str(marker)),
                            inputs={"numbers": numbers}, **options)


async def events_of(handle: WorkflowHandle[Any, RunResult]) -> list[Event]:
    return await handle.query("events", 0, result_type=list[Event])


async def test_items_run_one_after_another_in_list_order(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, [5, 3, 8, 1], tmp_path / "absent")
        result = await finish(handle, timeout=120)
        events = await events_of(handle)
    assert result.status == "finished", result.reason
    branch_events = [(e.type, e.branch) for e in events if e.type in ("branch_started", "branch_finished")]
    assert branch_events == [(kind, f"each_number>add[{i}]") for i in range(4)
                             for kind in ("branch_started", "branch_finished")]
    assert [r["item"] for r in result.outputs["collect"]["results"]] == [5, 3, 8, 1]


async def test_each_item_sees_the_results_of_the_items_before_it(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await start(temporal_env, task_queue, [5, 3, 8], tmp_path / "absent"), timeout=120)
    assert result.status == "finished", result.reason
    outputs = [r["output"] for r in result.outputs["collect"]["results"]]
    assert [o["total"] for o in outputs] == [5, 8, 16]
    assert [o["seen"] for o in outputs] == [[], [5], [5, 3]]


async def test_only_the_first_item_is_first_and_only_the_last_is_last(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await start(temporal_env, task_queue, [4, 6, 2], tmp_path / "absent"), timeout=120)
    assert result.status == "finished", result.reason
    outputs = [r["output"] for r in result.outputs["collect"]["results"]]
    assert [(o["first"], o["last"]) for o in outputs] == [(True, False), (False, False), (False, True)]


async def test_a_failing_item_parks_the_run_before_the_items_after_it_start(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, [1, 13, 2], tmp_path / "absent", max_attempts=1)
        view = await wait_for(handle, lambda v: v.status == "failed_resumable", timeout=120)
        events = await events_of(handle)
        await handle.terminate("test over")
    assert [(f.node, f.branch) for f in view.failures] == [("add", "each_number>add[1]")]
    assert [e.branch for e in events if e.type == "branch_started"] == ["each_number>add[0]", "each_number>add[1]"]


async def test_retrying_the_parked_item_goes_on_with_the_items_after_it(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env, task_queue, [1, 13, 2], marker, max_attempts=1)
        await wait_for(handle, lambda v: v.status == "failed_resumable", timeout=120)
        marker.write_text("")
        await handle.signal("retry", "add")
        result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    assert [r["output"]["total"] for r in result.outputs["collect"]["results"]] == [1, 14, 16]


async def test_an_empty_list_reaches_the_join_with_no_results(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        result = await finish(await start(temporal_env, task_queue, [], tmp_path / "absent"))
    assert result.status == "finished", result.reason
    assert result.outputs["collect"]["results"] == [] and "add" not in result.outputs


async def test_under_best_effort_a_failed_item_is_left_out_and_the_next_item_runs(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    src = FOREACH.replace("MARKER", str(tmp_path / "absent")).replace("strategy: wait_all", "strategy: best_effort")
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, src, inputs={"numbers": [1, 13, 2]},
                                  max_attempts=1)
        result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    collected = result.outputs["collect"]
    assert [(r["item"], r["output"]["seen"]) for r in collected["results"]] == [(1, []), (2, [1])]
    assert [(f["index"], f["item"]) for f in collected["_failed_branches"]] == [(1, 13)]


#: Each item is checked; 13 is refused (its branch reaches `fail`).
REFUSING = """
vars:
  numbers: json = []
schema verdict:
  refused: bool
router each_number:
  mode: foreach
  over: "{{vars.numbers}}"
tool check:
  command: `python3 -c 'import json, sys; print(json.dumps({"refused": sys.argv[1] == "13"}))' {{input.n}}`
  output: verdict
join collect:
  strategy: wait_all
workflow checked:
  entry: each_number
  each_number -> check with { n: "{{input.item}}" }
  check -> fail when refused
  check -> collect
  collect -> done
"""


async def test_under_wait_all_an_item_that_reaches_fail_stops_the_items_after_it(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, REFUSING, inputs={"numbers": [5, 13, 8, 1]})
        result = await finish(handle, timeout=120)
        events = await events_of(handle)
    started = [e.branch for e in events if e.type == "branch_started"]
    assert started == ["each_number>check[0]", "each_number>check[1]"], started  # 8 and 1 never start
    assert (result.status, result.last_node) == ("failed", "fail")
    assert "reached the fail node" in result.reason and "each_number" in result.reason
