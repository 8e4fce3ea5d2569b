"""Schema constraints catch a bad answer where it is produced: a planner's flag key with spaces
gets a repair turn quoting the violation, and the human gate only ever sees the repaired plan.
Runs on the session's dev server with the scripted model (`turns:` with a raw `reply_text`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runs import finish, running_worker, start, wait_for
from temporalio.client import WorkflowUpdateFailedError

import dsl
from activities.flags.models import KEY_PATTERN
from workflows.contract.scripts import load_script
from workflows.contract.state import Answer, Event

REPO = Path(__file__).resolve().parents[2]

GATED = """
schema plan:
  flag_key: string [pattern: "^[A-Za-z0-9][A-Za-z0-9_-]*$"] [max_length: 100]
  traffic_percent: int [min: 0] [max: 100]
schema decision:
  approved: bool
  rollout_percent: int [min: 0] [max: 100]
agent planner:
  model: "scripted"
  output: plan
human approval:
  instructions: brief
  output: decision
prompt brief:
  Approve flag {{outputs.planner.flag_key}}?
workflow gated:
  entry: planner
  planner -> approval
  approval -> done when approved
  approval -> fail when not approved
"""

BAD_PLAN = {"flag_key": "checkout apple pay first", "traffic_percent": 50}
GOOD_PLAN = {"flag_key": "checkout-apple-pay-first", "traffic_percent": 50}


async def test_a_bad_flag_key_is_repaired_before_the_gate(temporal_env: Any, task_queue: str) -> None:
    script = {"planner": {"turns": [{"reply_text": json.dumps(BAD_PLAN)}, GOOD_PLAN]}}
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, GATED, script=script)
        view = await wait_for(handle, lambda v: v.status == "waiting_human")
        [gate] = view.open_gates
        assert gate.instructions == "Approve flag checkout-apple-pay-first?"
        assert view.outputs["planner"]["flag_key"] == "checkout-apple-pay-first"
        events = await handle.query("events", 0, result_type=list[Event])
        [repair] = [e for e in events if e.type == "llm_repair_requested"]
        assert repair.node == "planner"
        assert "field 'flag_key'" in repair.data["reason"]
        assert "does not match the pattern '^[A-Za-z0-9][A-Za-z0-9_-]*$'" in repair.data["reason"]
        gate_opened = next(e.seq for e in events if e.node == "approval")
        assert repair.seq < gate_opened

        # A person's answer must fit the gate's constraints too.
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update("answer", Answer(gate="approval",
                                                         answers={"approved": True, "rollout_percent": 150}))
        assert "above the maximum 100" in str(err.value.cause)
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True, "rollout_percent": 10}))
        result = await finish(handle)
    assert result.status == "finished"


async def test_a_scripted_output_that_breaks_a_constraint_is_a_script_error(temporal_env: Any, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, GATED, script={"planner": BAD_PLAN})
        view = await wait_for(handle, lambda v: bool(v.failures))
        await handle.cancel()
    [failure] = view.failures
    assert failure.node == "planner"
    assert "does not match the pattern" in failure.error and "fix the script entry 'planner'" in failure.error


def test_growth_loop_planner_key_carries_the_flag_tool_rule() -> None:
    result = dsl.check_source((REPO / "examples" / "growth_loop.iter").read_text())
    assert result.ok and result.workflow is not None
    key = result.workflow.schemas["experiment_plan"].field("flag_key")
    assert key is not None and key.pattern == KEY_PATTERN and key.max_length == 100


async def test_the_growth_loop_repairs_a_bad_flag_key_before_the_approval_gate(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the learnings directory and the local flag store stay in this test's directory
    script = load_script(REPO / "examples" / "growth_loop.script.yaml")
    good = script["planner"][0]
    bad = {**good, "flag_key": "ios apple pay first v2"}
    script["planner"][0] = {"turns": [{"reply_text": json.dumps(bad)}, good]}
    wf = dsl.check_source((REPO / "examples" / "growth_loop.iter").read_text()).workflow
    assert wf is not None
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, wf, script=script)
        view = await wait_for(handle, lambda v: v.status == "waiting_human" or bool(v.failures), timeout=60)
        events = await handle.query("events", 0, result_type=list[Event])
        await handle.cancel()
    assert not view.failures, view.failures
    assert [g.gate for g in view.open_gates] == ["approval"]
    assert view.outputs["planner"]["flag_key"] == good["flag_key"]
    [repair] = [e for e in events if e.type == "llm_repair_requested"]
    assert repair.node == "planner" and "'ios apple pay first v2'" in repair.data["reason"]
    assert "does not match the pattern" in repair.data["reason"]
