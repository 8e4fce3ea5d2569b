"""The `claude_code` delegation backend and the delegation activity.

The real Claude Code CLI (the version the Makefile pins, `make setup`) runs against the streaming
fake of the Messages API (tests/fakes/llm_servers.py) with HOME a fresh directory, so no user
configuration or key leaks in. What the CLI streamed back is the evidence: the answer through its
structured output, the tool uses as steps, the session id, the cost; what it sent the fake shows
that a resumed session carries the first run's conversation.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import TEST_API_KEY, FakeAnthropic, Reply, ToolUse
from runs import live_members

from activities.delegate import activity as delegation
from activities.delegate import claude_code, cli_process
from dsl import ir
from runtime.claude_code import LOCAL_INSTALL
from workflows.contract.delegation import DelegateRequest, DelegateStep
from workflows.contract.mcp import McpServerSpec

SCHEMA = ir.Schema(name="change", fields=[ir.SchemaField(name="summary", type="string"),
                                          ir.SchemaField(name="files", type="string[]")])
#: The tool the pinned CLI offers the model for a `--json-schema` answer.
STRUCTURED = "StructuredOutput"


def request(project: Path, **fields: Any) -> DelegateRequest:
    return DelegateRequest(**{"run_id": "r1", "node_id": "implement", "node_kind": "agent", "backend": "claude_code",
                              "user": "Describe the change to README.md.", "output_schema": SCHEMA,
                              "cwd": str(project), "timeout_seconds": 120, **fields})


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    if not LOCAL_INSTALL.exists():  # never a skip: `make test` runs `make setup`, which installs it
        pytest.fail(f"this test runs the real Claude Code CLI; run `make setup` ({LOCAL_INSTALL} is missing)",
                    pytrace=False)
    home = tmp_path / "home"
    home.mkdir()
    with FakeAnthropic(api_key=TEST_API_KEY) as server:
        for name, value in {**server.env(), "HOME": str(home), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}.items():
            monkeypatch.setenv(name, value)
        for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# demo\n")
    return folder


async def run(req: DelegateRequest, steps: list[DelegateStep] | None = None):  # type: ignore[no-untyped-def]
    return await claude_code.run(req, binary=LOCAL_INSTALL, on_step=(steps if steps is not None else []).append)


async def test_the_structured_answer_is_the_output_and_a_tool_use_is_a_step(fake: FakeAnthropic, project: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("Read", {"file_path": str(project / "README.md")})]),
               Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "add usage", "files": ["README.md"]})]),
               Reply(text="done"))
    steps: list[DelegateStep] = []
    result = await run(request(project, tools=["read_file"]), steps)
    assert result.status == "final", result.invalid_reason
    assert result.output == {"summary": "add usage", "files": ["README.md"]}
    assert [s.tool for s in result.steps if s.kind == "tool_use"][:1] == ["Read"]
    assert any(s.kind == "tool_result" for s in result.steps)
    assert steps == result.steps  # streamed as they came, the same ones kept
    assert result.session_id
    first = fake.requests[0].body
    assert any(t.get("name") == STRUCTURED for t in first.get("tools", []))  # --json-schema reached the CLI


async def test_cost_and_tokens_come_from_the_clis_result(fake: FakeAnthropic, project: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "s", "files": []})], input_tokens=1000,
                     output_tokens=200), Reply(text="done"))
    result = await run(request(project))
    assert result.usage.provider == "claude_code"
    assert result.usage.input_tokens >= 1000 and result.usage.output_tokens >= 200
    assert result.usage.cost_usd > 0 and result.usage.unpriced_calls == 0


async def test_a_resumed_session_carries_the_first_runs_conversation(fake: FakeAnthropic, project: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "first", "files": []})]), Reply(text="done"))
    first = await run(request(project, user="Remember the word PAPAYA."))
    fake.reset()
    fake.queue(Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "second", "files": []})]), Reply(text="done"))
    second = await run(request(project, user="Which word?", resume_session=first.session_id))
    assert second.output["summary"] == "second"
    sent = json.dumps(fake.requests[0].body["messages"])
    assert "PAPAYA" in sent and "Which word?" in sent
    assert second.session_id == first.session_id


async def test_cancelling_kills_the_clis_whole_process_group(fake: FakeAnthropic, project: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    held = threading.Event()
    fake.queue(Reply(text="never", hold=held))
    groups: list[int] = []
    spawn = cli_process.spawn_guarded

    async def recording(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await spawn(*args, **kwargs)
        groups.append(proc.pid)
        return proc

    monkeypatch.setattr(cli_process, "spawn_guarded", recording)
    task = asyncio.create_task(run(request(project)))
    try:
        await asyncio.to_thread(fake.wait_for_requests, 1, 60)  # the CLI is in a model call
        assert groups and live_members(groups[0])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 15
        while live_members(groups[0]) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live_members(groups[0]) == []
    finally:
        held.set()


# -- the command line and the activity's own rules (no CLI) ---------------------------------------


def test_readonly_plans_and_never_allows_a_mutating_tool(tmp_path: Path) -> None:
    argv = claude_code.command_line(request(tmp_path, readonly=True, tools=["shell", "read_file"]), LOCAL_INSTALL,
                                    tmp_path, {})
    assert argv[argv.index("--permission-mode") + 1] == "plan"
    assert "Bash" in argv[argv.index("--disallowedTools") + 1]
    assert argv[argv.index("--allowedTools") + 1] == "Read"


def test_tools_models_and_mcp_servers_map_to_the_clis_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GB_TOKEN", "t0k")
    servers = [McpServerSpec(name="gb", transport="stdio", command="gb-mcp", env={"TOKEN": "${GB_TOKEN}"})]
    req = request(tmp_path, tools=["shell", "mcp.gb.get_feature"], model="anthropic/${M}", mcp_servers=servers,
                  resume_session="s-1", fork_session=True, reasoning_effort="high")
    argv = claude_code.command_line(req, LOCAL_INSTALL, tmp_path, {"M": "claude-x", "GB_TOKEN": "t0k"})
    assert argv[argv.index("--allowedTools") + 1] == "Bash,mcp__gb__get_feature"
    assert argv[argv.index("--model") + 1] == "claude-x"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--resume") + 1] == "s-1" and "--fork-session" in argv
    assert argv[argv.index("--effort") + 1] == "high" and "--strict-mcp-config" in argv
    config = json.loads(Path(argv[argv.index("--mcp-config") + 1]).read_text())
    assert config["mcpServers"]["gb"] == {"type": "stdio", "command": "gb-mcp", "args": [], "env": {"TOKEN": "t0k"}}
    assert Path(argv[argv.index("--mcp-config") + 1]).stat().st_mode & 0o077 == 0


def test_another_providers_model_leaves_the_clis_default() -> None:
    assert claude_code.cli_model("openai/gpt-5") == "" and claude_code.cli_model("claude-opus-4-1") == "claude-opus-4-1"


async def test_offline_the_script_answers_and_no_cli_runs(tmp_path: Path) -> None:
    req = request(tmp_path, script={"implement": {"summary": "scripted", "files": ["a.py"]}})
    result = await delegation.run_delegate(req)
    assert result.output == {"summary": "scripted", "files": ["a.py"]}
    assert result.usage.provider == "scripted" and "not run offline" in result.text


async def test_an_answer_outside_the_schema_is_invalid_with_the_reason(tmp_path: Path) -> None:
    from workflows.contract.delegation import DelegateResult

    result = delegation.checked(request(tmp_path), DelegateResult(status="final", output={"summary": 3}))
    assert result.status == "invalid" and "summary" in result.invalid_reason


async def test_prompts_reach_the_cli_from_files_never_its_arguments(fake: FakeAnthropic, project: Path) -> None:
    system, user = "You are GUAVA-system.", "Describe MANGO-user. " + "x" * 200_000  # over one argument's 128 KiB
    req = request(project, system=system, user=user, max_turns=7)
    argv = claude_code.command_line(req, LOCAL_INSTALL, project, {})
    assert not any("GUAVA" in a or "MANGO" in a for a in argv)  # any local user can read arguments
    assert argv[argv.index("--max-turns") + 1] == "7"  # the node's tool_max_steps
    fake.queue(Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "s", "files": []})]), Reply(text="done"))
    result = await run(req)
    assert result.status == "final"
    sent = json.dumps(fake.requests[0].body)
    assert "GUAVA-system" in sent and "MANGO-user" in sent


async def test_an_agent_that_asks_a_person_needs_interaction_with_its_questions(fake: FakeAnthropic,
                                                                                project: Path) -> None:
    fake.queue(Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "-", "files": [], "_needs_interaction": True,
                                                      "_interaction_questions": ["Which branch?"]})]),
               Reply(text="asking"))
    req = request(project, interaction=True)
    result = delegation.checked(req, await run(req))
    assert (result.status, result.questions) == ("needs_interaction", {"question_1": "Which branch?"})
    tools = {t["name"]: t for t in fake.requests[0].body.get("tools", [])}
    assert "_needs_interaction" in json.dumps(tools[STRUCTURED]["input_schema"])  # the schema lets it ask
    done = delegation.checked(req, result.model_copy(update={
        "status": "final", "output": {"summary": "s", "files": [], "_needs_interaction": False}}))
    assert (done.status, done.output) == ("final", {"summary": "s", "files": []})


@pytest.mark.parametrize(("written", "env", "flag"), [
    ("extra_high", {}, "max"), ("xhigh", {}, "max"), ("${EFFORT:-low}", {}, "low"),
    ("${EFFORT:-low}", {"EFFORT": "medium"}, "medium"), ("${EFFORT}", {}, None)])
def test_the_effort_is_expanded_on_the_worker_and_spelt_as_the_cli_takes_it(
        tmp_path: Path, written: str, env: dict[str, str], flag: str | None) -> None:
    argv = claude_code.command_line(request(tmp_path, reasoning_effort=written), LOCAL_INSTALL, tmp_path, env)
    assert (argv[argv.index("--effort") + 1] if "--effort" in argv else None) == flag
