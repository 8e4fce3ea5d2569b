"""Delegated nodes end to end on a real worker: examples/dual_model_plan_implement_review.iter with the
real Claude Code CLI, a Codex implementer beside a model judge with the real Codex CLI, and an agent
that asks a person.

The planner and the reviewer are iterloop's own model calls; the implementer (`backend:
"claude_code"`) is the real Claude Code CLI (the pinned version). Both talk to one streaming fake
of the Messages API, which answers in the order the run asks: plan, the CLI's turns, verdict, the
CLI's turns on the revision, verdict. The offline run of the same example is a case of
test_examples_run.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import TEST_API_KEY, FakeAnthropic, FakeOpenAI, Reply, ToolUse
from runs import finish, live_members, running_worker, start, wait_for
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

import dsl
from runtime.claude_code import LOCAL_INSTALL
from runtime.codex_cli import LOCAL_INSTALL as CODEX
from workflows.contract.state import Answer, Event

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dual_model_plan_implement_review.iter"
STRUCTURED = "StructuredOutput"  # the pinned CLI's tool for a `--json-schema` answer


@asynccontextmanager
async def real_worker(client: Any, task_queue: str, fake: FakeAnthropic, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    from worker import build_worker

    home = tmp_path / "home"
    home.mkdir()
    for name, value in {**fake.env(), "ITERLOOP_OFFLINE": "", "MODEL": "anthropic/claude-test", "HOME": str(home),
                        "ITERLOOP_CLAUDE_BIN": str(LOCAL_INSTALL),
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}.items():
        monkeypatch.setenv(name, value)
    async with build_worker(client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
        yield


async def test_the_example_runs_with_the_real_cli_and_resumes_its_session(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not LOCAL_INSTALL.exists():
        pytest.fail(f"this test runs the real Claude Code CLI; run `make setup` ({LOCAL_INSTALL} is missing)",
                    pytrace=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# demo\n")
    wf = dsl.check_file(EXAMPLE).workflow
    assert wf is not None
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.queue(
            Reply(answer={"plan": "Write USAGE.md", "files": ["USAGE.md"]}),
            # the CLI: writes the file (acceptEdits), then answers through its structured output
            Reply(tool_calls=[ToolUse("Write", {"file_path": str(repo / "USAGE.md"), "content": "run it\n"})]),
            Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "wrote USAGE.md", "files_changed": ["USAGE.md"]})]),
            Reply(answer={"approved": False, "feedback": "mention the flags"}),
            Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "added the flags", "files_changed": ["USAGE.md"]})]),
            Reply(answer={"approved": True, "feedback": "good"}),
        )
        async with real_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, wf, shell_cwd=str(repo))
            result = await finish(handle, timeout=240)
            events = await handle.query("events", 0, result_type=list[Event])
        requests = list(fake.requests)
    assert result.status == "finished", result.reason
    assert result.outputs["implementer"]["summary"] == "added the flags"
    assert (repo / "USAGE.md").read_text() == "run it\n"  # the agent worked in the run's directory
    steps = [e.data for e in events if e.type == "delegate_step" and e.node == "implementer"]
    assert {"kind": "tool_use", "tool": "Write"}.items() <= next(s for s in steps if s["kind"] == "tool_use").items()
    # The revision resumed the first CLI session: its request carries the first visit's conversation.
    revision = next(json.dumps(r.body["messages"]) for r in requests
                    if "mention the flags" in json.dumps(r.body["messages"]))
    assert "none yet" in revision and "wrote USAGE.md" in revision
    # The CLI's cost (its own `total_cost_usd`) is in the run's usage.
    cli_usage = [e.data for e in events if e.type == "llm_step_finished" and e.node == "implementer"]
    assert len(cli_usage) == 2 and all(u["cost_usd"] > 0 for u in cli_usage)
    assert result.usage.cost_usd >= sum(u["cost_usd"] for u in cli_usage)


REPAIRED = """
schema verdict:
  level: string [enum: "low", "high"]

agent assess:
  backend: "claude_code"
  output: verdict

workflow assess_run:
  entry: assess
  assess -> done
"""


async def test_an_answer_without_the_schema_is_repaired_in_the_same_cli_session(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wf = dsl.check_source(REPAIRED).workflow
    assert wf is not None
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        # The CLI asks once more itself for the structured answer, then gives up with text only.
        fake.queue(Reply(text="it looks fine"), Reply(text="really fine"),
                   Reply(tool_calls=[ToolUse(STRUCTURED, {"level": "low"})]))
        async with real_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, wf, shell_cwd=str(tmp_path))
            result = await finish(handle, timeout=240)
            events = await handle.query("events", 0, result_type=list[Event])
        repair = json.dumps(fake.requests[-1].body["messages"])
    assert result.status == "finished", result.reason
    assert result.outputs["assess"]["level"] == "low"
    assert [e.data["reason"] for e in events if e.type == "llm_repair_requested"] == [
        "the agent gave no JSON object as its answer"]
    assert "it looks fine" in repair and "does not match the required output schema" in repair


def cli_groups(workdir: Path) -> list[int]:
    """The process groups of running `claude` processes working in ``workdir`` (the prompt is on
    their stdin, never in their command line, so the directory is what tells this test's CLI apart)."""
    groups = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            cwd = os.readlink(entry / "cwd")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if cwd == str(workdir) and "claude" in cmdline and fields[0] != "Z":
            groups.append(int(fields[2]))
    return sorted(set(groups))


async def test_cancelling_the_run_stops_the_cli_and_its_whole_process_group(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"cancel-me-{time.monotonic_ns()}"
    workdir = tmp_path / marker
    workdir.mkdir()
    wf = dsl.check_source(REPAIRED.replace('output: verdict', 'output: verdict\n  user: ask') +
                          f"\nprompt ask:\n  {marker}\n").workflow
    assert wf is not None
    held = threading.Event()
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.queue(Reply(text="never", hold=held))
        try:
            async with real_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
                # A cancel reaches an activity with its next heartbeat (sent at most every 0.8 x the timeout).
                handle = await start(temporal_env.client, task_queue, wf, shell_cwd=str(workdir),
                                     llm_heartbeat_timeout_seconds=3)
                await asyncio.to_thread(fake.wait_for_requests, 1, 60)  # the CLI waits for the model
                assert marker in json.dumps(fake.requests[0].body)  # the prompt reached it (on stdin)
                [group] = cli_groups(workdir)
                await handle.cancel()
                deadline = time.monotonic() + 30
                while live_members(group) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                assert live_members(group) == []
                with pytest.raises(WorkflowFailureError) as err:
                    await handle.result()
                assert isinstance(err.value.cause, CancelledError)
        finally:
            held.set()


ASKING = '''
schema change:
  summary: string
agent implementer:
  backend: "claude_code"
  interaction: human
  output: change
  user: task
prompt task:
  Rename the main branch.
workflow asks:
  entry: implementer
  implementer -> done
'''


async def test_a_delegated_agent_asks_a_person_and_is_resumed_with_the_answer(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`interaction:` on a delegated node: the CLI's answer asks, the node's gate opens with its
    questions, and the person's answer resumes the CLI's session, whose next answer is the output."""
    if not LOCAL_INSTALL.exists():
        pytest.fail(f"this test runs the real Claude Code CLI; run `make setup` ({LOCAL_INSTALL} is missing)",
                    pytrace=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.queue(
            Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "-", "_needs_interaction": True,
                                                   "_interaction_questions": ["Which name: main or trunk?"]})]),
            Reply(text="asked"),
            Reply(tool_calls=[ToolUse(STRUCTURED, {"summary": "renamed to trunk"})]),
            Reply(text="done"),
        )
        async with real_worker(temporal_env.client, task_queue, fake, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, ASKING, shell_cwd=str(repo))
            view = await wait_for(handle, lambda v: bool(v.open_gates), timeout=120)
            gate = view.open_gates[0]
            assert (gate.gate, gate.questions) == ("implementer", {"question_1": "Which name: main or trunk?"})
            await handle.execute_update("answer", Answer(gate="implementer", answers={"name": "trunk"},
                                                         answered_by="maintainer"))
            result = await finish(handle, timeout=120)
            events = await handle.query("events", 0, result_type=list[Event])
        requests = list(fake.requests)
    assert result.status == "finished", result.reason
    assert result.outputs["implementer"]["summary"] == "renamed to trunk"
    assert "_needs_interaction" not in result.outputs["implementer"]
    asked = next(e.data for e in events if e.type == "human_input_requested")
    assert (asked["source"], asked["backend"]) == ("delegate", "claude_code")
    # The resumed session carries the question it asked and the person's answer.
    resumed = json.dumps(requests[2].body["messages"])
    assert "Which name: main or trunk?" in resumed and "trunk" in resumed and "A person answered" in resumed
    assert "_needs_interaction" in json.dumps(requests[0].body["system"])  # the protocol was explained


async def test_offline_a_scripted_delegated_agent_may_ask_once(temporal_env: Any, task_queue: str) -> None:
    """The scripted backend asks when its script says so, and after the answer gives the rest of it."""
    script = {"implementer": {"summary": "renamed", "_needs_interaction": True, "_interaction_questions": ["Name?"]}}
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, ASKING, script=script)
        view = await wait_for(handle, lambda v: bool(v.open_gates))
        assert view.open_gates[0].questions == {"question_1": "Name?"}
        await handle.execute_update("answer", Answer(gate="implementer", answers={"name": "trunk"}))
        result = await finish(handle)
    assert result.outputs["implementer"]["summary"] == "renamed"


CODEX_REVIEWED = '''
schema change:
  summary: string
schema verdict:
  approved: bool
  feedback: string
prompt task:
  Summarise the repository in one line.
agent implementer:
  backend: "codex"
  model: "openai/gpt-5"
  output: change
  user: task
judge reviewer:
  model: "openai/gpt-test"
  output: verdict
  readonly: true
workflow reviewed:
  entry: implementer
  implementer -> reviewer
  reviewer -> done when approved
  reviewer -> fail
'''


async def test_a_codex_implementer_beside_a_model_judge_runs_with_the_real_cli(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Iterion's pattern with the other backend: the real Codex CLI (configured as a user configures
    it, a provider in $CODEX_HOME/config.toml) implements, iterloop's own OpenAI call judges; both talk
    to one streaming Responses fake."""
    from worker import build_worker

    if not CODEX.exists():
        pytest.fail(f"this test runs the real Codex CLI; run `make setup` ({CODEX} is missing)", pytrace=False)
    repo, home = tmp_path / "repo", tmp_path / "home"
    repo.mkdir()
    home.mkdir()
    with FakeOpenAI(api_key=TEST_API_KEY) as fake:
        (home / "config.toml").write_text(
            'model_provider = "local"\n\n[model_providers.local]\nname = "local"\n'
            f'base_url = "{fake.base_url}"\nenv_key = "ITERLOOP_TEST_CODEX_KEY"\nwire_api = "responses"\n')
        for name, value in {**fake.env(), "ITERLOOP_OFFLINE": "", "HOME": str(home), "CODEX_HOME": str(home),
                            "ITERLOOP_TEST_CODEX_KEY": TEST_API_KEY, "ITERLOOP_CODEX_BIN": str(CODEX)}.items():
            monkeypatch.setenv(name, value)
        fake.queue(Reply(answer={"summary": "a demo repository"}, input_tokens=900, output_tokens=40),
                   Reply(answer={"approved": True, "feedback": "clear"}))
        async with build_worker(temporal_env.client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
            handle = await start(temporal_env.client, task_queue, CODEX_REVIEWED, shell_cwd=str(repo))
            result = await finish(handle, timeout=180)
            events = await handle.query("events", 0, result_type=list[Event])
    assert result.status == "finished", result.reason
    assert result.outputs["implementer"]["summary"] == "a demo repository"
    assert result.outputs["reviewer"]["approved"] is True
    turns = [e.data for e in events if e.type == "llm_step_finished" and e.node == "implementer"]
    assert turns[0]["backend"] == "codex" and turns[0]["input_tokens"] == 900
    assert turns[0]["cost_usd"] > 0  # priced as OpenAI's gpt-5 from its tokens
    assert "Summarise the repository" in json.dumps(fake.requests[0].body)
