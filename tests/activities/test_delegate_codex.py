"""The `codex` delegation backend, run for real: the Codex CLI the Makefile pins (`make setup`
installs it into .tools/node/) against the local fake of OpenAI's Responses API, which streams as
the CLI asks (tests/fakes/llm_servers.py).

The CLI reaches the fake through a custom model provider given as `-c` overrides by a small wrapper
script (the backend's own command line is what a user's worker runs, with the user's provider);
HOME and CODEX_HOME are fresh directories, so no user configuration, session or key leaks in. The
pinned version asks for nothing but `POST /v1/responses` (streamed):
`test_the_cli_calls_only_the_responses_api` names any other endpoint a new pin starts to call, so
the fake can learn it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import TEST_API_KEY, FakeOpenAI, Reply, ToolUse
from mcp_servers import everything_command, require_node_servers
from runs import live_members

from activities.delegate import codex
from activities.llm.pricing import ModelPrices, PriceTable
from activities.mcp.pool import close_pool, list_tools
from dsl.ir import Schema, SchemaField
from runtime.codex_cli import LOCAL_INSTALL, CodexNotFound, find_codex_binary
from runtime.settings import Settings
from workflows.contract.delegation import DelegateRequest, DelegateResult, DelegateStep
from workflows.contract.mcp import McpServerSpec

MODEL = "gpt-5"  # a model the shipped price table knows
SCHEMA = Schema(name="finding", fields=[SchemaField(name="summary", type="string"),
                                        SchemaField(name="count", type="int")])
KEY_VAR = "ITERLOOP_TEST_CODEX_KEY"


@pytest.fixture(scope="module")
def pinned_codex() -> Path:
    try:
        # The pinned version, never a user's own on PATH (which `find_codex_binary` prefers).
        return find_codex_binary(Settings(codex_bin=str(LOCAL_INSTALL)))
    except CodexNotFound as e:  # never a skip: `make test` runs `make setup`, which installs it
        problem = str(e)
    pytest.fail(f"this test runs the real Codex CLI: {problem}", pytrace=False)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=TEST_API_KEY) as server:
        yield server


@pytest.fixture
def codex_bin(pinned_codex: Path, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pinned CLI behind a wrapper that points it at the fake (a custom Responses provider),
    with a fresh HOME and CODEX_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODEX_HOME", str(home))
    monkeypatch.setenv(KEY_VAR, TEST_API_KEY)
    provider = (f'model_providers.fake={{name="fake", base_url="{fake.base_url}", env_key="{KEY_VAR}", '
                'wire_api="responses"}')
    wrapper = tmp_path / "codex"
    wrapper.write_text(f"#!/bin/sh\nexec '{pinned_codex}' -c model_provider=fake -c '{provider}' \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def request(workdir: Path, **fields: Any) -> DelegateRequest:
    base: dict[str, Any] = {"run_id": "r1", "node_id": "fixer", "node_kind": "agent", "backend": "codex",
                            "model": MODEL, "system": "You fix growth experiments.", "user": "Look at the work.",
                            "cwd": str(workdir), "timeout_seconds": 120}
    return DelegateRequest(**{**base, **fields})


async def run(req: DelegateRequest, binary: Path) -> tuple[DelegateResult, list[DelegateStep]]:
    streamed: list[DelegateStep] = []
    result = await codex.run(req, binary=binary, on_step=streamed.append)
    return result, streamed


def user_texts(body: dict[str, Any]) -> list[str]:
    return [part.get("text", "") for item in body["input"] if item.get("role") == "user"
            for part in item.get("content") or []]


def developer_texts(body: dict[str, Any]) -> list[str]:
    return [part.get("text", "") for item in body["input"] if item.get("role") == "developer"
            for part in item.get("content") or []]


# -- a visit, end to end ---------------------------------------------------------------------------


async def test_a_structured_answer_is_accepted(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(answer={"summary": "checkout dropped", "count": 3}))
    result, _ = await run(request(workdir, output_schema=SCHEMA), codex_bin)
    assert result.status == "final" and result.output == {"summary": "checkout dropped", "count": 3}
    body = fake.last.body
    assert body["stream"] is True and body["model"] == MODEL
    assert body["text"]["format"]["type"] == "json_schema" and fake.native_requests == 1
    assert set(body["text"]["format"]["schema"]["properties"]) == {"summary", "count"}
    assert "You fix growth experiments." in developer_texts(body)
    assert "Look at the work." in user_texts(body)


async def test_without_a_schema_the_last_message_is_the_output(codex_bin: Path, fake: FakeOpenAI,
                                                               workdir: Path) -> None:
    fake.queue(Reply(text="All fixed."))
    result, _ = await run(request(workdir), codex_bin)
    assert result.status == "final" and result.output == {"text": "All fixed."} and result.text == "All fixed."
    assert fake.native_requests == 0


async def test_an_answer_that_is_no_json_object_is_invalid(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(text="I could not decide."))
    result, _ = await run(request(workdir, output_schema=SCHEMA), codex_bin)
    assert result.status == "invalid" and "JSON object" in result.invalid_reason


async def test_a_command_the_agent_runs_is_recorded_as_steps(codex_bin: Path, fake: FakeOpenAI,
                                                             workdir: Path) -> None:
    fake.queue(Reply(thinking="Look at the files first.", tool_calls=[ToolUse("exec_command", {"cmd": "echo hello"})]),
               Reply(text="Said hello."))
    result, streamed = await run(request(workdir), codex_bin)
    kinds = [(s.kind, s.tool) for s in result.steps]
    assert ("thinking", "") in kinds and ("tool_use", "shell") in kinds and ("tool_result", "shell") in kinds
    use = next(s for s in result.steps if s.kind == "tool_use")
    assert "echo hello" in use.summary
    assert next(s for s in result.steps if s.kind == "tool_result").summary.startswith("exit 0: hello")
    assert streamed == result.steps
    output = fake.requests[1].body["input"][-1]
    assert output["type"] == "function_call_output" and "hello" in output["output"]


async def test_usage_is_mapped_and_priced(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("exec_command", {"cmd": "true"})], input_tokens=1000, cached_tokens=400,
                     output_tokens=50),
               Reply(text="done", input_tokens=1200, cached_tokens=1000, output_tokens=30, reasoning_tokens=10))
    result, _ = await run(request(workdir), codex_bin)
    usage = result.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.reasoning_tokens) == (2200, 1400, 80, 10)
    assert usage.provider == "codex" and usage.model == MODEL and usage.calls == 1
    assert usage.cost_usd > 0 and usage.unpriced_calls == 0 and usage.cache_savings_usd > 0


async def test_a_model_without_a_price_is_counted_unpriced(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(text="done"))
    result, _ = await run(request(workdir, model="house-model-7"), codex_bin)
    assert result.usage.cost_usd == 0 and result.usage.unpriced_calls == 1


async def test_the_workers_price_table_prices_the_tokens(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(text="done", input_tokens=2_000_000, output_tokens=1_000_000))
    prices = PriceTable({"house-model-7": ModelPrices(input=Decimal(1), output=Decimal(2))})
    result = await codex.run(request(workdir, model="house-model-7"), binary=codex_bin, on_step=lambda _: None,
                             prices=prices)
    assert result.usage.cost_usd == pytest.approx(4.0) and result.usage.unpriced_calls == 0


async def test_the_model_and_effort_are_expanded_and_passed(codex_bin: Path, fake: FakeOpenAI, workdir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERLOOP_TEST_CODEX_MODEL", "gpt-5-mini")
    fake.queue(Reply(text="done"))
    result, _ = await run(request(workdir, model="openai/${ITERLOOP_TEST_CODEX_MODEL}", reasoning_effort="extra_high"),
                          codex_bin)
    assert fake.last.body["model"] == "gpt-5-mini" and fake.last.body["reasoning"]["effort"] == "xhigh"
    assert result.usage.model == "gpt-5-mini"


# -- the sandbox -----------------------------------------------------------------------------------

WRITE_A_FILE = Reply(tool_calls=[ToolUse("exec_command", {"cmd": "echo changed > made.txt"})])


def test_a_readonly_request_asks_for_the_read_only_sandbox(tmp_path: Path) -> None:
    argv = codex.command_line(request(tmp_path, readonly=True), Path("codex"), tmp_path, {})
    assert argv[argv.index("-s") + 1] == "read-only"
    assert 'approval_policy="never"' in argv
    writable = codex.command_line(request(tmp_path), Path("codex"), tmp_path, {})
    assert writable[writable.index("-s") + 1] == "workspace-write"


async def test_a_readonly_agent_cannot_write_in_the_working_directory(codex_bin: Path, fake: FakeOpenAI,
                                                                      workdir: Path) -> None:
    fake.queue(WRITE_A_FILE, Reply(text="could not write"))
    result, _ = await run(request(workdir, readonly=True), codex_bin)
    assert not (workdir / "made.txt").exists()
    assert "read-only" in fake.requests[1].body["input"][-1]["output"].lower()
    assert result.status == "final"


async def test_a_writing_agent_can_change_the_working_directory(codex_bin: Path, fake: FakeOpenAI,
                                                                workdir: Path) -> None:
    fake.queue(WRITE_A_FILE, Reply(text="wrote it"))
    await run(request(workdir), codex_bin)
    assert (workdir / "made.txt").read_text() == "changed\n"


# -- sessions --------------------------------------------------------------------------------------


async def test_a_session_is_resumed_with_its_history(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(text="first answer"), Reply(text="second answer"))
    first, _ = await run(request(workdir, user="first question"), codex_bin)
    assert first.session_id
    second, _ = await run(request(workdir, user="second question", resume_session=first.session_id), codex_bin)
    assert second.session_id == first.session_id and second.output == {"text": "second answer"}
    assert {"first question", "second question"} <= set(user_texts(fake.last.body))


async def test_a_forked_session_gets_a_new_id_and_keeps_the_history(codex_bin: Path, fake: FakeOpenAI,
                                                                    workdir: Path) -> None:
    fake.queue(Reply(text="first answer"), Reply(text="forked answer"))
    first, _ = await run(request(workdir, user="first question"), codex_bin)
    fork, _ = await run(request(workdir, user="what next", resume_session=first.session_id, fork_session=True),
                        codex_bin)
    assert fork.session_id and fork.session_id != first.session_id
    assert {"first question", "what next"} <= set(user_texts(fake.last.body))


# -- failures and cancellation ---------------------------------------------------------------------


async def test_a_failed_turn_is_a_command_failure_naming_the_node(codex_bin: Path, fake: FakeOpenAI,
                                                                  workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from activities.errors import CommandFailedError

    monkeypatch.setenv(KEY_VAR, "wrong-key")  # the fake answers 401, which the CLI does not retry
    with pytest.raises(CommandFailedError, match="codex for node 'fixer' failed"):
        await run(request(workdir), codex_bin)


def codex_group(workdir: Path) -> int | None:
    """The process group of the CLI running in ``workdir`` (its cwd), read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry, "cwd").resolve() == workdir.resolve() and b"codex" in (entry / "cmdline").read_bytes():
                return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except OSError:
            continue
    return None


async def test_cancelling_kills_the_cli_and_everything_it_started(codex_bin: Path, fake: FakeOpenAI,
                                                                  workdir: Path) -> None:
    import threading

    release = threading.Event()
    fake.queue(Reply(text="too late", hold=release))
    task = asyncio.create_task(run(request(workdir), codex_bin))
    try:
        await asyncio.to_thread(fake.wait_for_requests, 1, 60)
        pgid = codex_group(workdir)
        assert pgid is not None and live_members(pgid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 10
        while live_members(pgid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live_members(pgid) == []
    finally:
        release.set()


def test_the_cli_calls_only_the_responses_api(codex_bin: Path, fake: FakeOpenAI, workdir: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("exec_command", {"cmd": "true"})]), Reply(text="done"))
    asyncio.run(run(request(workdir), codex_bin))
    assert {(r.method, r.path) for r in fake.requests} == {("POST", "/v1/responses")}, \
        f"the CLI called endpoints the fake does not speak: {[(r.method, r.path) for r in fake.requests]}"
    assert all(r.header("authorization") == f"Bearer {TEST_API_KEY}" for r in fake.requests)


# -- MCP servers -----------------------------------------------------------------------------------


@pytest.fixture
async def everything() -> Any:
    """server-everything over stdio; the worker's MCP pool (a readonly node lists tools through it)
    is closed afterwards."""
    require_node_servers()
    command, args = everything_command()
    yield McpServerSpec(name="everything", transport="stdio", command=command, args=args)
    await close_pool()


def offered_mcp_tools(body: dict[str, Any], server: str) -> set[str]:
    """The tools the CLI offered the model for ``server`` (a `namespace` tool `mcp__SERVER`)."""
    spaces = [t for t in body["tools"] if t.get("type") == "namespace" and t.get("name") == f"mcp__{server}"]
    return {t["name"] for space in spaces for t in space["tools"]}


async def test_the_agent_calls_a_tool_of_the_nodes_mcp_server(codex_bin: Path, fake: FakeOpenAI, workdir: Path,
                                                             everything: McpServerSpec) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("echo", {"message": "ping-42"}, namespace="mcp__everything")]),
               Reply(text="echoed"))
    result, _ = await run(request(workdir, mcp_servers=[everything]), codex_bin)
    assert "echo" in offered_mcp_tools(fake.requests[0].body, "everything")
    use = next(s for s in result.steps if s.kind == "tool_use")
    assert use.tool == "mcp.everything.echo" and "ping-42" in use.summary
    assert "Echo: ping-42" in next(s for s in result.steps if s.kind == "tool_result").summary
    assert "Echo: ping-42" in json.dumps(fake.requests[1].body["input"][-1])


async def test_a_readonly_agent_is_offered_only_read_only_mcp_tools(codex_bin: Path, fake: FakeOpenAI,
                                                                    workdir: Path, everything: McpServerSpec) -> None:
    listed = await list_tools(everything, cwd=str(workdir))
    read_only = {t.name for t in listed if not t.mutating}
    assert read_only and read_only != {t.name for t in listed}  # the server marks some, not all
    fake.queue(Reply(text="looked"))
    await run(request(workdir, readonly=True, mcp_servers=[everything]), codex_bin)
    # The model sees each name with what model APIs refuse replaced (`get-sum` → `get_sum`).
    assert offered_mcp_tools(fake.last.body, "everything") == {re.sub(r"[^A-Za-z0-9_]", "_", n) for n in read_only}


async def test_the_nodes_tools_narrow_an_mcp_servers_tools(codex_bin: Path, fake: FakeOpenAI, workdir: Path,
                                                           everything: McpServerSpec) -> None:
    fake.queue(Reply(text="ok"))
    await run(request(workdir, tools=["mcp.everything.echo", "shell"], mcp_servers=[everything]), codex_bin)
    assert offered_mcp_tools(fake.last.body, "everything") == {"echo"}


def test_tools_entries_name_mcp_tools_per_server() -> None:
    named = codex.named_mcp_tools(["shell", "mcp.a.x", "mcp.a.y", "mcp.b.*", "mcp.b.z", "mcp.c"])
    assert named == {"a": {"x", "y"}, "b": None, "c": None}


# -- the command line's parts ----------------------------------------------------------------------


def test_mcp_servers_become_config_overrides_with_their_secrets_in_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERLOOP_TEST_TOKEN", "s3cret")
    servers = [McpServerSpec(name="files", transport="stdio", command="mcp-files", args=["--root", "${HOME}"],
                             env={"TOKEN": "${ITERLOOP_TEST_TOKEN}"}),
               McpServerSpec(name="tracker", transport="http", url="https://mcp.example/mcp",
                             headers={"Authorization": "Bearer ${ITERLOOP_TEST_TOKEN}"})]
    env: dict[str, str] = {}
    argv = codex.command_line(request(tmp_path, mcp_servers=servers), Path("codex"), tmp_path, env)
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "-c" and argv[i + 1].startswith("mcp_servers.")]
    home = str(Path.home())
    assert overrides[0] == (f'mcp_servers.files={{"command" = "mcp-files", "args" = ["--root", "{home}"], '
                            f'"env_vars" = ["TOKEN"], "cwd" = "{tmp_path}"}}')
    assert overrides[1] == ('mcp_servers.tracker={"url" = "https://mcp.example/mcp", '
                            '"env_http_headers" = {"Authorization" = "ITERLOOP_MCP_TOKEN_TRACKER_0"}}')
    # Any local user can read a process's arguments: the values are only in the CLI's environment.
    assert not any("s3cret" in a for a in argv)
    assert env == {"TOKEN": "s3cret", "ITERLOOP_MCP_TOKEN_TRACKER_0": "Bearer s3cret"}


def test_a_server_variable_the_cli_holds_otherwise_is_refused(tmp_path: Path) -> None:
    from activities.errors import BadRequestError

    server = McpServerSpec(name="files", transport="stdio", command="mcp-files", env={"PATH": "/opt/files/bin"})
    with pytest.raises(BadRequestError, match="sets PATH, which the Codex CLI's own environment holds"):
        codex.command_line(request(tmp_path, mcp_servers=[server]), Path("codex"), tmp_path, {"PATH": "/usr/bin"})


async def test_a_stdio_servers_environment_reaches_it_through_the_cli(
        codex_bin: Path, fake: FakeOpenAI, workdir: Path, everything: McpServerSpec,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERLOOP_TEST_GREETING", "bonjour-7")
    server = everything.model_copy(update={"env": {"GREETING": "${ITERLOOP_TEST_GREETING}"}})
    fake.queue(Reply(tool_calls=[ToolUse("get_env", {}, namespace="mcp__everything")]), Reply(text="read"))
    await run(request(workdir, mcp_servers=[server]), codex_bin)
    assert "bonjour-7" in json.dumps(fake.requests[1].body["input"][-1])


def test_an_sse_server_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from activities.errors import BadRequestError

    sse = McpServerSpec(name="old", transport="sse", url="https://mcp.example/sse")
    with pytest.raises(BadRequestError, match="SSE.*streamable HTTP"):
        codex.command_line(request(tmp_path, mcp_servers=[sse]), Path("codex"), tmp_path, {})


@pytest.mark.parametrize("text", ["true", "42", 'say "hi"\\n', "line one\nline two\ttab\x7f", "héllo ✓ 🎉"])
def test_toml_strings_keep_any_text_as_text(text: str) -> None:
    import tomllib

    assert tomllib.loads(f"v = {codex.toml_value(text)}")["v"] == text


def test_a_schema_with_no_strict_form_is_asked_for_in_the_prompt(tmp_path: Path) -> None:
    loose = Schema(name="loose", fields=[SchemaField(name="data", type="json")])
    req = request(tmp_path, output_schema=loose)
    assert "--output-schema" not in codex.command_line(req, Path("codex"), tmp_path, {})
    assert "JSON Schema" in codex.prompt_text(req)
    strict = request(tmp_path, output_schema=SCHEMA)
    argv = codex.command_line(strict, Path("codex"), tmp_path, {})
    written = json.loads(Path(argv[argv.index("--output-schema") + 1]).read_text())
    assert written["additionalProperties"] is False and written["required"] == ["summary", "count"]
