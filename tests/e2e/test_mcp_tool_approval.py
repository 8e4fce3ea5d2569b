"""`tool_approval:` on an MCP tool, end to end: a real MCP server (`mcp-server-time`) behind the
worker's pool, the real `openai` client against the wire-format fake, and a person editing the
call at the node's gate. The edited arguments are checked against the schema the server lists."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import FakeLLMServer, FakeOpenAI, Reply, ToolUse
from mcp_servers import time_command
from runs import compile_ok, finish, start, wait_for
from temporalio.client import Client

from workflows.contract.state import Answer


def workflow() -> str:
    command, args = time_command()
    return f"""
mcp_server time:
  transport: stdio
  command: "{command}"
  args: {json.dumps(args)}
schema reading:
  time: string
agent clock:
  model: "openai/gpt-test"
  output: reading
  tools: [mcp.time.*]
  tool_approval: [mcp.time.get_current_time]
workflow clock_run:
  entry: clock
  clock -> done
"""


@asynccontextmanager
async def mcp_worker(client: Client, task_queue: str, server: FakeLLMServer, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    from activities.mcp import close_pool
    from worker import build_worker

    for name, value in {**server.env(), "ITERLOOP_OFFLINE": ""}.items():
        monkeypatch.setenv(name, value)
    try:
        async with build_worker(client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
            yield
    finally:
        await close_pool()  # the pooled server processes end with the test


async def test_an_edited_mcp_call_runs_with_the_edited_arguments(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Europe/Paris"}, id="c1")]),
                   Reply(answer={"time": "noon in Tokyo"}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, compile_ok(workflow()))
            view = await wait_for(handle, lambda v: bool(v.open_gates), timeout=60)
            assert view.open_gates[0].questions == {"tool": "mcp.time.get_current_time",
                                                    "arguments": {"timezone": "Europe/Paris"}}
            await handle.execute_update("answer", Answer(gate="clock", answers={
                "decision": "edit", "arguments": {"timezone": "Asia/Tokyo"}}))
            result = await finish(handle, timeout=120)
        assert result.status == "finished", result.reason
        answer = fake.requests[1].body["messages"][-1]
        assert answer["tool_call_id"] == "c1"
        assert "Asia/Tokyo" in answer["content"] and "Europe/Paris" not in answer["content"]


async def test_edited_mcp_arguments_are_checked_against_the_servers_schema(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "UTC"}, id="c2")]),
                   Reply(answer={"time": "rejected"}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, compile_ok(workflow()))
            await wait_for(handle, lambda v: bool(v.open_gates), timeout=60)
            await handle.execute_update("answer", Answer(gate="clock", answers={
                "decision": "edit", "arguments": {"tz": "UTC"}}))  # the server's schema requires `timezone`
            view = await wait_for(handle, lambda v: any("previous_edit_refused" in g.questions for g in v.open_gates))
            assert "'timezone' is a required property" in view.open_gates[0].questions["previous_edit_refused"]
            await handle.execute_update("answer", Answer(gate="clock", answers={"decision": "reject"}))
            result = await finish(handle, timeout=120)
        assert result.status == "finished", result.reason
        assert "a person rejected this tool call" in fake.requests[1].body["messages"][-1]["content"]
