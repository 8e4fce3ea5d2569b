"""The Anthropic provider: the real `anthropic` client against a local fake of the Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import ANTHROPIC_ANSWER_TOOL, Drop, Failure, FakeAnthropic, Raw, Reply, ToolUse
from temporalio.exceptions import ApplicationError

from activities.artifacts import LocalArtifactStore
from activities.llm.activity import complete_turn
from activities.llm.anthropic_provider import ANSWER_TOOL
from activities.llm.settings import LLMSettings
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import (
    ERR_BAD_REQUEST,
    ERR_CONTEXT_LENGTH,
    ERR_MODEL_AUTH,
    ERR_MODEL_NOT_FOUND,
    ERR_MODEL_PERMISSION,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_UNAVAILABLE,
    ChatMessage,
    LLMTurnRequest,
    LLMTurnResult,
)

PLAN = Schema(name="plan", fields=[SchemaField(name="hypothesis", type="string"),
                                   SchemaField(name="priority", type="string", enum_values=["high", "low"]),
                                   SchemaField(name="sample_size", type="int")])
GOOD = {"hypothesis": "shorter checkout form", "priority": "high", "sample_size": 12000}
MODEL = "anthropic/claude-sonnet-4-6"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="test-key") as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def settings(fake: FakeAnthropic, **kw: Any) -> LLMSettings:
    return LLMSettings(anthropic_api_key="test-key", anthropic_base_url=fake.base_url, **kw)


def tool_mode(fake: FakeAnthropic) -> LLMSettings:
    """The answer-tool path (older models, `ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT=tool`)."""
    return settings(fake, anthropic_structured_output="tool")


def request(**kw: Any) -> LLMTurnRequest:
    base: dict[str, Any] = {"run_id": "run-a", "node_id": "planner", "node_kind": "agent", "model": MODEL,
                            "system": "You plan experiments.", "user": "Checkout conversion dropped.",
                            "output_schema": PLAN}
    return LLMTurnRequest(**{**base, **kw})


async def turn(fake: FakeAnthropic, store: LocalArtifactStore, *, cfg: LLMSettings | None = None,
               **kw: Any) -> LLMTurnResult:
    return await complete_turn(request(**kw), cfg or settings(fake), store=store)


async def failure(fake: FakeAnthropic, store: LocalArtifactStore, **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await turn(fake, store, **kw)
    return info.value


# -- structured output -------------------------------------------------------------------------

STRICT_PLAN = {
    "type": "object", "additionalProperties": False, "required": ["hypothesis", "priority", "sample_size"],
    "properties": {"hypothesis": {"type": "string"}, "priority": {"type": "string", "enum": ["high", "low"]},
                   "sample_size": {"type": "integer"}}}


async def test_schema_valid_answer_through_native_structured_output(fake: FakeAnthropic,
                                                                   store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store)
    assert result.status == "final" and result.output == GOOD
    sent = fake.last.body
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": STRICT_PLAN}}
    assert "tools" not in sent and "tool_choice" not in sent
    assert "anthropic-beta" not in fake.last.headers  # generally available: no beta header
    assert ANSWER_TOOL not in sent["system"][0]["text"]


async def test_schema_valid_answer_through_the_forced_answer_tool(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store, cfg=tool_mode(fake))
    assert result.status == "final" and result.output == GOOD
    sent = fake.last.body
    assert fake.last.path == "/v1/messages" and sent["model"] == "claude-sonnet-4-6"
    answer_tool = next(t for t in sent["tools"] if t["name"] == ANSWER_TOOL)
    assert answer_tool["input_schema"] == STRICT_PLAN
    assert sent["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL} and "output_config" not in sent
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Checkout conversion dropped.", "cache_control": {"type": "ephemeral"}}]}]


def test_the_fakes_answer_tool_is_the_providers() -> None:
    assert ANSWER_TOOL == ANTHROPIC_ANSWER_TOOL


async def test_enum_violation_is_invalid_with_field_expected_and_found(fake: FakeAnthropic,
                                                                       store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer={**GOOD, "priority": "urgent"}))
    result = await turn(fake, store)
    assert result.status == "invalid" and result.output == {}
    assert result.invalid_reason == ("field 'priority' expected a string (one of 'high', 'low'), "
                                     "found string 'urgent' (not in the enum)")
    assert '"urgent"' in result.text


async def test_type_violation_is_invalid(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer={**GOOD, "sample_size": "12k"}))
    result = await turn(fake, store)
    assert result.status == "invalid"
    assert result.invalid_reason == "field 'sample_size' expected an int, found string '12k'"


async def test_text_answer_under_extended_thinking_is_parsed_and_bad_json_is_invalid(
        fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(text='{"hypothesis": "x", "priority": "high", '))
    result = await turn(fake, store, reasoning_effort="low", cfg=tool_mode(fake))
    assert result.status == "invalid" and result.invalid_reason.startswith("the reply is not valid JSON (")
    assert result.text == '{"hypothesis": "x", "priority": "high", '
    assert fake.last.body["tool_choice"] == {"type": "auto"}  # thinking forbids forcing a tool


async def test_repair_after_a_forced_answer_answers_the_tool_use_then_asks(fake: FakeAnthropic,
                                                                           store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer={**GOOD, "priority": "urgent"}), Reply(answer=GOOD))
    first = await turn(fake, store, cfg=tool_mode(fake))
    repair = ChatMessage(role="user", text=f"Fix it: {first.invalid_reason}")
    second = await turn(fake, store, turn=2, conversation_ref=first.conversation_ref, new_messages=[repair],
                        cfg=tool_mode(fake))
    assert second.status == "final" and second.output == GOOD
    messages = fake.last.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    use = messages[1]["content"][0]
    assert use["type"] == "tool_use" and use["name"] == ANSWER_TOOL
    result_block, text_block = messages[2]["content"]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == use["id"]
    assert text_block["text"].startswith("Fix it: field 'priority'")


async def test_schemaless_node_gets_the_text(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(text="Mobile checkout lost 12%."))
    result = await turn(fake, store, output_schema=None)
    assert result.status == "final" and result.output == {"text": "Mobile checkout lost 12%."}
    assert "tools" not in fake.last.body and "tool_choice" not in fake.last.body


async def test_router_answers_with_a_candidate(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer={"selected_route": "ship", "reasoning": "metrics improved"}))
    result = await turn(fake, store, node_id="decide", node_kind="router", purpose="route", output_schema=None,
                        route_candidates=["ship", "iterate"])
    assert result.output == {"selected_route": "ship", "reasoning": "metrics improved"}
    schema = fake.last.body["output_config"]["format"]["schema"]
    assert schema["properties"]["selected_route"] == {"type": "string", "enum": ["ship", "iterate"]}
    assert "ship, iterate" in fake.last.body["system"][0]["text"]


# -- tools -------------------------------------------------------------------------------------

async def test_tool_use_turn_returns_registry_names_and_arguments(fake: FakeAnthropic,
                                                                  store: LocalArtifactStore) -> None:
    fake.queue(Reply(text="Let me add these.", tool_calls=[ToolUse("sum_values", {"values": [1, 2.5]}, id="toolu_a")]))
    result = await turn(fake, store, tools=["sum_values", "echo"])
    assert result.status == "tool_calls" and result.output == {}
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("toolu_a", "sum_values", {"values": [1, 2.5]})]
    assert [t.name for t in result.tools] == ["sum_values", "echo"]
    sent = fake.last.body
    assert [t["name"] for t in sent["tools"]] == ["sum_values", "echo"]  # the answer comes as the response format
    assert sent["tools"][0]["input_schema"]["properties"]["values"]["type"] == "array"
    assert sent["tool_choice"] == {"type": "auto"} and sent["output_config"]["format"]["schema"] == STRICT_PLAN


async def test_tool_mode_offers_the_answer_tool_after_the_nodes_tools(fake: FakeAnthropic,
                                                                      store: LocalArtifactStore) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1]})]))
    await turn(fake, store, tools=["sum_values", "echo"], cfg=tool_mode(fake))
    sent = fake.last.body
    assert [t["name"] for t in sent["tools"]] == ["sum_values", "echo", ANSWER_TOOL]
    assert sent["tool_choice"] == {"type": "any"} and "output_config" not in sent


async def test_tool_results_go_back_paired_with_their_tool_use(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]}, id="toolu_a"),
                                 ToolUse("echo", {"x": 1}, id="toolu_b")]),
               Reply(answer=GOOD))
    first = await turn(fake, store, tools=["sum_values", "echo"])
    results = [ChatMessage(role="tool", tool_call_id="toolu_a", tool_name="sum_values", result={"total": 3.0, "count": 2}),
               ChatMessage(role="tool", tool_call_id="toolu_b", tool_name="echo", text="error: tool failed", is_error=True)]
    second = await turn(fake, store, tools=["sum_values", "echo"], turn=2, conversation_ref=first.conversation_ref,
                        new_messages=results)
    assert second.status == "final"
    messages = fake.last.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[1]["content"]] == ["tool_use", "tool_use"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": '{"count": 2, "total": 3.0}', "is_error": False},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "error: tool failed", "is_error": True,
         "cache_control": {"type": "ephemeral"}}]


async def test_spent_tool_budget_offers_no_tool_and_forces_the_answer(fake: FakeAnthropic,
                                                                      store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    result = await turn(fake, store, tools=["sum_values"], allow_tools=False)
    assert result.status == "final" and result.output == GOOD and result.tools == []
    assert fake.last.body["tool_choice"] == {"type": "none"}  # declared (cache prefix), not callable
    assert fake.last.body["output_config"]["format"]["schema"] == STRICT_PLAN
    legacy = await turn(fake, store, tools=["sum_values"], allow_tools=False, cfg=tool_mode(fake))
    assert legacy.status == "final" and legacy.output == GOOD
    assert fake.last.body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}


async def test_tool_call_after_the_budget_is_spent_is_invalid(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1]})]))
    result = await turn(fake, store, tools=["sum_values"], allow_tools=False, output_schema=None)
    assert result.status == "invalid" and "tool_max_steps" in result.invalid_reason
    assert fake.last.body["tool_choice"] == {"type": "none"}


async def test_policy_and_readonly_filter_the_offered_tools(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    by_policy = await turn(fake, store, tools=["sum_values", "echo"], tool_policy=["echo"])
    assert [t.name for t in by_policy.tools] == ["echo"]
    assert [t["name"] for t in fake.last.body["tools"]] == ["echo"]
    readonly = await turn(fake, store, tools=["get_funnel_data", "create_feature_flag"], readonly=True)
    assert [t.name for t in readonly.tools] == ["get_funnel_data"]
    assert "create_feature_flag" not in [t["name"] for t in fake.last.body["tools"]]


async def test_unknown_tool_is_a_bad_request_naming_node_and_tool(fake: FakeAnthropic,
                                                                  store: LocalArtifactStore) -> None:
    err = await failure(fake, store, tools=["sum_values", "launch_rocket"])
    assert err.type == ERR_BAD_REQUEST and err.non_retryable
    assert "node 'planner'" in err.message and "'launch_rocket'" in err.message
    assert fake.requests == []


# -- conversation, thinking, caching -------------------------------------------------------------

async def test_thinking_budget_and_signed_blocks_are_replayed_verbatim(fake: FakeAnthropic,
                                                                       store: LocalArtifactStore) -> None:
    fake.queue(Reply(thinking="The funnel tool will tell.", tool_calls=[ToolUse("sum_values", {"values": [1]})],
                     reasoning_tokens=40, output_tokens=60),
               Reply(answer=GOOD))
    model = "anthropic/claude-haiku-4-5"
    first = await turn(fake, store, model=model, tools=["sum_values"], reasoning_effort="high")
    assert fake.last.body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert fake.last.body["max_tokens"] == 8192 + 16384
    assert first.usage.reasoning_tokens == 40 and first.usage.output_tokens == 60
    result = ChatMessage(role="tool", tool_call_id=first.tool_calls[0].id, tool_name="sum_values", result={"total": 1})
    await turn(fake, store, model=model, tools=["sum_values"], reasoning_effort="high", turn=2,
               conversation_ref=first.conversation_ref, new_messages=[result])
    thinking = fake.last.body["messages"][1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "The funnel tool will tell."
    assert thinking["signature"].startswith("sig-")


@pytest.mark.parametrize(("effort", "expected"), [("low", "low"), ("medium", "medium"), ("high", "high"),
                                                  ("extra_high", "max"),
                                                  # Iterion's spelling, and its form read on the worker
                                                  ("xhigh", "max"), ("${ITERLOOP_TEST_UNSET_EFFORT:-medium}", "medium")])
async def test_claude_4_6_gets_adaptive_thinking_with_the_effort(fake: FakeAnthropic, store: LocalArtifactStore,
                                                                 effort: str, expected: str) -> None:
    fake.queue(Reply(answer=GOOD))
    await turn(fake, store, reasoning_effort=effort)
    assert fake.last.body["thinking"] == {"type": "adaptive"}
    assert fake.last.body["output_config"] == {"effort": expected,
                                               "format": {"type": "json_schema", "schema": STRICT_PLAN}}


async def test_the_effort_is_the_one_the_workflow_chose(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    # The workflow applies an input's `_reasoning_effort` to `reasoning_effort` and strips the key;
    # the activity reads only the field, so a stray input key cannot change the effort.
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    await turn(fake, store, model="claude-haiku-4-5", reasoning_effort="low")
    assert fake.last.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    await turn(fake, store, model="claude-haiku-4-5", input={"_reasoning_effort": "high"})
    assert "thinking" not in fake.last.body


async def test_second_turn_sends_the_whole_stored_conversation(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("echo", {"a": 1}, id="toolu_1")]), Reply(answer=GOOD))
    first = await turn(fake, store, tools=["echo"])
    stored = store.get(first.conversation_ref).decode()
    assert '"role":"user"' in stored and "toolu_1" in stored and first.conversation_ref.startswith("artifact://run-a/planner/")
    res = ChatMessage(role="tool", tool_call_id="toolu_1", tool_name="echo", result={"a": 1})
    second = await turn(fake, store, tools=["echo"], turn=2, conversation_ref=first.conversation_ref, new_messages=[res])
    assert len(fake.requests[1].body["messages"]) == 3
    assert fake.requests[1].body["messages"][0]["content"][0]["text"] == "Checkout conversion dropped."
    assert second.conversation_ref != first.conversation_ref


async def test_inherited_session_appends_the_user_prompt_after_its_messages(fake: FakeAnthropic,
                                                                            store: LocalArtifactStore) -> None:
    fake.queue(*[Reply(answer=GOOD)] * 4)
    first = await turn(fake, store)
    await turn(fake, store, node_id="critic", user="Critique the plan.", conversation_ref=first.conversation_ref)
    messages = fake.last.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "text", "text": '{"hypothesis": "shorter checkout form", '
                                                               '"priority": "high", "sample_size": 12000}'}]
    assert messages[2]["content"][-1]["text"] == "Critique the plan."
    # A conversation begun with the answer tool (an older worker, an older model) keeps it declared.
    legacy = await turn(fake, store, cfg=tool_mode(fake))
    second = await turn(fake, store, node_id="critic", user="Critique the plan.", conversation_ref=legacy.conversation_ref)
    assert second.status == "final" and second.output == GOOD
    sent = fake.last.body
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"  # the earlier answer tool call is answered
    assert [t["name"] for t in sent["tools"]] == [ANSWER_TOOL] and sent["tool_choice"] == {"type": "none"}
    assert sent["output_config"]["format"]["schema"] == STRICT_PLAN


async def test_prompt_caching_marks_tools_system_and_the_conversation_end(fake: FakeAnthropic,
                                                                          store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    await turn(fake, store, tools=["echo", "sum_values"])
    sent = fake.last.body
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in sent["tools"][0]
    await turn(fake, store, tools=["echo"], cfg=settings(fake, prompt_caching=False))
    assert "cache_control" not in str(fake.last.body)


# -- usage and cost ------------------------------------------------------------------------------

async def test_usage_counts_every_prompt_token_and_prices_cached_ones_as_cached(fake: FakeAnthropic,
                                                                                store: LocalArtifactStore) -> None:
    # Anthropic reports uncached, cache-read and cache-write prompt tokens separately.
    fake.queue(Raw(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
                         "content": [{"type": "tool_use", "id": "toolu_1", "name": ANSWER_TOOL, "input": GOOD}],
                         "stop_reason": "tool_use", "stop_sequence": None,
                         "usage": {"input_tokens": 1_000, "cache_read_input_tokens": 6_000,
                                   "cache_creation_input_tokens": 3_000, "output_tokens": 500}}))
    usage = (await turn(fake, store)).usage
    assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        10_000, 6_000, 3_000, 500)
    # claude-sonnet-4-6 in the shipped table: $3 input, $0.30 cache read, $3.75 cache write, $15 output per MTok
    expected = (Decimal(1_000) * 3 + Decimal(6_000) * Decimal("0.3") + Decimal(3_000) * Decimal("3.75")
                + Decimal(500) * 15) / 1_000_000
    assert usage.cost_usd == float(expected)
    assert usage.cache_savings_usd == float(Decimal(6_000) * (3 - Decimal("0.3")) / 1_000_000)
    assert usage.calls == 1 and usage.provider == "anthropic" and usage.model == MODEL


async def test_price_file_overrides_the_shipped_table(fake: FakeAnthropic, store: LocalArtifactStore,
                                                      tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  claude-sonnet-4-6: {input: 2, output: 10, cached_input: 0.5}\n", encoding="utf-8")
    fake.queue(Reply(answer=GOOD, input_tokens=1_000, cached_tokens=400, output_tokens=100))
    usage = (await turn(fake, store, cfg=settings(fake, prices_file=prices))).usage
    assert usage.cost_usd == float((Decimal(600) * 2 + Decimal(400) * Decimal("0.5") + Decimal(100) * 10) / 1_000_000)
    assert usage.cache_savings_usd == float(Decimal(400) * Decimal("1.5") / 1_000_000)


# -- errors --------------------------------------------------------------------------------------

async def test_rate_limit_is_retryable_after_the_servers_retry_after(fake: FakeAnthropic,
                                                                     store: LocalArtifactStore) -> None:
    fake.queue(Failure.rate_limited(retry_after=7))
    err = await failure(fake, store)
    assert err.type == ERR_MODEL_RATE_LIMITED and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)
    assert "429" in err.message and "node 'planner'" in err.message


async def test_overload_is_retryable(fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    fake.queue(Failure.overloaded(retry_after=3))
    err = await failure(fake, store)
    assert err.type == ERR_MODEL_UNAVAILABLE and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=3) and "529" in err.message


async def test_server_error_and_dropped_connection_are_retryable(fake: FakeAnthropic,
                                                                 store: LocalArtifactStore) -> None:
    fake.queue(Failure.server_error(500), Drop())
    for _ in range(2):
        err = await failure(fake, store)
        assert err.type == ERR_MODEL_UNAVAILABLE and not err.non_retryable and err.next_retry_delay is None


async def test_wrong_key_is_a_non_retryable_auth_failure_naming_the_variable(fake: FakeAnthropic,
                                                                             store: LocalArtifactStore) -> None:
    with pytest.raises(ApplicationError) as info:
        await complete_turn(request(), LLMSettings(anthropic_api_key="wrong", anthropic_base_url=fake.base_url),
                            store=store)
    err = info.value
    assert err.type == ERR_MODEL_AUTH and err.non_retryable
    assert "ANTHROPIC_API_KEY" in err.message and "401" in err.message


@pytest.mark.parametrize(("failure_", "kind"), [(Failure.forbidden(), ERR_MODEL_PERMISSION),
                                                (Failure.not_found("claude-sonnet-9"), ERR_MODEL_NOT_FOUND),
                                                (Failure.bad_request("max_tokens: must be positive"), ERR_BAD_REQUEST)])
async def test_permanent_failures_are_non_retryable_with_the_providers_message(
        fake: FakeAnthropic, store: LocalArtifactStore, failure_: Failure, kind: str) -> None:
    fake.queue(failure_)
    err = await failure(fake, store)
    assert err.type == kind and err.non_retryable
    assert failure_.message in err.message


async def test_context_length_names_the_node_and_the_prompt_size(fake: FakeAnthropic,
                                                                 store: LocalArtifactStore) -> None:
    fake.queue(Failure.context_length(tokens=210_000, limit=200_000))
    err = await failure(fake, store, user="x" * 5_000)
    assert err.type == ERR_CONTEXT_LENGTH and err.non_retryable
    assert "node 'planner'" in err.message and "210000 tokens > 200000 maximum" in err.message
    assert "5,021 characters" in err.message  # system (21) + user (5,000)


def test_every_tool_use_gets_exactly_one_result_whoever_answers_it() -> None:
    from activities.llm.anthropic_provider import ANSWER_RECEIVED, wire_messages
    from activities.llm.conversation import MISSING_RESULT_TEXT, paired

    answered = ChatMessage(role="assistant", provider="anthropic", text="{}", native=[  # calls were dropped: answer given
        {"type": "tool_use", "id": "toolu_ans", "name": ANSWER_TOOL, "input": {}},
        {"type": "tool_use", "id": "toolu_side", "name": "echo", "input": {}}])
    looping = ChatMessage(role="assistant", provider="anthropic", tool_calls=[{"id": "toolu_run", "name": "echo"}],
                          native=[{"type": "tool_use", "id": "toolu_run", "name": "echo", "input": {}}])
    messages = [ChatMessage(role="user", text="go"), answered, ChatMessage(role="user", text="fix it"), looping,
                ChatMessage(role="user", text="answer now")]  # toolu_run's result never came

    turns = wire_messages(paired(messages))

    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant", "user"]
    after_answer, after_loop = turns[2]["content"], turns[4]["content"]
    assert [(b.get("tool_use_id"), b.get("content")) for b in after_answer[:2]] == [
        ("toolu_ans", ANSWER_RECEIVED), ("toolu_side", MISSING_RESULT_TEXT)]
    assert after_answer[2]["text"] == "fix it"
    assert [b.get("tool_use_id") for b in after_loop if b["type"] == "tool_result"] == ["toolu_run"]
    assert after_loop[0]["content"] == MISSING_RESULT_TEXT and after_loop[-1]["text"] == "answer now"


async def test_a_nodes_max_tokens_bounds_the_answer_below_the_workers_setting(fake: FakeAnthropic,
                                                                              store: LocalArtifactStore) -> None:
    """`max_tokens: 300` on an agent (Iterion's property) is the request's limit; without it the
    worker's ITERLOOP_LLM_MAX_OUTPUT_TOKENS is."""
    for limit, sent in ((300, 300), (None, 8192)):
        fake.queue(Reply(text="done"))
        await turn(fake, store, output_schema=None, max_output_tokens=limit, cfg=settings(fake, max_output_tokens=8192))
        assert fake.last.body["max_tokens"] == sent
