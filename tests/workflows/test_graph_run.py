"""The interpreter on a real Temporal dev server, with real activities (scripted model, real shell)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import runs
from runs import finish, state, wait_for
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from workflows.contract.state import Answer, Event, RunResult

pytestmark = pytest.mark.asyncio


async def start(env: WorkflowEnvironment, task_queue: str, src: str, *, inputs: dict[str, Any] | None = None,
                **options: Any) -> WorkflowHandle[Any, RunResult]:
    return await runs.start(env.client, task_queue, src, inputs=inputs, **options)


def running_worker(env: WorkflowEnvironment, task_queue: str) -> Any:
    return runs.running_worker(env.client, task_queue)


REVIEW = """
schema verdict:
  approved: bool
  summary: string
agent writer:
  model: "scripted"
  output: verdict
judge reviewer:
  model: "scripted"
  output: verdict
workflow review:
  entry: writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(2)
  reviewer -> fail
"""


async def test_linear_loop_with_judge_finishes(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    script = {"reviewer": [{"approved": False, "summary": "too short"}, {"approved": True, "summary": "good"}],
              "writer": [{"approved": True, "summary": "v1"}, {"approved": True, "summary": "v2"}]}
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, REVIEW, script=script)
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert result.outputs["reviewer"]["summary"] == "good"
    assert view.nodes["writer"].visits == 2 and view.loop_counters == {"revise": 1}
    assert result.usage.provider == "scripted" and result.usage.input_tokens > 0


async def test_loop_exhaustion_takes_the_fallback(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    script = {"reviewer": {"approved": False, "summary": "no"}}
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, REVIEW, script=script)
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "failed" and "fail node" in result.reason
    assert view.nodes["reviewer"].visits == 3 and view.loop_counters == {"revise": 2}


SHELL = """
vars:
  name: string
tool greet:
  command: "printf '%s' {{vars.name}}"
tool fails:
  command: "test -f {{vars.marker}} || { echo 'marker missing' >&2; exit 3; }"
tool sums:
  call: sum_values
workflow shell:
  vars:
    marker: string = "/nonexistent"
  entry: greet
  greet -> sums with { values: "{{vars.values}}" }
  sums -> fails
  fails -> done
"""


async def test_shell_values_are_quoted_and_builtin_calls_get_with_arguments(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("x")
    src = SHELL.replace("vars:\n  name: string", "vars:\n  name: string\n  values: json")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src,
                             inputs={"name": "a'; touch /tmp/pwned; echo '", "values": [1, 2.5], "marker": str(marker)})
        result = await finish(handle)
    assert result.status == "finished"
    assert result.outputs["greet"] == {"result": "a'; touch /tmp/pwned; echo '"}
    assert result.outputs["sums"] == {"total": 3.5, "count": 2}


PUBLISHING_TOOLS = """
vars:
  values: json
schema totals:
  total: float
  count: int
tool add:
  call: sum_values
  output: totals
  publish: totals
tool describe:
  command: "printf '%s values' {{artifacts.totals.count}}"
  publish: description
tool report:
  call: echo
workflow published:
  entry: add
  add -> describe
  describe -> report with { totals: "{{artifacts.totals}}", line: "{{artifacts.description.result}}" }
  report -> done
"""


async def test_tool_nodes_publish_artifacts_that_later_nodes_read(temporal_env: WorkflowEnvironment,
                                                                  task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, PUBLISHING_TOOLS, inputs={"values": [1, 2.5]})
        result = await finish(handle)
        view = await state(handle)
        events = await handle.query("events", 0, result_type=list[Event])
    assert result.status == "finished"
    assert view.artifacts == {"totals": {"total": 3.5, "count": 2}, "description": {"result": "2 values"}}
    # A builtin call's artifact (typed, through `with`) and a shell command's (in its command).
    assert result.outputs["report"] == {"totals": {"total": 3.5, "count": 2}, "line": "2 values"}
    assert [(e.node, e.data) for e in events if e.type == "artifact_written"] == [
        ("add", {"publish": "totals", "version": 0}), ("describe", {"publish": "description", "version": 0})]


async def test_failed_node_parks_and_retry_reruns_it(temporal_env: WorkflowEnvironment, task_queue: str,
                                                     tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    src = SHELL.replace("vars:\n  name: string", "vars:\n  name: string\n  values: json")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src,
                             inputs={"name": "x", "values": [1], "marker": str(marker)})
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        assert [f.node for f in view.failures] == ["fails"]
        assert "exit" in view.failures[0].error and "marker missing" in view.failures[0].error
        marker.write_text("now it exists")
        await handle.signal("retry", "")
        result = await finish(handle)
    assert result.status == "finished"


FAN = """
schema r:
  score: int
agent a:
  model: "scripted"
  output: r
agent b:
  model: "scripted"
  output: r
tool broken:
  command: "exit 7"
router split:
  mode: fan_out_all
join merge:
  strategy: STRATEGY
  require: [a, b]
agent summary:
  model: "scripted"
workflow fan:
  entry: split
  split -> a
  split -> b
  split -> broken
  a -> merge with { ra: "{{outputs.a.score}}" }
  b -> merge with { rb: "{{outputs.b.score}}" }
  broken -> merge
  merge -> summary with { all: "{{outputs.merge}}" }
  summary -> done
"""


async def test_best_effort_join_tolerates_a_failed_branch(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, FAN.replace("STRATEGY", "best_effort"),
                             script={"a": {"score": 1}, "b": {"score": 2}})
        result = await finish(handle)
    assert result.status == "finished"
    merged = result.outputs["merge"]
    assert (merged["ra"], merged["rb"]) == (1, 2)
    assert [f["branch"] for f in merged["_failed_branches"]] == ["broken"]


async def test_wait_all_join_parks_on_a_failed_branch(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, FAN.replace("STRATEGY", "wait_all"),
                             script={"a": {"score": 1}, "b": {"score": 2}}, max_attempts=1)
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        assert [f.node for f in view.failures] == ["broken"]
        assert view.nodes["a"].status == "succeeded" and view.nodes["summary"].visits == 0
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result()
        assert isinstance(err.value.cause, CancelledError)
        view = await state(handle)
    assert view.status == "cancelled"


GATE = """
schema decision:
  approved: bool
  level: string [enum: "low", "high"]
prompt ask:
  Approve {{input.plan}}?
agent planner:
  model: "scripted"
human approval:
  instructions: ask
  output: decision
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""


async def test_gate_update_validates_and_answer_resumes(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, GATE, script={"planner": {"text": "ship v2"}})
        view = await wait_for(handle, lambda v: v.status == "waiting_human")
        [gate] = view.open_gates
        assert gate.gate == "approval" and gate.instructions == "Approve ship v2?"
        assert gate.schema_ is not None and [f.name for f in gate.schema_.fields] == ["approved", "level"]
        for bad, message in ((Answer(gate="nope", answers={}), "not a human gate"),
                             (Answer(gate="approval", answers={"approved": "maybe", "level": "low"}), "expects bool"),
                             (Answer(gate="approval", answers={"approved": True, "level": "mid"}), "one of low, high"),
                             (Answer(gate="approval", answers={"approved": True}), "needs field 'level'")):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update("answer", bad)
            assert message in str(err.value.cause)
        record = await handle.execute_update("answer", Answer(gate="approval", answers={"approved": "true", "level": "high"},
                                                              answered_by="ada"))
        assert record["answers"] == {"approved": True, "level": "high"} if isinstance(record, dict) else True
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert [(a.gate, a.answered_by, a.answers["approved"]) for a in view.answers] == [("approval", "ada", True)]


async def test_answer_before_the_gate_opens_is_kept(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = GATE.replace("agent planner:\n  model: \"scripted\"", "wait planner:\n  duration: \"2s\"").replace(
        'planner -> approval with { plan: "{{outputs.planner.text}}" }', "planner -> approval")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src)
        await handle.signal("answer", Answer(gate="approval", answers={"approved": False, "level": "low"},
                                             answered_by="slack:U1", in_advance=True))
        result = await finish(handle)
    assert result.status == "failed" and result.outputs["approval"] == {"approved": False, "level": "low"}


async def test_an_answer_for_a_closed_gate_is_refused_unless_sent_in_advance(temporal_env: WorkflowEnvironment,
                                                                            task_queue: str) -> None:
    src = GATE.replace("agent planner:\n  model: \"scripted\"", "wait planner:\n  duration: \"2s\"").replace(
        'planner -> approval with { plan: "{{outputs.planner.text}}" }', "planner -> approval")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True, "level": "low"}))
        assert "is not open" in str(err.value.cause) and "--in-advance" in str(err.value.cause)
        await handle.signal("answer", Answer(gate="approval", answers={"approved": True, "level": "low"},
                                             answered_by="slack:U1"))
        view = await wait_for(handle, lambda v: v.status == "waiting_human")
        events = await handle.query("events", 0)
        await handle.cancel()
    assert view.answers == [] and "answer_queued" not in [e["type"] for e in events]
    assert [e["data"]["by"] for e in events if e["type"] == "answer_rejected"] == ["slack:U1"]


async def test_budget_iterations_stop_the_run_cleanly(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = REVIEW.replace("workflow review:\n  entry: writer", "workflow review:\n  entry: writer\n  budget:\n"
                         "    max_iterations: 3")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, script={"reviewer": {"approved": False, "summary": "no"}})
        result = await finish(handle)
        events = await handle.query("events", 0)
    assert result.status == "budget_exceeded" and "iterations" in result.reason
    kinds = [e["type"] if isinstance(e, dict) else e.type for e in events]
    assert "budget_warning" in kinds and "budget_exceeded" in kinds


ROUTERS = """
schema pick:
  ok: bool
agent a:
  model: "scripted"
agent b:
  model: "scripted"
agent c:
  model: "scripted"
router rr:
  mode: round_robin
router smart:
  mode: llm
  model: "scripted"
  multi: MULTI
agent gather:
  model: "scripted"
  await: wait_all
workflow routes:
  entry: smart
  smart -> a
  smart -> b
  a -> gather
  b -> gather
  gather -> rr
  rr -> c
  rr -> done
  c -> rr as again(3)
"""


async def test_llm_router_multi_fans_out_and_round_robin_alternates(temporal_env: WorkflowEnvironment,
                                                                   task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, ROUTERS.replace("MULTI", "true"),
                             script={"smart": [["a", "b"]]})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert view.nodes["a"].visits == 1 and view.nodes["b"].visits == 1 and view.nodes["gather"].visits == 1
    assert view.nodes["c"].visits == 1 and view.nodes["rr"].visits == 2


async def test_llm_router_single_choice(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = ROUTERS.replace("MULTI", "false").replace("  await: wait_all\n", "")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, script={"smart": "b"})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert view.nodes["a"].visits == 0 and view.nodes["b"].visits == 1


async def test_long_loop_continues_as_new_with_state_intact(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = """
schema tick:
  more: bool
agent step:
  model: "scripted"
  output: tick
workflow long:
  entry: step
  step -> step when more as spin(120)
  step -> done
"""
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, continue_as_new_after_events=150,
                             script={"step": {"more": True}})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished"
    assert view.loop_counters == {"spin": 120} and view.nodes["step"].visits == 121
    assert view.executions > 1


CONDITION = """
schema verdict:
  ok: bool
judge check:
  model: "scripted"
  output: verdict
router decide:
  mode: condition
agent good:
  model: "scripted"
agent bad:
  model: "scripted"
workflow cond:
  entry: check
  check -> decide with { ok: "{{outputs.check.ok}}" }
  decide -> good when ok
  decide -> bad when not ok
  good -> done
  bad -> done
"""


@pytest.mark.parametrize(("ok", "taken"), [(True, "good"), (False, "bad")])
async def test_condition_router_reads_its_mapped_input(temporal_env: WorkflowEnvironment, task_queue: str,
                                                      ok: bool, taken: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, CONDITION, script={"check": {"ok": ok}})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished" and result.outputs["decide"] == {"ok": ok}
    assert view.nodes[taken].visits == 1 and view.nodes["bad" if ok else "good"].visits == 0


AUTO = """
schema decision:
  approved: bool
prompt guidance:
  Approve small changes.
human auto:
  mode: MODE
  model: "scripted"
  system: guidance
  output: decision
workflow autogate:
  entry: auto
  auto -> done when approved
  auto -> fail when not approved
"""


async def test_auto_answer_gate_is_answered_by_the_model(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, AUTO.replace("MODE", "auto_answer"),
                             script={"auto": {"approved": True}})
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "finished" and view.answers == [] and view.nodes["auto"].usage.output_tokens > 0


async def test_auto_or_pause_answers_itself_or_asks_a_human(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    src = AUTO.replace("MODE", "auto_or_pause")
    async with running_worker(temporal_env, task_queue):
        confident = await start(temporal_env, task_queue, src, script={"auto": {"approved": True,
                                                                                  "needs_human_input": False}})
        assert (await finish(confident)).status == "finished"
        unsure = await start(temporal_env, task_queue, src, script={"auto": {"needs_human_input": True}})
        view = await wait_for(unsure, lambda v: v.status == "waiting_human")
        assert [g.gate for g in view.open_gates] == ["auto"]
        await unsure.execute_update("answer", Answer(gate="auto", answers={"approved": False}))
        result = await finish(unsure)
    assert result.status == "failed" and result.outputs["auto"] == {"approved": False}


@pytest.mark.parametrize(("budget", "script_extra", "dimension"), [
    ("max_tokens: 60", {}, "tokens"),
    ("max_cost_usd: 0.5", {"cost_per_call_usd": 0.3}, "cost_usd"),
    ("max_duration: \"1s\"", {}, "duration_s"),
])
async def test_each_budget_dimension_stops_the_run(temporal_env: WorkflowEnvironment, task_queue: str,
                                                   budget: str, script_extra: dict[str, Any], dimension: str) -> None:
    src = REVIEW.replace("workflow review:\n  entry: writer",
                         f"wait pause:\n  duration: \"1s\"\nworkflow review:\n  entry: writer\n  budget:\n    {budget}")
    src = src.replace("reviewer -> writer when not approved as revise(2)",
                      "reviewer -> pause when not approved as revise(5)\n  pause -> writer")
    script = {"reviewer": {"approved": False, "summary": "no"}, **script_extra}
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, script=script)
        result = await finish(handle)
        view = await state(handle)
    assert result.status == "budget_exceeded", result.reason
    assert dimension in result.reason
    assert view.budget_used.get("iterations", 0) < 12


@pytest.mark.parametrize(("limit", "expected"), [
    ("max_parallel_branches: 1", ["started", "finished"] * 3),
    ("max_iterations: 100", ["started"] * 3 + ["finished"] * 3),
])
async def test_max_parallel_branches_bounds_concurrency(temporal_env: WorkflowEnvironment, task_queue: str,
                                                        limit: str, expected: list[str]) -> None:
    # wait nodes are not "mutating", so only the branch limit can serialise them
    src = f"""
wait w1:
  duration: "1s"
wait w2:
  duration: "1s"
wait w3:
  duration: "1s"
router split:
  mode: fan_out_all
join j:
  strategy: wait_all
workflow par:
  budget:
    {limit}
  entry: split
  split -> w1
  split -> w2
  split -> w3
  w1 -> j
  w2 -> j
  w3 -> j
  j -> done
"""
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src)
        result = await finish(handle)
        events = await handle.query("events", 0, result_type=list[Event])
    assert result.status == "finished"
    assert [e.type.removeprefix("branch_") for e in events if e.type.startswith("branch_")] == expected


BIG = """
schema report:
  ok: bool
  body: string
tool produce:
  command: "python3 -c 'import json; print(json.dumps(dict(ok=True, body=100000 * chr(120))))'"
  output: report
tool measure:
  command: "printf %s {{outputs.produce.body}} | wc -c"
agent read:
  model: "scripted"
  user: show
prompt show:
  Body starts: {{outputs.produce.body}}
workflow big:
  entry: produce
  produce -> measure when ok
  produce -> fail
  measure -> read
  read -> done
"""


async def test_large_outputs_go_to_the_artifact_store_not_history(temporal_env: WorkflowEnvironment,
                                                                  task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, BIG, offload_threshold_bytes=16 * 1024)
        result = await finish(handle)
        history = await handle.fetch_history()
        view = await state(handle)
    assert result.status == "finished"  # the `when ok` condition still saw the inline boolean
    assert view.nodes["read"].usage.input_tokens > 20_000  # the model's prompt held the real body
    stub = result.outputs["produce"]
    assert stub["ok"] is True and "body" not in stub and stub["$artifact"]["fields"] == ["body"]
    assert result.outputs["measure"] == {"result": "100000"}  # the shell saw the full stored value
    assert len(history.to_json()) < 60_000  # the 100 KB body never entered history


async def test_gate_timeout_parks_and_a_queued_answer_is_used_on_retry(temporal_env: WorkflowEnvironment,
                                                                       task_queue: str) -> None:
    src = GATE.replace("  output: decision\nworkflow", "  output: decision\n  timeout: \"1s\"\nworkflow")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, script={"planner": {"text": "ship"}})
        view = await wait_for(handle, lambda v: v.status == "failed_resumable")
        assert [(f.node, f.error_type) for f in view.failures] == [("approval", "GateTimeout")]
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True, "level": "low"},
                                                     in_advance=True))
        await handle.signal("retry", "approval")
        result = await finish(handle)
    assert result.status == "finished" and result.outputs["approval"]["level"] == "low"


FAN_OF_SHELLS = """
tool t1:
  command: "sleep 1"
tool t2:
  command: "sleep 1"
tool t3:
  command: "sleep 1"
agent reader:
  model: "scripted"
  readonly: true
router split:
  mode: fan_out_all
join j:
  strategy: wait_all
workflow ws:
  entry: split
  split -> t1
  split -> t2
  split -> t3
  split -> reader
  t1 -> j
  t2 -> j
  t3 -> j
  reader -> j
  j -> done
"""


def shell_spans(history: Any) -> list[tuple[Any, Any]]:
    spans = runs.activity_spans(history)
    return sorted(span for node in ("t1", "t2", "t3") for span in spans[node])


async def test_shell_branches_of_a_fan_out_run_in_parallel(temporal_env: WorkflowEnvironment,
                                                           task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, FAN_OF_SHELLS)
        result = await finish(handle)
        history = await handle.fetch_history()
    assert result.status == "finished"
    spans = shell_spans(history)
    # Every command started before any of them ended: all three ran at the same time.
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


async def test_max_parallel_branches_one_runs_shell_branches_one_at_a_time(temporal_env: WorkflowEnvironment,
                                                                           task_queue: str) -> None:
    src = FAN_OF_SHELLS.replace('"sleep 1"', '"sleep 0.3"').replace(
        "  entry: split\n", "  entry: split\n  budget:\n    max_parallel_branches: 1\n")
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src)
        result = await finish(handle)
        history = await handle.fetch_history()
    assert result.status == "finished"
    spans = shell_spans(history)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans


async def test_agents_that_may_change_the_workspace_take_turns(temporal_env: WorkflowEnvironment,
                                                               task_queue: str) -> None:
    src = """
agent w1:
  model: "scripted"
  tools: [create_feature_flag]
agent w2:
  model: "scripted"
  tools: [create_feature_flag]
router split:
  mode: fan_out_all
join j:
  strategy: wait_all
workflow ws:
  entry: split
  split -> w1
  split -> w2
  w1 -> j
  w2 -> j
  j -> done
"""
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src)
        result = await finish(handle)
        history = await handle.fetch_history()
    assert result.status == "finished"
    # In event order, not by the clock: the second agent's turn is scheduled after the first's closed.
    scheduled = [e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    closed = {e.activity_task_completed_event_attributes.scheduled_event_id: e.event_id for e in history.events
              if e.HasField("activity_task_completed_event_attributes")}
    assert len(scheduled) == 2 and closed[scheduled[0]] < scheduled[1]


async def test_a_branch_reaching_fail_fails_a_wait_all_fan_out(temporal_env: WorkflowEnvironment,
                                                              task_queue: str) -> None:
    src = """
schema v:
  ok: bool
agent a:
  model: "scripted"
  output: v
agent b:
  model: "scripted"
router split:
  mode: fan_out_all
join j:
  strategy: wait_all
workflow f:
  entry: split
  split -> a
  split -> b
  a -> j when ok
  a -> fail
  b -> j
  j -> done
"""
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, src, script={"a": {"ok": False}})
        result = await finish(handle)
    assert result.status == "failed" and "branch a of 'split'" in result.reason and result.last_node == "fail"


NESTED_LOOPS = """
schema look:
  more: bool
schema round:
  again: bool
agent plan:
  model: "scripted"
agent watch:
  model: "scripted"
  output: look
agent wrap:
  model: "scripted"
  output: round
workflow nested:
  entry: plan
  plan -> watch
  watch -> watch when more as looks(2)
  watch -> wrap
  wrap -> plan when again as cycle(2)
  wrap -> done
"""


async def test_an_inner_loop_starts_afresh_each_time_its_outer_loop_goes_round(
        temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env, task_queue):
        handle = await start(temporal_env, task_queue, NESTED_LOOPS,
                             script={"watch": {"more": True}, "wrap": {"again": True}})
        result = await finish(handle)
        view = await state(handle)
        events = await handle.query("events", 0)
    assert result.status == "finished"
    # Three rounds of the cycle, each with the first look plus its 2 re-looks (run-wide counting
    # would have allowed 2 re-looks in the whole run: 5 looks).
    assert view.nodes["plan"].visits == 3 and view.nodes["watch"].visits == 9
    assert view.loop_counters == {"cycle": 2, "looks": 2}
    resets = [e["data"]["reset_loops"] for e in events if e["type"] == "edge_selected" and "reset_loops" in e["data"]]
    assert resets == [["looks"], ["looks"]]
