"""Tool calls that wait for a person (`tool_approval:`), end to end: the real `anthropic` and
`openai` clients in a worker on the dev server, against the wire-format fakes of
tests/fakes/llm_servers.py. A person approves, edits or rejects each call through the run's
`answer` update, as `iterloop answer`, the API and Slack do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.llm_servers import FakeAnthropic, FakeLLMServer, FakeOpenAI, Recorded, Reply, ToolUse
from runs import compile_ok, events_with, finish, start, wait_for
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from workflows.contract.state import Answer, Event, RunResult, RunView

PRICES = {"models": {"claude-test": {"input": 3.0, "output": 15.0},
                     "gpt-test": {"input": 2.0, "output": 8.0}}}

SRC = """
schema finding:
  summary: string
agent analyst:
  model: "MODEL"
  output: finding
  tools: [sum_values, echo]
  tool_approval: [sum_values]
workflow w:
  entry: analyst
  analyst -> done
"""


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return path


@asynccontextmanager
async def llm_worker(client: Client, task_queue: str, server: FakeLLMServer, prices: Path, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """An in-process worker with real providers pointed at ``server``."""
    from worker import build_worker

    for name, value in {**server.env(), "ITERLOOP_PRICES_FILE": str(prices), "ITERLOOP_OFFLINE": ""}.items():
        monkeypatch.setenv(name, value)
    async with build_worker(client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
        yield


async def open_gate(handle: WorkflowHandle[Any, RunResult]) -> RunView:
    return await wait_for(handle, lambda v: any(g.gate == "analyst" for g in v.open_gates))


def tool_activities(history: Any) -> list[Any]:
    return [e for e in events_with(history, "activity_task_scheduled_event_attributes")
            if e.activity_type.name == "iterloop.tool_call"]


async def reviews(handle: WorkflowHandle[Any, RunResult]) -> list[dict[str, Any]]:
    events = await handle.query("events", 0, result_type=list[Event])
    return [e.data for e in events if e.type == "tool_call_reviewed"]


def sent(request: Recorded) -> str:
    return json.dumps(request.body["messages"], ensure_ascii=False)


async def test_a_rejected_call_does_not_run_and_its_message_reaches_the_model(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]}, id="call_r")]),
                     Reply(answer={"summary": "not summed"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, SRC.replace("MODEL", "openai/gpt-test"))
            view = await open_gate(handle)
            gate = next(g for g in view.open_gates if g.gate == "analyst")
            assert gate.questions == {"tool": "sum_values", "arguments": {"values": [1, 2]}}
            await handle.execute_update("answer", Answer(
                gate="analyst", answered_by="alice",
                answers={"decision": "reject", "message": "use the cached totals instead"}))
            result = await finish(handle)
            history = await handle.fetch_history()
            reviewed = await reviews(handle)
    assert result.status == "finished" and result.outputs["analyst"]["summary"] == "not summed"
    answer = server.requests[1].body["messages"][-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "call_r"
    assert "use the cached totals instead" in answer["content"] and "alice" in answer["content"]
    assert tool_activities(history) == []
    assert reviewed == [{"tool": "sum_values", "decision": "rejected", "by": "alice",
                              "message": "use the cached totals instead"}]


async def test_an_approved_call_runs_and_its_result_reaches_the_model(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAnthropic() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1.5, 2.5]}, id="toolu_a")]),
                     Reply(answer={"summary": "total 4"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, SRC.replace("MODEL", "anthropic/claude-test"))
            await open_gate(handle)
            assert len(server.requests) == 1  # the call waits: nothing ran, no further model turn
            await handle.execute_update("answer", Answer(gate="analyst", answered_by="bob",
                                                         answers={"decision": "approve"}))
            result = await finish(handle)
            history = await handle.fetch_history()
            reviewed = await reviews(handle)
    assert result.status == "finished"
    results = [b for m in server.requests[1].body["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]
    assert len(results) == 1 and results[0]["tool_use_id"] == "toolu_a"
    assert json.loads(results[0]["content"]) == {"total": 4.0, "count": 2}
    assert len(tool_activities(history)) == 1
    assert reviewed == [{"tool": "sum_values", "decision": "approved", "by": "bob"}]


async def test_an_edited_call_runs_with_the_edited_arguments(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]}, id="call_e")]),
                     Reply(answer={"summary": "total 30"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, SRC.replace("MODEL", "openai/gpt-test"))
            await open_gate(handle)
            # As `iterloop answer --answer decision=edit --answer arguments=…` sends it: strings.
            await handle.execute_update("answer", Answer(
                gate="analyst", answered_by="carol",
                answers={"decision": "edit", "arguments": '{"values": [10, 20]}'}))
            result = await finish(handle)
            reviewed = await reviews(handle)
    assert result.status == "finished"
    answer = server.requests[1].body["messages"][-1]
    assert answer["tool_call_id"] == "call_e" and json.loads(answer["content"]) == {"total": 30.0, "count": 2}
    assert reviewed == [{"tool": "sum_values", "decision": "edited", "by": "carol",
                              "arguments": {"values": [10, 20]}}]


async def test_edited_arguments_that_misfit_the_tools_schema_reopen_the_gate_saying_why(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]}, id="call_m")]),
                     Reply(answer={"summary": "total 3"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, SRC.replace("MODEL", "openai/gpt-test"))
            first = next(g for g in (await open_gate(handle)).open_gates if g.gate == "analyst")
            await handle.execute_update("answer", Answer(gate="analyst", answers={
                "decision": "edit", "arguments": {"values": "ten"}}))
            view = await wait_for(handle, lambda v: any(
                g.gate == "analyst" and g.interaction_id != first.interaction_id for g in v.open_gates))
            second = next(g for g in view.open_gates if g.gate == "analyst")
            assert "values" in second.questions["previous_edit_refused"]
            await handle.execute_update("answer", Answer(gate="analyst", answers={"decision": "approve"}))
            result = await finish(handle)
            history = await handle.fetch_history()
    assert result.status == "finished"
    assert len(tool_activities(history)) == 1
    assert json.loads(server.requests[1].body["messages"][-1]["content"]) == {"total": 3.0, "count": 2}


async def test_an_answer_that_is_no_approval_decision_is_refused_and_the_gate_stays_open(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1]}, id="call_x")]),
                     Reply(answer={"summary": "done"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, SRC.replace("MODEL", "openai/gpt-test"))
            await open_gate(handle)
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("answer", Answer(gate="analyst", answers={"decision": "edit"}))
            assert "needs field 'arguments'" in str(refused.value.cause)
            await handle.execute_update("answer", Answer(gate="analyst", answers={"decision": "approve"}))
            result = await finish(handle)
    assert result.status == "finished"


def test_skip_gates_never_approves_a_tool_call() -> None:
    from runtime.presets import skip_gate_answers

    wf = compile_ok(SRC.replace("MODEL", "openai/gpt-test"))
    assert "analyst" not in skip_gate_answers(wf)
