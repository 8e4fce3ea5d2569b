"""The OpenAI provider: the real `openai` client against a local fake of Chat Completions and Responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import Drop, Failure, FakeOpenAI, Raw, Reply, ToolUse
from temporalio.exceptions import ApplicationError

from activities.artifacts import LocalArtifactStore
from activities.http_retry import MAX_RETRY_AFTER
from activities.llm.activity import complete_turn
from activities.llm.settings import LLMSettings
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import (
    ERR_BAD_REQUEST,
    ERR_CONTEXT_LENGTH,
    ERR_MODEL_AUTH,
    ERR_MODEL_NOT_FOUND,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_UNAVAILABLE,
    ChatMessage,
    LLMTurnRequest,
    LLMTurnResult,
)

PLAN = Schema(name="plan", fields=[SchemaField(name="hypothesis", type="string"),
                                   SchemaField(name="priority", type="string", enum_values=["high", "low"]),
                                   SchemaField(name="metrics", type="string[]")])
GOOD = {"hypothesis": "trust badges", "priority": "low", "metrics": ["conversion"]}

CHAT = "openai/gpt-4.1"
RESPONSES = "openai-responses/gpt-4.1"
PATHS = {CHAT: "/v1/chat/completions", RESPONSES: "/v1/responses"}
BOTH = pytest.mark.parametrize("model", [CHAT, RESPONSES], ids=["chat", "responses"])


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="test-key") as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def settings(fake: FakeOpenAI, **kw: Any) -> LLMSettings:
    return LLMSettings(openai_api_key="test-key", openai_base_url=fake.base_url, **kw)


def request(**kw: Any) -> LLMTurnRequest:
    base: dict[str, Any] = {"run_id": "run-o", "node_id": "planner", "node_kind": "agent", "model": CHAT,
                            "system": "You plan experiments.", "user": "Checkout conversion dropped.",
                            "output_schema": PLAN}
    return LLMTurnRequest(**{**base, **kw})


async def turn(fake: FakeOpenAI, store: LocalArtifactStore, *, cfg: LLMSettings | None = None,
               **kw: Any) -> LLMTurnResult:
    return await complete_turn(request(**kw), cfg or settings(fake), store=store)


async def failure(fake: FakeOpenAI, store: LocalArtifactStore, **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await turn(fake, store, **kw)
    return info.value


def json_schema_format(body: dict[str, Any], model: str) -> dict[str, Any]:
    if model == CHAT:
        assert body["response_format"]["type"] == "json_schema"
        return body["response_format"]["json_schema"]
    assert body["text"]["format"]["type"] == "json_schema"
    return body["text"]["format"]


# -- structured output -------------------------------------------------------------------------

@BOTH
async def test_schema_valid_answer_with_a_strict_json_schema(fake: FakeOpenAI, store: LocalArtifactStore,
                                                             model: str) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store, model=model)
    assert result.status == "final" and result.output == GOOD
    assert fake.last.path == PATHS[model] and fake.last.body["model"] == "gpt-4.1"
    fmt = json_schema_format(fake.last.body, model)
    assert fmt["name"] == "plan" and fmt["strict"] is True
    assert fmt["schema"] == {
        "type": "object", "additionalProperties": False, "required": ["hypothesis", "priority", "metrics"],
        "properties": {"hypothesis": {"type": "string"}, "priority": {"type": "string", "enum": ["high", "low"]},
                       "metrics": {"type": "array", "items": {"type": "string"}}}}


async def test_a_json_field_makes_the_schema_non_strict(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    schema = Schema(name="report", fields=[SchemaField(name="details", type="json")])
    fake.queue(Reply(answer={"details": [1, {"a": None}]}))
    result = await turn(fake, store, output_schema=schema)
    assert result.output == {"details": [1, {"a": None}]}
    assert fake.last.body["response_format"]["json_schema"]["strict"] is False


@BOTH
async def test_invalid_json_is_an_invalid_turn_quoting_the_reply(fake: FakeOpenAI, store: LocalArtifactStore,
                                                                 model: str) -> None:
    fake.queue(Reply(text="Sure! Here is the plan: hypothesis = trust badges"))
    result = await turn(fake, store, model=model)
    assert result.status == "invalid" and result.output == {}
    assert result.invalid_reason == "the reply is not valid JSON (Expecting value at line 1 column 1)"
    assert result.text == "Sure! Here is the plan: hypothesis = trust badges"


async def test_fenced_json_is_accepted(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(text="```json\n" + json.dumps(GOOD) + "\n```"))
    assert (await turn(fake, store)).output == GOOD


@pytest.mark.parametrize(("change", "reason"), [
    ({"priority": "medium"}, "field 'priority' expected a string (one of 'high', 'low'), found string 'medium' (not in the enum)"),
    ({"metrics": "conversion"}, "field 'metrics' expected a list of strings, found string 'conversion'"),
    ({"hypothesis": None}, "field 'hypothesis' expected a string, found null"),
])
async def test_schema_violation_is_invalid_with_field_expected_and_found(fake: FakeOpenAI, store: LocalArtifactStore,
                                                                         change: dict[str, Any], reason: str) -> None:
    fake.queue(Reply(answer={**GOOD, **change}))
    result = await turn(fake, store)
    assert result.status == "invalid" and result.invalid_reason == reason


async def test_missing_field_is_invalid(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(text='{"hypothesis": "x", "priority": "high"}'))
    result = await turn(fake, store)
    assert result.invalid_reason == "field 'metrics' expected a list of strings, found nothing (the key is missing)"


async def test_truncated_answer_says_it_was_cut_off(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(text='{"hypothesis": "trust', stop="length"))
    result = await turn(fake, store)
    assert result.status == "invalid" and "cut off at the output token limit" in result.invalid_reason


async def test_refusal_is_invalid(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}}]}
    fake.queue(Raw(200, body))
    result = await turn(fake, store)
    assert result.status == "invalid" and result.invalid_reason == "the model refused to answer: I can't help with that."


async def test_multi_router_answers_with_candidates(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer={"selected_routes": [], "reasoning": "none fit"}),
               Reply(answer={"selected_routes": ["web", "email"], "reasoning": "both channels"}))
    kw: dict[str, Any] = {"node_id": "fanout", "node_kind": "router", "purpose": "route", "output_schema": None,
                          "route_candidates": ["web", "email", "push"], "multi_route": True}
    empty = await turn(fake, store, **kw)
    assert empty.status == "invalid" and "select at least one" in empty.invalid_reason
    result = await turn(fake, store, **kw)
    assert result.output == {"selected_routes": ["web", "email"], "reasoning": "both channels"}
    schema = fake.last.body["response_format"]["json_schema"]
    assert schema["name"] == "fanout_route_selection"
    assert schema["schema"]["properties"]["selected_routes"]["items"]["enum"] == ["web", "email", "push"]


# -- tools -------------------------------------------------------------------------------------

@BOTH
async def test_tool_call_turn_then_results_sent_back(fake: FakeOpenAI, store: LocalArtifactStore, model: str) -> None:
    fake.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [2, 3]}, id="call_1")]), Reply(answer=GOOD))
    first = await turn(fake, store, model=model, tools=["sum_values", "echo"])
    assert first.status == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("call_1", "sum_values", {"values": [2, 3]})]
    assert [t.name for t in first.tools] == ["sum_values", "echo"]
    assert fake.last.body["tool_choice"] == "auto"
    result = ChatMessage(role="tool", tool_call_id="call_1", tool_name="sum_values", result={"total": 5.0, "count": 2})
    second = await turn(fake, store, model=model, tools=["sum_values", "echo"], turn=2,
                        conversation_ref=first.conversation_ref, new_messages=[result])
    assert second.status == "final" and second.output == GOOD
    sent = fake.last.body
    if model == CHAT:
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
        assert sent["messages"][2]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
            "name": "sum_values", "arguments": '{"values": [2, 3]}'}}]
        assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"count": 2, "total": 5.0}'}
        assert sent["tools"][0]["function"]["name"] == "sum_values"
    else:
        assert sent["instructions"].startswith("You plan experiments.") and sent["store"] is False
        assert sent["input"][1:] == [
            {"type": "function_call", "call_id": "call_1", "name": "sum_values", "arguments": '{"values": [2, 3]}'},
            {"type": "function_call_output", "call_id": "call_1", "output": '{"count": 2, "total": 5.0}'}]
        assert sent["tools"][0]["name"] == "sum_values"


async def test_malformed_tool_arguments_are_invalid(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                         "tool_calls": [{"id": "call_x", "type": "function",
                                         "function": {"name": "echo", "arguments": "{not json"}}]}}]}
    fake.queue(Raw(200, body))
    result = await turn(fake, store, tools=["echo"])
    assert result.status == "invalid" and "tool 'echo' are not valid JSON" in result.invalid_reason


async def test_spent_tool_budget_declares_tools_with_calls_off(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store, tools=["sum_values"], allow_tools=False)
    assert result.status == "final" and result.tools == []
    assert fake.last.body["tool_choice"] == "none" and len(fake.last.body["tools"]) == 1


async def test_readonly_node_is_not_offered_mutating_tools(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store, tools=["get_funnel_data", "create_feature_flag"], readonly=True,
                        tool_policy=["*"])
    assert [t.name for t in result.tools] == ["get_funnel_data"]
    assert [t["function"]["name"] for t in fake.last.body["tools"]] == ["get_funnel_data"]


async def test_namespace_policy_filters_offered_tools(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    result = await turn(fake, store, tools=["sum_values", "echo"], tool_policy=["mcp.github.*", "sum_values"])
    assert [t.name for t in result.tools] == ["sum_values"]


# -- reasoning, caching --------------------------------------------------------------------------

@pytest.mark.parametrize(("effort", "expected"), [("low", "low"), ("medium", "medium"), ("high", "high"),
                                                  ("extra_high", "xhigh")])
async def test_reasoning_effort_maps_for_reasoning_models(fake: FakeOpenAI, store: LocalArtifactStore,
                                                          effort: str, expected: str) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    await turn(fake, store, model="o3", reasoning_effort=effort)
    assert fake.last.body["reasoning_effort"] == expected
    assert fake.last.body["messages"][0]["role"] == "developer"
    await turn(fake, store, model=RESPONSES.replace("gpt-4.1", "gpt-5"), reasoning_effort=effort)
    assert fake.last.body["reasoning"] == {"effort": expected}


async def test_reasoning_effort_is_left_out_for_other_models(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    await turn(fake, store, reasoning_effort="high")
    assert "reasoning_effort" not in fake.last.body and fake.last.body["messages"][0]["role"] == "system"


async def test_prompt_cache_key_is_stable_for_a_node(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    await turn(fake, store, tools=["echo"])
    await turn(fake, store, tools=["echo"], user="Another question")
    keys = [r.body["prompt_cache_key"] for r in fake.requests]
    assert keys[0] == keys[1] and keys[0].startswith("iterloop:") and len(keys[0]) <= 64


async def test_responses_api_chosen_by_setting(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Reply(answer=GOOD))
    await turn(fake, store, cfg=settings(fake, openai_api="responses"))
    assert fake.last.path == "/v1/responses"


# -- usage and cost ------------------------------------------------------------------------------

@BOTH
async def test_usage_and_cost_with_cached_and_reasoning_tokens(fake: FakeOpenAI, store: LocalArtifactStore,
                                                               model: str) -> None:
    fake.queue(Reply(answer=GOOD, input_tokens=20_000, cached_tokens=16_000, output_tokens=1_000, reasoning_tokens=300))
    usage = (await turn(fake, store, model=model)).usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        20_000, 16_000, 1_000, 300)
    # gpt-4.1 in the shipped table: $2 input, $0.50 cached input, $8 output per MTok
    assert usage.cost_usd == float((Decimal(4_000) * 2 + Decimal(16_000) * Decimal("0.5") + Decimal(1_000) * 8)
                                   / 1_000_000)
    assert usage.cache_savings_usd == float(Decimal(16_000) * Decimal("1.5") / 1_000_000)
    assert usage.provider == "openai" and usage.model == model


async def test_unknown_model_costs_nothing_and_warns_once(fake: FakeOpenAI, store: LocalArtifactStore,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    fake.queue(Reply(answer=GOOD), Reply(answer=GOOD))
    for _ in range(2):
        usage = (await turn(fake, store, model="openai/local-llama-unpriced")).usage
        assert usage.cost_usd == 0.0 and usage.input_tokens == 20
    warnings = [r for r in caplog.records if "local-llama-unpriced" in r.getMessage()]
    assert len(warnings) == 1 and "ITERLOOP_PRICES_FILE" in warnings[0].getMessage()


async def test_json_price_file_prices_a_compatible_servers_model(fake: FakeOpenAI, store: LocalArtifactStore,
                                                                 tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"openai/local-llama": {"input": 0.1, "output": 0.2}}}), encoding="utf-8")
    fake.queue(Reply(answer=GOOD, input_tokens=1_000_000, output_tokens=500_000, cached_tokens=100_000))
    usage = (await turn(fake, store, model="openai/local-llama", cfg=settings(fake, prices_file=prices))).usage
    assert usage.cost_usd == pytest.approx(0.1 + 0.1) and usage.cache_savings_usd == 0.0


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("failure_", "seconds"), [(Failure.rate_limited(retry_after=7), 7.0),
                                                   (Failure.rate_limited(retry_after_ms=1500), 1.5)])
async def test_rate_limit_is_retryable_after_the_servers_delay(fake: FakeOpenAI, store: LocalArtifactStore,
                                                               failure_: Failure, seconds: float) -> None:
    fake.queue(failure_)
    err = await failure(fake, store)
    assert err.type == ERR_MODEL_RATE_LIMITED and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=seconds)


@pytest.mark.parametrize(("headers", "delay"), [({"retry-after-ms": "1e20"}, MAX_RETRY_AFTER),
                                                ({"retry-after": "inf"}, None), ({"retry-after-ms": "nan"}, None)])
async def test_an_absurd_retry_after_is_capped_or_ignored(fake: FakeOpenAI, store: LocalArtifactStore,
                                                          headers: dict[str, str], delay: timedelta | None) -> None:
    fake.queue(Failure(429, "Rate limit reached for requests", code="rate_limit_exceeded", headers=headers))
    err = await failure(fake, store)
    assert err.type == ERR_MODEL_RATE_LIMITED and err.next_retry_delay == delay


async def test_5xx_and_network_errors_are_retryable(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Failure.server_error(503), Drop())
    for _ in range(2):
        err = await failure(fake, store)
        assert err.type == ERR_MODEL_UNAVAILABLE and not err.non_retryable


async def test_401_is_a_non_retryable_auth_failure_naming_the_variable(fake: FakeOpenAI,
                                                                       store: LocalArtifactStore) -> None:
    with pytest.raises(ApplicationError) as info:
        await complete_turn(request(), LLMSettings(openai_api_key="wrong", openai_base_url=fake.base_url), store=store)
    assert info.value.type == ERR_MODEL_AUTH and info.value.non_retryable
    assert "OPENAI_API_KEY" in info.value.message and fake.base_url in info.value.message


async def test_unknown_model_404_is_non_retryable(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Failure.not_found("gpt-9"))
    err = await failure(fake, store, model="openai/gpt-9")
    assert err.type == ERR_MODEL_NOT_FOUND and err.non_retryable and "'gpt-9'" in err.message


async def test_invalid_request_quotes_the_providers_message(fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    fake.queue(Failure.bad_request("Invalid schema for response_format 'plan'"))
    err = await failure(fake, store)
    assert err.type == ERR_BAD_REQUEST and err.non_retryable
    assert "Invalid schema for response_format 'plan'" in err.message


@BOTH
async def test_context_length_names_the_node_and_the_size(fake: FakeOpenAI, store: LocalArtifactStore,
                                                          model: str) -> None:
    fake.queue(Failure.context_length(tokens=130_000, limit=128_000))
    err = await failure(fake, store, model=model)
    assert err.type == ERR_CONTEXT_LENGTH and err.non_retryable
    assert "node 'planner'" in err.message and "128000 tokens" in err.message and "characters" in err.message


async def test_compatible_server_without_a_key_gets_a_placeholder(store: LocalArtifactStore) -> None:
    with FakeOpenAI() as server:
        server.queue(Reply(answer=GOOD))
        result = await complete_turn(request(model="openai/llama-3.1-8b"),
                                     LLMSettings(openai_base_url=server.base_url), store=store)
        assert result.status == "final" and server.last.header("authorization") == "Bearer unused"
