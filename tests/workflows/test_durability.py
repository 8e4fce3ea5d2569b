"""Runs survive what real deployments do to them: a worker killed mid-run, a server restart while
a run waits for a human, and histories long enough for the server to ask for continue-as-new.

Every test drives real processes (worker subprocesses, dev server processes) and polls with a
deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import uuid
from pathlib import Path

import pytest
from runs import (
    DevServerProcess,
    events_with,
    finish,
    poll,
    running_worker,
    start,
    start_local_env,
    start_worker_process,
    state,
    stop_process,
    wait_for,
)
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from workflows.contract.messages import LLM_TURN, SHELL_EXEC, TOOL_CALL
from workflows.contract.state import Answer, RunResult

pytestmark = pytest.mark.asyncio

STEPS = """
vars:
  log: string
agent plan:
  model: "scripted"
tool step1:
  command: "echo step1 >> {{vars.log}}"
tool slow:
  command: "echo slow >> {{vars.log}} && sleep 3"
tool step2:
  command: "echo step2 >> {{vars.log}}"
tool step3:
  command: "echo step3 >> {{vars.log}}"
workflow steps:
  entry: plan
  plan -> step1
  step1 -> slow
  slow -> step2
  step2 -> step3
  step3 -> done
"""


def activity_attempts(history: WorkflowHistory) -> dict[tuple[str, str], list[int]]:
    """(node, activity type) → the attempt number of each of its recorded activity executions."""
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    attempts: dict[tuple[str, str], list[int]] = {}
    for started in events_with(history, "activity_task_started_event_attributes"):
        sched = scheduled[started.scheduled_event_id]
        node = json.loads(sched.input.payloads[0].data)["node_id"]
        attempts.setdefault((node, sched.activity_type.name), []).append(started.attempt)
    return attempts


def log_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_killed_worker_is_replaced_and_completed_steps_do_not_rerun(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    address = temporal_env.client.service_client.config.target_host
    first = start_worker_process(address, task_queue, tmp_path / "worker1.log")
    second = None
    try:
        handle = await start(temporal_env.client, task_queue, STEPS, inputs={"log": str(log)},
                             shell_heartbeat_timeout_seconds=4,
                             script={"plan": {"text": "go"}})
        await poll(lambda: "slow" in log_lines(log), "the slow node to start", timeout=30, interval=0.05)
        assert log_lines(log) == ["step1", "slow"]
        await stop_process(first, sig=signal.SIGKILL)
        second = start_worker_process(address, task_queue, tmp_path / "worker2.log")
        # The dead worker's activity is only given up after its heartbeat timeout (30 s, set in
        # GraphRun.activity), then retried on the new worker.
        result = await finish(handle, timeout=90)
        view = await state(handle)
        history = await handle.fetch_history()
    finally:
        for proc in (first, second):
            if proc is not None:
                await stop_process(proc)
    assert result.status == "finished"
    lines = log_lines(log)
    # Completed activities are recorded in history and never run again. The activity that was
    # running when the worker died is at-least-once: its command already ran (in part) and
    # Temporal retries it on the new worker, so its line may appear twice, never more.
    for step in ("step1", "step2", "step3"):
        assert lines.count(step) == 1, lines
    assert 1 <= lines.count("slow") <= 2, lines
    assert lines.index("step1") < lines.index("slow") < lines.index("step2") < lines.index("step3")
    # The model node finished before the kill: replayed from history on the new worker, not re-executed.
    assert view.nodes["plan"].visits == 1 and view.nodes["plan"].status == "succeeded"
    attempts = activity_attempts(history)
    assert attempts[("plan", LLM_TURN)] == [1]
    assert attempts[("slow", SHELL_EXEC)] == [2], "the slow node's activity should be retried once, on the new worker"
    assert all(attempts[(n, SHELL_EXEC)] == [1] for n in ("step1", "step2", "step3"))
    assert all(view.nodes[n].visits == 1 for n in ("step1", "slow", "step2", "step3"))

GATE = """
schema decision:
  approved: bool
  note: string
agent planner:
  model: "scripted"
human approval:
  output: decision
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""


async def test_run_waiting_at_a_gate_survives_a_server_restart(tmp_path: Path) -> None:
    server = DevServerProcess(tmp_path / "temporal.db", tmp_path / "server.log")
    task_queue = f"tq-{uuid.uuid4().hex[:12]}"
    try:
        client = await server.start()
        async with running_worker(client, task_queue):
            handle = await start(client, task_queue, GATE, script={"planner": {"text": "ship v2"}})
            view = await wait_for(handle, lambda v: v.status == "waiting_human")
            assert [g.gate for g in view.open_gates] == ["approval"]
        await server.stop()

        client = await server.start()
        handle = client.get_workflow_handle(handle.id, result_type=RunResult)
        async with running_worker(client, task_queue):
            # The new worker rebuilds the run from the history the server kept on disk.
            view = await wait_for(handle, lambda v: v.status == "waiting_human")
            assert view.open_gates[0].questions == {"plan": "ship v2"}
            await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True, "note": "go"},
                                                         answered_by="ada"))
            result = await finish(handle)
    finally:
        await server.stop()
    assert result.status == "finished"
    assert result.outputs["approval"] == {"approved": True, "note": "go"}
    assert result.outputs["planner"] == {"text": "ship v2", "_session_id": "planner#1"}


LONG_LOOP = """
schema tick:
  more: bool
agent step:
  model: "scripted"
  output: tick
tool keep:
  call: echo
workflow long:
  entry: step
  step -> step when more as spin(300)
  step -> keep with { seen: "{{outputs.step.history}}" }
  keep -> done
"""


async def test_server_suggested_continue_as_new_keeps_counters_and_outputs(tmp_path: Path) -> None:
    # The server suggests continue-as-new once a run's history passes 100 events (default 4,096).
    env = await start_local_env("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=100")
    task_queue = f"tq-{uuid.uuid4().hex[:12]}"
    try:
        async with running_worker(env.client, task_queue):
            handle = await start(env.client, task_queue, LONG_LOOP, script={"step": {"more": True}})
            result = await finish(handle, timeout=90)
            view = await state(handle)
    finally:
        await env.shutdown()
    assert result.status == "finished"
    assert view.loop_counters == {"spin": 300} and view.nodes["step"].visits == 301
    assert view.executions > 1
    # Outputs and their (bounded) history crossed every continue-as-new.
    assert result.outputs["step"] == {"more": True, "_session_id": "step#301"}
    # The latest 200 outputs, each from its own visit (and conversation).
    assert result.outputs["keep"]["seen"] == [{"more": True, "_session_id": f"step#{v}"} for v in range(102, 302)]
    assert view.nodes["keep"].visits == 1


TOOL_LOOP = """
schema total:
  total: float
agent adder:
  model: "openai/gpt-test"
  output: total
  tools: [sum_values]
workflow adding:
  entry: adder
  adder -> done
"""


async def test_a_worker_killed_mid_tool_loop_repeats_no_completed_turn_or_tool_call(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    from fakes.llm_servers import FakeOpenAI, Reply, ToolUse

    in_flight = threading.Event()
    with FakeOpenAI() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]}, id="call_1")]),
                     Reply(tool_calls=[ToolUse("sum_values", {"values": [3, 4]}, id="call_2")]),
                     Reply(answer={"total": 10}, hold=in_flight),  # turn 3: the worker dies waiting for it
                     Reply(answer={"total": 10}))
        env = {**server.env(), "ITERLOOP_OFFLINE": "", "ITERLOOP_ARTIFACT_DIR": str(tmp_path / "artifacts")}
        address = temporal_env.client.service_client.config.target_host
        first = start_worker_process(address, task_queue, tmp_path / "worker1.log", extra_env=env)
        second = None
        try:
            handle = await start(temporal_env.client, task_queue, TOOL_LOOP, llm_heartbeat_timeout_seconds=3)
            await asyncio.to_thread(server.wait_for_requests, 3, 60)
            await stop_process(first, sig=signal.SIGKILL)
            in_flight.set()  # the answer goes to a dead connection
            second = start_worker_process(address, task_queue, tmp_path / "worker2.log", extra_env=env)
            result = await finish(handle, timeout=90)
            history = await handle.fetch_history()
        finally:
            for proc in (first, second):
                if proc is not None:
                    await stop_process(proc)
    assert result.status == "finished" and result.outputs["adder"]["total"] == 10
    # Turn 3 was sent twice (the dead worker's attempt, then the retry), with the same conversation;
    # turns 1 and 2 once each.
    assert len(server.requests) == 4
    sent = [r.body["messages"] for r in server.requests]
    assert sent[3] == sent[2] and len(sent[0]) < len(sent[1]) < len(sent[2])
    assert [json.loads(m["content"]) for m in sent[2] if m["role"] == "tool"] == [
        {"total": 3.0, "count": 2}, {"total": 7.0, "count": 2}]
    # Every completed tool call and turn ran in exactly one attempt, except the turn in flight.
    attempts = activity_attempts(history)
    assert attempts[("adder", TOOL_CALL)] == [1, 1]
    assert attempts[("adder", LLM_TURN)] == [1, 1, 2]
