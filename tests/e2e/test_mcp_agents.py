"""Agents using MCP tools, end to end: a worker with the real `anthropic` and `openai` clients
(against the wire-format fakes of tests/fakes/llm_servers.py) offers a real MCP server's tools,
the workflow runs the model's calls as `iterloop.mcp_call` activities, and the results reach the
model. Runs are started as `iterloop run` starts them (`prepare_start`), so `.mcp.json` beside the
file is read there.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import FakeAnthropic, FakeLLMServer, FakeOpenAI, Reply, ToolUse
from mcp_servers import filesystem_command, require_node_servers, time_command
from runs import events_with, finish, poll, start, start_worker_process, stop_process, wait_for
from temporalio.client import Client, WorkflowHandle

from runtime.command_errors import UsageError
from runtime.run_start import CompiledWorkflow, StartRequest, prepare_start, start_graph_run
from runtime.settings import Settings
from workflows.contract.state import RunResult

PLANTED = "sk-planted-9f3c2e1b"  # a token in .mcp.json that must never enter history

TIME_SERVER = """
mcp_server time:
  transport: stdio
  command: "{command}"
  args: {args}
"""


def time_server_block() -> str:
    command, args = time_command()
    return TIME_SERVER.format(command=command, args=json.dumps(args))


def clock_workflow(servers: str, agent: str = "") -> str:
    return servers + f"""
schema reading:
  time: string

agent clock:
  model: "{{model}}"
  output: reading
  tools: [mcp.time.*]
{agent}
workflow clock_run:
  entry: clock
  clock -> done
"""


@pytest.fixture(params=[FakeAnthropic, FakeOpenAI], ids=["anthropic", "openai"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeLLMServer]:
    with request.param() as server:
        yield server


def model_of(fake: FakeLLMServer) -> str:
    return "anthropic/claude-test" if isinstance(fake, FakeAnthropic) else "openai/gpt-test"


@asynccontextmanager
async def mcp_worker(client: Client, task_queue: str, server: FakeLLMServer, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """An in-process worker with the real providers pointed at ``server`` and the MCP server pool."""
    from activities.mcp import close_pool
    from worker import build_worker

    for name, value in {**server.env(), "ITERLOOP_OFFLINE": ""}.items():
        monkeypatch.setenv(name, value)
    try:
        async with build_worker(client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
            yield
    finally:
        await close_pool()  # the pooled server processes end with the test


async def start_file(client: Client, task_queue: str, path: Path, **settings: Any) -> WorkflowHandle[Any, RunResult]:
    """Start ``path`` as `iterloop run` does: compiled, prepared (presets, vars, `.mcp.json`), started."""
    import dsl

    result = dsl.check_file(path)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    cfg = Settings(task_queue=task_queue, **settings)
    request = StartRequest(compiled=CompiledWorkflow(workflow=result.workflow, source=str(path), location=str(path),
                                                     project_dir=str(path.parent)),
                           origin="test", given_by="request", workdir=str(path.parent))
    run_id = await start_graph_run(client, cfg, prepare_start(request, cfg), None)
    return client.get_workflow_handle(run_id, result_type=RunResult)


def write(tmp_path: Path, text: str, model: str) -> Path:
    path = tmp_path / "clock.iter"
    path.write_text(text.replace("{model}", model))
    return path


def tool_results_sent(fake: FakeLLMServer) -> str:
    """What the last model request carried (tool results included), as text."""
    return json.dumps(fake.last.body, ensure_ascii=False)


def sent_tool_names(fake: FakeLLMServer, index: int = 0) -> list[str]:
    return [t.get("name") or t["function"]["name"] for t in fake.requests[index].body.get("tools", [])]


async def history_text(handle: WorkflowHandle[Any, RunResult]) -> str:
    """The run's whole history as text, every payload decoded (history JSON holds them in base64)."""
    history = await handle.fetch_history()
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    texts.append(base64.b64decode(value).decode("utf-8", "replace"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            texts.append(node)

    walk(history.to_json_dict())
    return "\n".join(texts)


# -- an agent calls a real MCP server -------------------------------------------------------------

async def test_an_agent_calls_an_mcp_tool_and_the_model_reads_its_result(
        temporal_env: Any, task_queue: str, fake: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, clock_workflow(time_server_block()), model_of(fake))
    fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Europe/Paris"}, id="call_1")]),
               Reply(answer={"time": "noon in Paris"}))
    async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
        handle = await start_file(temporal_env.client, task_queue, path)
        result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    assert result.outputs["clock"]["time"] == "noon in Paris"
    assert sent_tool_names(fake)[:2] == ["mcp_time_convert_time", "mcp_time_get_current_time"]
    # The server's answer (its timezone, a datetime) went back to the model as the call's result.
    assert "Europe/Paris" in tool_results_sent(fake) and "datetime" in tool_results_sent(fake)
    history = await handle.fetch_history()
    summaries = [e.user_metadata.summary.data.decode() for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "iterloop.mcp_call"]
    assert summaries == ['"clock · mcp time.get_current_time"']


async def test_a_tool_error_goes_back_to_the_model_and_the_run_goes_on(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, clock_workflow(time_server_block()), "anthropic/claude-test")
    with FakeAnthropic() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Nowhere/Atlantis"})]),
                   Reply(answer={"time": "unknown"}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            result = await finish(await start_file(temporal_env.client, task_queue, path), timeout=120)
        assert result.status == "finished", result.reason
        assert "Nowhere/Atlantis" in tool_results_sent(fake) and '"is_error": true' in tool_results_sent(fake)


# -- what a node may call -------------------------------------------------------------------------

async def test_the_tool_policy_denies_an_mcp_tool_before_it_runs(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = clock_workflow(time_server_block(), agent="  tool_policy: [mcp.time.convert_time]\n")
    path = write(tmp_path, text, "openai/gpt-test")
    with FakeOpenAI() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "UTC"})]),
                   Reply(answer={"time": "denied"}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start_file(temporal_env.client, task_queue, path)
            result = await finish(handle, timeout=120)
        assert result.status == "finished", result.reason
        assert sent_tool_names(fake) == ["mcp_time_convert_time"]
        assert "not in the allowlist" in tool_results_sent(fake)
    assert "iterloop.mcp_call" not in await history_text(handle)


async def test_a_readonly_agent_is_refused_a_mutating_mcp_tool(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_node_servers()
    files = tmp_path / "files"
    files.mkdir()
    (files / "notes.txt").write_text("keep me")
    command, args = filesystem_command(str(files))
    servers = f'mcp_server files:\n  transport: stdio\n  command: "{command}"\n  args: {json.dumps(args)}\n'
    text = (servers + 'schema done_s:\n  ok: bool\nagent editor:\n  model: "anthropic/claude-test"\n  output: done_s\n'
            "  tools: [mcp.files.*]\n  readonly: true\nworkflow w:\n  entry: editor\n  editor -> done\n")
    path = tmp_path / "edit.iter"
    path.write_text(text)
    with FakeAnthropic() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_files_write_file", {"path": str(files / "notes.txt"),
                                                                      "content": "overwritten"})]),
                   Reply(answer={"ok": False}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            result = await finish(await start_file(temporal_env.client, task_queue, path), timeout=120)
        offered = sent_tool_names(fake)
        assert "mcp_files_read_text_file" in offered and "mcp_files_write_file" not in offered
        assert "is not offered" in tool_results_sent(fake)
    assert result.status == "finished", result.reason
    assert (files / "notes.txt").read_text() == "keep me"


# -- .mcp.json ------------------------------------------------------------------------------------

async def test_a_project_server_is_used_without_its_entry_entering_history(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, args = time_command()
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": command, "args": args, "env": {"TIME_TOKEN": PLANTED}},
        "docs": {"type": "http", "url": "https://docs.example/mcp", "headers": {"Authorization": f"Bearer {PLANTED}"}},
    }}))
    path = write(tmp_path, clock_workflow(""), "anthropic/claude-test")  # no mcp_server: `time` is the project's
    with FakeAnthropic() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Asia/Tokyo"})]),
                   Reply(answer={"time": "evening in Tokyo"}))
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start_file(temporal_env.client, task_queue, path)
            result = await finish(handle, timeout=120)
        assert result.status == "finished", result.reason
        assert "Asia/Tokyo" in tool_results_sent(fake)
    history = await history_text(handle)
    assert "iterloop.mcp_call" in history and str(tmp_path / ".mcp.json") in history
    assert PLANTED not in history and "docs.example" not in history


async def test_an_unknown_server_name_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    text = clock_workflow(time_server_block()).replace("workflow clock_run:\n",
                                                       "workflow clock_run:\n  mcp:\n    servers: [jira]\n")
    path = write(tmp_path, text, "anthropic/claude-test")
    import dsl

    wf = dsl.check_file(path).workflow
    assert wf is not None
    request = StartRequest(compiled=CompiledWorkflow(workflow=wf, source=str(path), location=str(path),
                                                     project_dir=str(tmp_path)), origin="test", given_by="request")
    with pytest.raises(UsageError) as info:
        prepare_start(request, Settings())
    assert "server 'jira'" in str(info.value) and str(path) in str(info.value) and "mcp_server jira:" in str(info.value)


async def test_a_server_that_cannot_start_fails_the_run_before_its_first_node(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Iterion's pre-run check: every server the run may use is reached before the first node, and a
    broken one ends the run at once, named with its stderr, with no model called."""
    broken = f"""
mcp_server broken:
  transport: stdio
  command: "{sys.executable}"
  args: ["-c", "import sys; sys.stderr.write('no licence key configured'); sys.exit(3)"]
"""
    text = clock_workflow(time_server_block() + broken).replace("[mcp.time.*]", "[mcp.time.*, mcp.broken.*]")
    path = write(tmp_path, text, "anthropic/claude-test")
    with FakeAnthropic() as fake:
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start_file(temporal_env.client, task_queue, path)
            result = await finish(handle, timeout=120)
        assert fake.requests == []  # no node ran
    assert result.status == "failed"
    assert "'broken'" in result.reason and "no licence key configured" in result.reason
    assert "'time'" not in result.reason  # the healthy server is not blamed
    history = await handle.fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled == ["iterloop.mcp_check"]


async def test_autoload_off_leaves_the_project_servers_out(tmp_path: Path) -> None:
    command, args = time_command()
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"time": {"command": command, "args": args}}}))
    path = write(tmp_path, clock_workflow(""), "anthropic/claude-test")
    import dsl

    wf = dsl.check_file(path).workflow
    assert wf is not None
    request = StartRequest(compiled=CompiledWorkflow(workflow=wf, source=str(path), location=str(path),
                                                     project_dir=str(tmp_path)), origin="test", given_by="request")
    assert [s.name for s in prepare_start(request, Settings()).run_options["mcp_project_servers"]] == ["time"]
    with pytest.raises(UsageError, match="no .mcp.json is loaded"):
        prepare_start(request, Settings(mcp_autoload=False))


# -- tool nodes -----------------------------------------------------------------------------------

def now_workflow(tmp_path: Path, timezone: str) -> Path:
    """A tool node calling the time server's `get_current_time` with the `timezone` var."""
    path = tmp_path / "now.iter"
    path.write_text(time_server_block() + f"""
vars:
  timezone: string = "{timezone}"

tool now:
  call: mcp.time.get_current_time

workflow w:
  entry: now
  now -> done
""")
    return path


async def test_a_tool_node_calls_an_mcp_tool_with_its_input(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = now_workflow(tmp_path, "Europe/Berlin")
    with FakeAnthropic() as fake:
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start_file(temporal_env.client, task_queue, path)
            result = await finish(handle, timeout=120)
    assert result.status == "finished", result.reason
    assert "Europe/Berlin" in json.dumps(result.outputs["now"])
    assert "now · mcp time.get_current_time" in await history_text(handle)


async def test_a_tool_nodes_mcp_error_parks_the_node_with_the_tools_message(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = now_workflow(tmp_path, "Nowhere/Atlantis")
    with FakeAnthropic() as fake:
        async with mcp_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start_file(temporal_env.client, task_queue, path)
            view = await wait_for(handle, lambda v: v.status == "failed_resumable")
            await handle.cancel()
    [failure] = view.failures
    assert failure.node == "now" and "Nowhere/Atlantis" in failure.error


# -- a worker killed mid call ---------------------------------------------------------------------

#: An MCP server whose tool logs each call, then waits until a marker file exists: the first call
#: is still running when its worker is killed, the retry finishes at once.
SLOW_SERVER = '''
import asyncio, os, sys
from pathlib import Path
from mcp.server.mcpserver import MCPServer

log, marker = Path(sys.argv[1]), Path(sys.argv[2])
server = MCPServer("slow")

@server.tool()
async def mark(label: str) -> str:
    """Log the call, then wait for the marker."""
    with log.open("a") as f:
        f.write(f"{label} {os.getpid()}\\n")
    while not marker.exists():
        await asyncio.sleep(0.05)
    return f"marked {label}"

server.run("stdio")
'''


async def test_a_worker_killed_mid_mcp_call_repeats_that_call_only(
        temporal_env: Any, task_queue: str, tmp_path: Path) -> None:

    script, log, marker = tmp_path / "slow_server.py", tmp_path / "calls.log", tmp_path / "go"
    script.write_text(SLOW_SERVER)
    src = f"""
mcp_server slow:
  transport: stdio
  command: "{sys.executable}"
  args: {json.dumps([str(script), str(log), str(marker)])}

schema marked:
  ok: bool

agent marker:
  model: "anthropic/claude-test"
  output: marked
  tools: [mcp.slow.*]

workflow w:
  entry: marker
  marker -> done
"""
    address = temporal_env.client.service_client.config.target_host
    with FakeAnthropic() as fake:
        fake.queue(Reply(tool_calls=[ToolUse("mcp_slow_mark", {"label": "first"})]), Reply(answer={"ok": True}))
        env = {**fake.env(), "ITERLOOP_OFFLINE": ""}
        workers = [start_worker_process(address, task_queue, tmp_path / "worker1.log", extra_env=env)]
        try:
            handle = await start(temporal_env.client, task_queue, src, shell_heartbeat_timeout_seconds=3,
                                 shell_cwd=str(tmp_path))
            await poll(lambda: log.exists() and log.read_text().count("\n") >= 1, "the first call to start",
                       timeout=60, interval=0.05)
            await stop_process(workers[0], sig=signal.SIGKILL)
            marker.touch()
            workers.append(start_worker_process(address, task_queue, tmp_path / "worker2.log", extra_env=env))
            result = await finish(handle, timeout=120)
            history = await handle.fetch_history()
        finally:
            for proc in workers:
                await stop_process(proc)
        assert result.status == "finished", result.reason
        assert len(fake.requests) == 2  # each model turn ran once: only the call in flight was repeated
        assert "marked first" in tool_results_sent(fake)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["first", "first"]
    scheduled = [e.activity_type.name for e in events_with(history, "activity_task_scheduled_event_attributes")]
    # The server was reached before the first node (its tools listed), then each step ran once but the call.
    assert scheduled == ["iterloop.mcp_check", "iterloop.llm_turn", "iterloop.mcp_call", "iterloop.llm_turn"]
    started = events_with(history, "activity_task_started_event_attributes")
    assert [e.attempt for e in started] == [1, 1, 2, 1]
