"""The MCP client on the worker, against real servers (tests/mcp_servers.py): discovery, calls, the
pool's restarts and cache, failures, and the `iterloop.mcp_call` activity's heartbeats and cancel."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_servers as servers
import pytest
import pytest_asyncio
from runs import poll
from temporalio.testing import ActivityEnvironment

from activities import artifacts
from activities.errors import McpServerError, McpServerUnavailableError
from activities.mcp import activity as mcp_activity
from activities.mcp import pool as pool_module
from activities.mcp.connection import _process_running
from activities.mcp.pool import ServerPool
from activities.mcp.servers import ResolvedServer, resolve_server
from workflows.contract.artifact_refs import ARTIFACT_KEY
from workflows.contract.mcp import McpCallRequest, McpCallResult, McpServerSpec, McpToolInfo



@pytest.fixture(autouse=True)
def _npm_servers_installed() -> None:
    """The npm servers come from `make setup`; without them these tests fail, saying so (never skip)."""
    servers.require_node_servers()

SECRET = "sekrit-value-8271946"


def stdio(name: str, command: tuple[str, list[str]], **kw: Any) -> McpServerSpec:
    return McpServerSpec(name=name, transport="stdio", command=command[0], args=command[1], **kw)


def everything() -> McpServerSpec:
    return stdio("everything", servers.everything_command())


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[ServerPool]:
    p = ServerPool()
    try:
        yield p
    finally:
        await p.close()


@pytest_asyncio.fixture
async def worker_pool(tmp_path: Path) -> AsyncIterator[ServerPool]:
    """The worker's own pool, as the activity uses it, fresh for the test; artifacts in tmp_path."""
    await pool_module.close_pool()
    pool_module.configure(cache_ttl_seconds=3600)
    artifacts.configure(tmp_path / "artifacts")
    try:
        yield pool_module.pool()
    finally:
        await pool_module.close_pool()


def resolved(spec: McpServerSpec, cwd: str | None = None) -> ResolvedServer:
    return resolve_server(spec, cwd=cwd)


def by_name(tools: list[McpToolInfo]) -> dict[str, McpToolInfo]:
    return {t.name: t for t in tools}


def request(spec: McpServerSpec, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> McpCallRequest:
    return McpCallRequest(run_id="run-1", node_id="agent", server=spec, tool=tool, arguments=arguments or {}, **kw)


async def call(spec: McpServerSpec, tool: str, arguments: dict[str, Any] | None = None,
               env: ActivityEnvironment | None = None, **kw: Any) -> McpCallResult:
    return await (env or ActivityEnvironment()).run(mcp_activity.mcp_call, request(spec, tool, arguments, **kw))


# -- discovery ----------------------------------------------------------------------------------

async def test_filesystem_server_lists_its_tools_with_their_annotations(pool: ServerPool, tmp_path: Path) -> None:
    tools = by_name(await pool.list_tools(resolved(stdio("fs", servers.filesystem_command(str(tmp_path))))))
    assert tools["write_file"].mutating and tools["write_file"].destructive is True
    assert not tools["read_text_file"].mutating and tools["read_text_file"].read_only is True
    assert tools["read_text_file"].registry_name == "mcp.fs.read_text_file"
    assert tools["read_text_file"].input_schema["properties"]["path"]["type"] == "string"
    assert tools["read_text_file"].description


@pytest.mark.parametrize("transport", ["stdio", "http", "sse"])
async def test_everything_server_lists_the_same_tools_over_each_transport(pool: ServerPool, transport: str) -> None:
    if transport == "stdio":
        tools = await pool.list_tools(resolved(everything()))
    else:
        with servers.everything_http("streamableHttp" if transport == "http" else "sse") as url:
            tools = await pool.list_tools(resolved(McpServerSpec(name="everything", transport=transport, url=url)))
            await pool.close()  # before the server stops, so the session ends cleanly
    names = {t.name for t in tools}
    assert {"echo", "get-sum", "get-structured-content", "trigger-long-running-operation"} <= names
    assert all(t.server == "everything" for t in tools)


async def test_time_server_lists_its_tools(pool: ServerPool) -> None:
    tools = by_name(await pool.list_tools(resolved(stdio("time", servers.time_command()))))
    assert {"get_current_time", "convert_time"} <= set(tools)
    assert tools["get_current_time"].read_only is True


# -- calls and their results --------------------------------------------------------------------

async def test_text_content_becomes_the_result_field(worker_pool: ServerPool) -> None:
    result = await call(everything(), "echo", {"message": "hello"})
    assert (result.is_error, result.output, result.text) == (False, {"result": "Echo: hello"}, "Echo: hello")


async def test_structured_content_is_the_output_itself(worker_pool: ServerPool) -> None:
    result = await call(everything(), "get-structured-content", {"location": "New York"})
    assert not result.is_error
    assert set(result.output) == {"temperature", "conditions", "humidity"}


async def test_non_text_content_is_written_as_json(worker_pool: ServerPool) -> None:
    result = await call(everything(), "get-tiny-image")
    lines = result.output["result"].splitlines()
    image = next(json.loads(line) for line in lines if line.startswith("{"))
    assert image["type"] == "image" and image["mimeType"] == "image/png"


async def test_filesystem_tools_write_and_read_a_file(worker_pool: ServerPool, tmp_path: Path) -> None:
    fs = stdio("fs", servers.filesystem_command(str(tmp_path)))
    path = str(tmp_path / "note.txt")
    written = await call(fs, "write_file", {"path": path, "content": "line one\nline two"})
    assert not written.is_error
    read = await call(fs, "read_text_file", {"path": path})
    assert read.output == {"content": "line one\nline two"}  # its structured content
    assert read.text == "line one\nline two"  # what a model is shown: the text content


async def test_time_server_answers_with_structured_time(worker_pool: ServerPool) -> None:
    result = await call(stdio("time", servers.time_command()), "get_current_time", {"timezone": "Europe/Paris"})
    assert result.output["timezone"] == "Europe/Paris" and "datetime" in result.output


@pytest.mark.parametrize(("spec", "tool", "arguments", "says"), [
    (lambda tmp: stdio("fs", servers.filesystem_command(tmp)), "read_text_file", {"path": "/nonexistent/x"}, ""),
    (lambda tmp: stdio("time", servers.time_command()), "get_current_time", {"timezone": "Nowhere/Zone"}, "Nowhere"),
    (lambda tmp: everything(), "no-such-tool", {}, "no-such-tool"),
    (lambda tmp: everything(), "get-sum", {"a": "one"}, "get-sum"),
], ids=["filesystem-outside-its-dirs", "time-bad-zone", "unknown-tool", "bad-arguments"])
async def test_a_tool_error_is_a_result_not_a_failure(worker_pool: ServerPool, tmp_path: Path, spec: Any,
                                                       tool: str, arguments: dict[str, Any], says: str) -> None:
    result = await call(spec(str(tmp_path)), tool, arguments)
    assert result.is_error
    assert result.text and result.output == {"error": result.text}
    assert says in result.text


async def test_a_large_output_is_offloaded_to_the_artifact_store(worker_pool: ServerPool) -> None:
    result = await call(everything(), "echo", {"message": "x" * 5000}, offload_threshold_bytes=1000)
    stub = result.output[ARTIFACT_KEY]
    assert stub["fields"] == ["result"] and stub["bytes"] > 5000
    assert "x" * 5000 in json.loads(artifacts.store().get(stub["uri"]))["result"]


# -- configuration: .mcp.json, ${ENV} ------------------------------------------------------------

async def test_a_project_file_server_is_read_on_the_worker_with_env_expanded(
        worker_pool: ServerPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_GREETING", "bonjour")
    command, args = servers.everything_command()
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "everything": {"command": command, "args": args, "env": {"GREETING": "${MCP_TEST_GREETING}"}}}}))
    spec = McpServerSpec(name="everything", project_file=".mcp.json")
    result = await call(spec, "get-env", cwd=str(tmp_path))
    assert json.loads(result.output["result"])["GREETING"] == "bonjour"


def test_a_server_missing_from_the_project_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"github": {"url": "https://x"}}}))
    with pytest.raises(McpServerError, match=r"'gitlab' is not in .*\.mcp\.json \(`mcpServers` has: github\)"):
        resolve_server(McpServerSpec(name="gitlab", project_file=".mcp.json"), cwd=str(tmp_path))


def test_project_file_transports_are_read_and_inferred(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "a": {"url": "https://a/mcp"}, "b": {"command": "b"}, "c": {"type": "streamable-http", "url": "https://c"},
        "d": {"transport": "sse", "url": "https://d/sse"}}}))
    found = {n: resolve_server(McpServerSpec(name=n, project_file=str(tmp_path / ".mcp.json")), cwd=None).transport
             for n in "abcd"}
    assert found == {"a": "http", "b": "stdio", "c": "http", "d": "sse"}


def test_the_pool_key_is_the_expanded_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = McpServerSpec(name="api", transport="http", url="https://h/mcp", headers={"Authorization": "Bearer ${TOK}"})
    monkeypatch.setenv("TOK", "one")
    first = resolved(spec)
    monkeypatch.setenv("TOK", "two")
    assert resolved(spec).key != first.key  # a rotated token starts a new session
    assert dict(first.headers) == {"Authorization": "Bearer one"}


# -- the pool: one session per server, restarts, cache ------------------------------------------

async def test_calls_share_one_server_process(pool: ServerPool) -> None:
    server = resolved(everything())
    await pool.call_tool(server, "echo", {"message": "a"})
    pid = pool.running(server).pid  # type: ignore[union-attr]
    await asyncio.gather(*(pool.call_tool(server, "echo", {"message": str(i)}) for i in range(5)))
    assert pid is not None and pool.running(server).pid == pid  # type: ignore[union-attr]


async def test_a_killed_server_is_restarted_on_the_next_call(pool: ServerPool) -> None:
    server = resolved(everything())
    await pool.call_tool(server, "echo", {"message": "before"})
    old = pool.running(server).pid  # type: ignore[union-attr]
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await poll(lambda: not _process_running(old), "the server to die", timeout=10)  # a signal takes a moment
    result = await pool.call_tool(server, "echo", {"message": "after"})
    assert result.content[0].text == "Echo: after"  # type: ignore[union-attr]
    new = pool.running(server).pid  # type: ignore[union-attr]
    assert new is not None and new != old


async def test_a_restarted_http_server_gets_a_new_session_on_the_next_call(pool: ServerPool) -> None:
    port = servers.free_port()
    with servers.everything_http(port=port) as url:
        server = resolved(McpServerSpec(name="everything", transport="http", url=url))
        await pool.call_tool(server, "echo", {"message": "first"})
        first = pool.running(server)
    with servers.everything_http(port=port):  # it forgot our session
        result = await pool.call_tool(server, "echo", {"message": "second"})
        assert result.content[0].text == "Echo: second" and not result.is_error  # type: ignore[union-attr]
        assert pool.running(server) is not first
        await pool.close()


async def test_a_server_that_dies_mid_call_fails_it_retryably(worker_pool: ServerPool) -> None:
    spec = everything()
    await call(spec, "echo", {"message": "up"})
    pid = worker_pool.running(resolved(spec)).pid  # type: ignore[union-attr]
    assert pid is not None
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    slow = asyncio.create_task(call(spec, "trigger-long-running-operation", {"duration": 30, "steps": 30}, env,
                                    heartbeat_seconds=0.05))
    await poll(lambda: beats, "the call to be under way", timeout=10)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(McpServerUnavailableError, match="MCP server 'everything' .* was lost during tools/call") as err:
        await asyncio.wait_for(slow, 10)
    assert err.value.type == "McpServerUnavailable" and not err.value.non_retryable
    assert (await call(spec, "echo", {"message": "back"})).output == {"result": "Echo: back"}  # the retry's fate


async def test_tool_lists_are_cached_until_the_ttl_runs_out(pool: ServerPool) -> None:
    server = resolved(stdio("changing", servers.changing_command()))
    assert {t.name for t in await pool.list_tools(server)} == {"add_tool", "add_tool_quietly"}
    await pool.call_tool(server, "add_tool_quietly", {"name": "quiet"})
    assert "quiet" not in {t.name for t in await pool.list_tools(server)}  # from the cache
    pool.cache_ttl_seconds = 0  # every list older than this is stale; 0 keeps none
    assert "quiet" in {t.name for t in await pool.list_tools(server)}


async def test_list_changed_from_the_server_drops_its_cached_tools(pool: ServerPool) -> None:
    server = resolved(stdio("changing", servers.changing_command()))
    await pool.list_tools(server)
    await pool.call_tool(server, "add_tool", {"name": "announced"})

    async def listed() -> bool:
        return "announced" in {t.name for t in await pool.list_tools(server)}

    await poll(listed, "the announced tool to be listed despite the hour-long TTL", timeout=10)


async def test_close_stops_every_server(pool: ServerPool, tmp_path: Path) -> None:
    a, b = resolved(everything()), resolved(stdio("fs", servers.filesystem_command(str(tmp_path))))
    await asyncio.gather(pool.list_tools(a), pool.list_tools(b))
    pids = [pool.running(s).pid for s in (a, b)]  # type: ignore[union-attr]
    await pool.close()
    assert all(p is not None and not _process_running(p) for p in pids)


# -- servers that cannot start --------------------------------------------------------------------

async def test_a_command_that_does_not_exist_fails_for_good(pool: ServerPool) -> None:
    spec = McpServerSpec(name="ghost", transport="stdio", command="/nonexistent/mcp-ghost")
    with pytest.raises(McpServerError, match="MCP server 'ghost' .* could not be started: command not found") as err:
        await pool.list_tools(resolved(spec))
    assert err.value.type == "McpServerFailed" and err.value.non_retryable


async def test_a_working_directory_the_worker_lacks_is_named(pool: ServerPool, tmp_path: Path) -> None:
    missing = str(tmp_path / "elsewhere")
    with pytest.raises(McpServerError, match="working directory .*elsewhere' does not exist on this worker"):
        await pool.list_tools(resolved(everything(), cwd=missing))


async def test_a_server_that_exits_at_once_fails_with_its_stderr_redacted(
        worker_pool: ServerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", SECRET)
    script = ("import os, sys; sys.stderr.write('config error: the key ' + os.environ['X_API_TOKEN'] "
              "+ ' was refused\\n'); sys.exit(3)")
    spec = McpServerSpec(name="broken", transport="stdio", command=sys.executable, args=["-c", script])
    with pytest.raises(McpServerError) as err:
        await call(spec, "anything")
    message = str(err.value)
    assert "MCP server 'broken' (stdio) could not be started" in message
    assert "config error: the key [redacted:X_API_TOKEN] was refused" in message
    assert SECRET not in message and SECRET not in json.dumps(err.value.details, default=str)
    assert err.value.non_retryable


async def test_an_http_server_that_refuses_fails_for_good(pool: ServerPool) -> None:
    url = f"http://127.0.0.1:{servers.free_port()}/mcp"
    with pytest.raises(McpServerError, match="MCP server 'down' \\(http\\) could not be reached: cannot connect") as err:
        await pool.list_tools(resolved(McpServerSpec(name="down", transport="http", url=url)))
    assert err.value.non_retryable


# -- the activity: heartbeats, timeout, cancellation -----------------------------------------------

async def test_the_activity_heartbeats_with_server_tool_and_elapsed_time(worker_pool: ServerPool) -> None:
    beats: list[dict[str, Any]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    result = await call(everything(), "trigger-long-running-operation", {"duration": 1, "steps": 2}, env,
                        heartbeat_seconds=0.1)
    assert not result.is_error
    assert len(beats) >= 3
    assert beats[-1]["server"] == "everything" and beats[-1]["tool"] == "trigger-long-running-operation"
    assert beats[-1]["elapsed_seconds"] >= beats[0]["elapsed_seconds"]


async def test_a_call_past_its_timeout_is_an_error_result(worker_pool: ServerPool) -> None:
    started = time.monotonic()
    result = await call(everything(), "trigger-long-running-operation", {"duration": 30, "steps": 30},
                        timeout_seconds=0.5, heartbeat_seconds=0.1)
    assert time.monotonic() - started < 5
    assert result.is_error and "timed out after 0.5 s" in result.text


async def test_cancelling_the_activity_stops_promptly_and_keeps_only_the_pooled_server(
        worker_pool: ServerPool) -> None:
    spec = everything()
    await call(spec, "echo", {"message": "warm up"})
    pid = worker_pool.running(resolved(spec)).pid  # type: ignore[union-attr]
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    task = asyncio.create_task(call(spec, "trigger-long-running-operation", {"duration": 60, "steps": 60}, env,
                                    heartbeat_seconds=0.05))
    await poll(lambda: beats, "a first heartbeat", timeout=10)
    started = time.monotonic()
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3
    assert pid is not None and _process_running(pid)  # the pool's server lives on, and serves the next call
    assert (await call(spec, "echo", {"message": "again"})).output == {"result": "Echo: again"}
    assert worker_pool.running(resolved(spec)).pid == pid  # type: ignore[union-attr]
    await pool_module.close_pool()
    assert not _process_running(pid)


# -- the setting ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "seconds"), [(None, 3600.0), ("0", 0.0), ("90.5", 90.5)])
def test_the_cache_ttl_setting_is_read_from_the_environment(raw: str | None, seconds: float) -> None:
    from runtime.settings import Settings

    env = {} if raw is None else {"ITERLOOP_MCP_CACHE_TTL_SECONDS": raw}
    assert Settings.from_env(env).mcp_cache_ttl_seconds == seconds


@pytest.mark.parametrize("raw", ["-1", "soon", "inf", "nan"])
def test_a_cache_ttl_that_is_no_duration_is_refused(raw: str) -> None:
    from runtime.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="ITERLOOP_MCP_CACHE_TTL_SECONDS=.* is not a number of seconds"):
        Settings.from_env({"ITERLOOP_MCP_CACHE_TTL_SECONDS": raw})
