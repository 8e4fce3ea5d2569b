"""LLM nodes end to end: the real `anthropic` and `openai` clients inside a worker on the dev
server, talking to local fakes of their APIs (tests/fakes/llm_servers.py).

What is checked here is the workflow's half of issue 4 — turns and tool calls as activities,
repairs, policy checks, sessions, usage and cost — through what the fake providers received and
what the run recorded. The providers' own translation is tested in tests/activities/test_llm_*.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.llm_servers import Failure, FakeAnthropic, FakeLLMServer, FakeOpenAI, Recorded, Reply, ToolUse
from runs import events_with, finish, start, wait_for
from temporalio.client import Client

from workflows.contract.state import RunView

FINDING = """
schema finding:
  summary: string
  severity: string [enum: "low", "high"]
"""

PRICES = {"models": {"claude-test": {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write": 3.75},
                     "gpt-test": {"input": 2.0, "output": 8.0, "cached_input": 0.5}}}


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return path


@contextmanager
def fake(kind: type[FakeLLMServer]) -> Iterator[FakeLLMServer]:
    with kind() as server:
        yield server


@asynccontextmanager
async def llm_worker(client: Client, task_queue: str, server: FakeLLMServer, prices: Path, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """An in-process worker with real providers pointed at ``server`` (settings read at start, as in production)."""
    from worker import build_worker

    for name, value in {**server.env(), "ITERLOOP_PRICES_FILE": str(prices), "ITERLOOP_OFFLINE": ""}.items():
        monkeypatch.setenv(name, value)
    async with build_worker(client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
        yield


def chat_messages(request: Recorded) -> list[dict[str, Any]]:
    return list(request.body["messages"])


def texts_of(messages: list[dict[str, Any]]) -> str:
    """Every text of an Anthropic or Chat Completions message list, for 'was X sent' checks."""
    return json.dumps(messages, ensure_ascii=False)


def dialogue(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of each Anthropic message, without cache markers and other block details."""
    def text(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content if b.get("type") == "text")
    return [(m["role"], text(m["content"])) for m in messages]


# -- answers, repairs, failures -------------------------------------------------------------------

async def test_a_schema_valid_answer_is_the_output_with_exact_usage_and_cost(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FINDING + """
agent analyst:
  model: "anthropic/claude-test"
  output: finding
workflow w:
  entry: analyst
  analyst -> done
"""
    with fake(FakeAnthropic) as server:
        server.queue(Reply(answer={"summary": "iOS checkout fell", "severity": "high"},
                           input_tokens=1200, cached_tokens=1000, output_tokens=100))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            result = await finish(await start(temporal_env.client, task_queue, src))
    assert result.status == "finished"
    assert result.outputs["analyst"] == {"summary": "iOS checkout fell", "severity": "high", "_session_id": "analyst#1"}
    usage = result.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.calls) == (1200, 1000, 100, 1)
    # 200 uncached at $3/M + 1000 cached at $0.30/M + 100 out at $15/M; cached tokens save 1000 × $2.70/M.
    assert usage.cost_usd == pytest.approx((200 * 3.0 + 1000 * 0.3 + 100 * 15.0) / 1e6, abs=1e-12)
    assert usage.cache_savings_usd == pytest.approx(1000 * (3.0 - 0.3) / 1e6, abs=1e-12)
    assert len(server.requests) == 1


async def test_invalid_json_gets_a_repair_turn_quoting_the_error(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FINDING + """
agent analyst:
  model: "openai/gpt-test"
  output: finding
workflow w:
  entry: analyst
  analyst -> done
"""
    with fake(FakeOpenAI) as server:
        server.queue(Reply(text="The severity is high, I think."),
                     Reply(answer={"summary": "iOS checkout fell", "severity": "high"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, src)
            result = await finish(handle)
            history = await handle.fetch_history()
    assert result.status == "finished"
    assert result.outputs["analyst"]["severity"] == "high"
    assert len(server.requests) == 2
    repair = chat_messages(server.requests[1])
    # The second turn carries the first answer and a user message quoting what was wrong.
    assert repair[-2]["role"] == "assistant" and "I think" in repair[-2]["content"]
    assert repair[-1]["role"] == "user" and "schema 'finding'" in repair[-1]["content"]
    assert "JSON" in repair[-1]["content"]
    assert result.usage.calls == 2
    summaries = [e.user_metadata.summary.data.decode() for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert [json.loads(s) for s in summaries] == ["analyst · llm node turn 1", "analyst · llm node turn 2"]


async def test_an_answer_still_invalid_after_the_repairs_parks_the_node_showing_it(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FINDING + """
agent analyst:
  model: "anthropic/claude-test"
  output: finding
workflow w:
  entry: analyst
  analyst -> done
"""
    with fake(FakeAnthropic) as server:
        server.default = Reply(answer={"summary": "iOS checkout fell", "severity": "catastrophic"})
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, src, llm_max_repairs=1)
            view = await wait_for(handle, lambda v: v.status == "failed_resumable")
            await handle.cancel()
    # One answer plus one repair, and no activity retries: a schema violation is permanent.
    assert len(server.requests) == 2
    failure = view.failures[0]
    assert failure.node == "analyst" and failure.error_type == "SchemaViolation"
    assert "severity" in failure.error and "catastrophic" in failure.error and "'finding'" in failure.error


async def test_an_unauthorized_key_fails_at_once_without_retries(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = """
agent writer:
  model: "openai/gpt-test"
workflow w:
  entry: writer
  writer -> done
"""
    with fake(FakeOpenAI) as server:
        server.default = Failure.unauthorized()
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, src, max_attempts=5)
            view = await wait_for(handle, lambda v: v.status == "failed_resumable")
            await handle.cancel()
    assert len(server.requests) == 1
    assert view.failures[0].error_type == "ModelAuthFailed"
    assert "OPENAI_API_KEY" in view.failures[0].error


async def test_a_rate_limit_is_retried_after_the_servers_retry_after(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = """
agent writer:
  model: "anthropic/claude-test"
workflow w:
  entry: writer
  writer -> done
"""
    with fake(FakeAnthropic) as server:
        server.queue(Failure.rate_limited(retry_after=2), Reply(text="done"))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, src)
            result = await finish(handle)
    assert result.status == "finished" and result.outputs["writer"]["text"] == "done"
    first, second = server.requests
    # The activity's own retry interval starts at 1 s; the wait follows the server's 2 s instead.
    assert second.received_at - first.received_at >= 1.9


# -- tools ----------------------------------------------------------------------------------------

TOOLS_SRC = FINDING + """
agent analyst:
  model: "openai/gpt-test"
  output: finding
  tools: [sum_values, echo, create_feature_flag]
  tool_max_steps: 2
  readonly: READONLY
  tool_policy: [sum_values, create_feature_flag]
workflow w:
  entry: analyst
  analyst -> done
"""


async def test_tool_calls_run_as_activities_and_their_results_go_back_to_the_model(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeOpenAI) as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1.5, 2.5]}, id="call_a")]),
                     Reply(tool_calls=[ToolUse("echo", {"x": 1}, id="call_b"),
                                       ToolUse("sum_values", {"values": [10]}, id="call_c")]),
                     Reply(answer={"summary": "total 4", "severity": "low"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, TOOLS_SRC.replace("READONLY", "false"))
            result = await finish(handle)
            history = await handle.fetch_history()
    assert result.status == "finished" and result.outputs["analyst"]["summary"] == "total 4"
    # Offered: the node's tools that the policy allows (echo is not in it).
    offered = sorted(t["function"]["name"] for t in server.requests[0].body["tools"])
    assert offered == ["create_feature_flag", "sum_values"]
    second = chat_messages(server.requests[1])
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_a"
    assert json.loads(second[-1]["content"]) == {"total": 4.0, "count": 2}
    third = chat_messages(server.requests[2])
    denied, ran = third[-2], third[-1]
    assert denied["tool_call_id"] == "call_b" and "not in the allowlist" in denied["content"]
    assert ran["tool_call_id"] == "call_c" and json.loads(ran["content"]) == {"total": 10.0, "count": 1}
    # After tool_max_steps (2) turns with tools, the third offers none: the model must answer.
    assert len(server.requests) == 3
    assert not server.requests[2].body.get("tools") or server.requests[2].body.get("tool_choice") == "none"
    tool_activities = [json.loads(e.user_metadata.summary.data) for e in history.events
                       if e.HasField("activity_task_scheduled_event_attributes")
                       and e.activity_task_scheduled_event_attributes.activity_type.name == "iterloop.tool_call"]
    assert tool_activities == ["analyst · tool sum_values", "analyst · tool sum_values"]


async def test_a_readonly_node_never_runs_a_mutating_tool(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeOpenAI) as server:
        server.queue(Reply(tool_calls=[ToolUse("create_feature_flag", {"key": "x"}, id="call_f")]),
                     Reply(answer={"summary": "could not", "severity": "low"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, TOOLS_SRC.replace("READONLY", "true"))
            result = await finish(handle)
            history = await handle.fetch_history()
            view_events = await handle.query("events", 0)
    assert result.status == "finished"
    assert [t["function"]["name"] for t in server.requests[0].body["tools"]] == ["sum_values"]
    answer = chat_messages(server.requests[1])[-1]
    assert answer["tool_call_id"] == "call_f" and answer["content"].startswith("error:")
    assert not [e for e in events_with(history, "activity_task_scheduled_event_attributes")
                if e.activity_type.name == "iterloop.tool_call"]
    assert any(e["type"] == "tool_denied" and e["data"]["tool"] == "create_feature_flag" for e in
               (ev if isinstance(ev, dict) else ev.model_dump() for ev in view_events))


# -- sessions -------------------------------------------------------------------------------------

SESSIONS_SRC = """
prompt write_user:
  Write a slogan about {{input.topic}}.
prompt review_user:
  Is it good?
prompt alt_user:
  Write another one.
prompt final_user:
  Final answer?
agent writer:
  model: "anthropic/claude-test"
  user: write_user
agent reviewer:
  model: "anthropic/claude-test"
  user: review_user
  session: inherit
agent alternative:
  model: "anthropic/claude-test"
  user: alt_user
  session: fork
agent closer:
  model: "anthropic/claude-test"
  user: final_user
  session: inherit
workflow w:
  entry: writer
  writer -> reviewer
  reviewer -> alternative with { _session_id: "{{outputs.writer._session_id}}" }
  alternative -> closer with { _session_id: "{{outputs.writer._session_id}}" }
  closer -> done
"""


async def test_inherit_continues_and_fork_copies_the_parent_conversation(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeAnthropic) as server:
        server.queue(Reply(text="Checkout in one tap."), Reply(text="Good, but long."), Reply(text="Tap. Paid."),
                     Reply(text="One tap."))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            result = await finish(await start(temporal_env.client, task_queue, SESSIONS_SRC,
                                              inputs={"topic": "checkout"}))
    assert result.status == "finished"
    writer, reviewer, alternative, closer = (dialogue(r.body["messages"]) for r in server.requests)
    assert writer == [("user", "Write a slogan about checkout.")]
    # inherit: the writer's exchange, then the reviewer's own prompt; one session id for both.
    assert reviewer == [*writer, ("assistant", "Checkout in one tap."), ("user", "Is it good?")]
    assert result.outputs["reviewer"]["_session_id"] == result.outputs["writer"]["_session_id"] == "writer#1"
    # fork of session writer#1 as it is now (the reviewer continued it), under a new id.
    assert alternative == [*reviewer, ("assistant", "Good, but long."), ("user", "Write another one.")]
    assert result.outputs["alternative"]["_session_id"] == "alternative#1"
    # The fork left the parent alone: inheriting writer#1 again does not see the forked turn.
    assert closer == [*reviewer, ("assistant", "Good, but long."), ("user", "Final answer?")]


# -- routers and self-answering gates use the same layer ------------------------------------------

ROUTING_SRC = """
schema go:
  approved: bool
  note: string
agent web:
  model: "openai/gpt-test"
agent mobile:
  model: "openai/gpt-test"
agent email:
  model: "openai/gpt-test"
router triage:
  mode: llm
  model: "openai/gpt-test"
  multi: MULTI
human signoff:
  mode: auto_answer
  model: "anthropic/claude-test"
  output: go
workflow routed:
  entry: triage
  triage -> web
  triage -> mobile
  triage -> email
  web -> signoff
  mobile -> signoff
  email -> signoff
  signoff -> done when approved
  signoff -> fail when not approved
"""


async def test_an_llm_router_picks_its_route_through_the_provider(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeOpenAI) as openai_server, fake(FakeAnthropic) as anthropic_server:
        openai_server.queue(Reply(answer={"selected_route": "mobile", "reasoning": "iOS fell"}), Reply(text="fixed"))
        anthropic_server.queue(Reply(answer={"approved": True, "note": "fine"}))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        async with llm_worker(temporal_env.client, task_queue, openai_server, prices_file, tmp_path, monkeypatch):
            result = await finish(await start(temporal_env.client, task_queue, ROUTING_SRC.replace("MULTI", "false")))
    assert result.status == "finished"
    assert set(result.outputs) >= {"triage", "mobile", "signoff"} and "web" not in result.outputs
    route_request = openai_server.requests[0].body
    # The router's answer is constrained to its targets.
    assert json.dumps(route_request["response_format"]).count('"mobile"') >= 1
    assert result.outputs["signoff"]["approved"] is True and result.outputs["signoff"]["note"] == "fine"
    assert result.usage.calls == 3


async def test_a_multi_route_llm_router_fans_out_to_the_routes_it_picks(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeOpenAI) as openai_server, fake(FakeAnthropic) as anthropic_server:
        openai_server.queue(Reply(answer={"selected_routes": ["web", "email"], "reasoning": "both"}))
        openai_server.default = Reply(text="done")
        anthropic_server.queue(Reply(answer={"approved": False, "note": "not yet"}))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        async with llm_worker(temporal_env.client, task_queue, openai_server, prices_file, tmp_path, monkeypatch):
            result = await finish(await start(temporal_env.client, task_queue, ROUTING_SRC.replace("MULTI", "true")))
    # The auto-answering gate said no: the run fails cleanly through its `fail` edge.
    assert result.status == "failed"
    assert {"web", "email"} <= set(result.outputs) and "mobile" not in result.outputs
    assert len(openai_server.requests) == 3 and len(anthropic_server.requests) == 1


# -- ending runs -----------------------------------------------------------------------------------

async def test_cancelling_a_run_during_a_model_call_ends_it_cancelled(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from temporalio.client import WorkflowFailureError

    src = """
agent writer:
  model: "openai/gpt-test"
workflow w:
  entry: writer
  writer -> done
"""
    release = threading.Event()
    with fake(FakeOpenAI) as server:
        server.queue(Reply(text="late", hold=release))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, src)
            await asyncio.to_thread(server.wait_for_requests, 1, 30)
            await handle.cancel()
            release.set()
            with pytest.raises(WorkflowFailureError):
                await finish(handle)
            view = await handle.query("state", result_type=RunView)
    # Not parked as a node failure waiting for a retry that nobody will send.
    assert view.status == "cancelled" and not view.failures


async def test_a_budget_crossed_by_the_final_answer_keeps_that_answer(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FINDING + """
agent analyst:
  model: "anthropic/claude-test"
  output: finding
workflow w:
  entry: analyst
  budget:
    max_tokens: 1000
  analyst -> done
"""
    with fake(FakeAnthropic) as server:
        server.queue(Reply(answer={"summary": "paid for", "severity": "low"}, input_tokens=1500, output_tokens=50))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            result = await finish(await start(temporal_env.client, task_queue, src))
    assert result.status == "budget_exceeded" and "tokens" in result.reason
    assert result.outputs["analyst"]["summary"] == "paid for"


async def test_later_turns_carry_only_what_is_new(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake(FakeOpenAI) as server:
        server.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1]}, id="call_a")]),
                     Reply(answer={"summary": "one", "severity": "low"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            handle = await start(temporal_env.client, task_queue, TOOLS_SRC.replace("READONLY", "false"),
                                 inputs={"note": "x" * 5000})
            assert (await finish(handle)).status == "finished"
            history = await handle.fetch_history()
    turns = [json.loads(e.input.payloads[0].data) for e in events_with(history, "activity_task_scheduled_event_attributes")
             if e.activity_type.name == "iterloop.llm_turn"]
    assert [t["turn"] for t in turns] == [1, 2]
    assert "x" * 5000 in turns[0]["user"] and turns[1]["user"] == "" and turns[1]["input"] == {}
    assert turns[1]["conversation_ref"] and [m["role"] for m in turns[1]["new_messages"]] == ["tool"]


BOUND_SRC = """
vars:
  connector: json = { "name": "mock", "settings": {} }
schema note:
  summary: string
agent analyst:
  model: "openai/gpt-test"
  output: note
  tools: [get_funnel_data]
workflow w:
  entry: analyst
  analyst -> done
"""


async def test_a_tool_reads_the_runs_connector_whatever_the_model_asks(
        temporal_env: Any, task_queue: str, prices_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sneaky = {"funnel": "checkout", "lookback_days": 7,
              "connector": {"name": "mixpanel", "settings": {"api_url": "http://attacker.invalid"}}}
    with fake(FakeOpenAI) as server:
        server.queue(Reply(tool_calls=[ToolUse("get_funnel_data", sneaky, id="call_1")]),
                     Reply(answer={"summary": "read"}), Reply(tool_calls=[ToolUse("get_funnel_data", sneaky, id="c2")]),
                     Reply(answer={"summary": "refused"}))
        async with llm_worker(temporal_env.client, task_queue, server, prices_file, tmp_path, monkeypatch):
            assert (await finish(await start(temporal_env.client, task_queue, BOUND_SRC))).status == "finished"
            without_var = BOUND_SRC.replace('  connector: json = { "name": "mock", "settings": {} }\n', "  unused: int = 1\n")
            assert (await finish(await start(temporal_env.client, task_queue, without_var))).status == "finished"
    offered = server.requests[0].body["tools"][0]["function"]["parameters"]
    assert "connector" not in json.dumps(offered)  # the model is never shown the argument
    read = json.loads(chat_messages(server.requests[1])[-1]["content"])
    assert read["steps"] and read["steps"][0]["users"] > 0  # the mock data, not the host the model named
    refused = chat_messages(server.requests[3])[-1]["content"]
    assert refused.startswith("error:") and "connector" in refused  # no var: refused, not the mock
