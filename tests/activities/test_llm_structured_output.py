"""Native structured output: the real `anthropic` and `openai` clients against fakes that honour
only the providers' native structured-output parameters (`native_only=True`: without them a
structured answer comes back as prose), so a passing turn proves the request carried them as the
APIs document. Also the strict-schema conversion both providers' formats need."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import (
    ANTHROPIC_STRUCTURED_OUTPUTS_BETA,
    FakeAnthropic,
    FakeOpenAI,
    Reply,
    ToolUse,
    strict_schema_problem,
)

from activities.artifacts import LocalArtifactStore
from activities.llm.activity import complete_turn
from activities.llm.anthropic_provider import ANSWER_TOOL, native_output_supported
from activities.llm.settings import LLMSettings, LLMSettingsError
from activities.llm.structured_output import answer_spec, strict_json_schema
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import ChatMessage, LLMTurnRequest, LLMTurnResult

PLAN = Schema(name="plan", fields=[SchemaField(name="hypothesis", type="string"),
                                   SchemaField(name="priority", type="string", enum_values=["high", "low"]),
                                   SchemaField(name="sample_size", type="int"),
                                   SchemaField(name="segments", type="string[]", enum_values=["ios", "web"])])
GOOD = {"hypothesis": "shorter checkout form", "priority": "high", "sample_size": 12000, "segments": ["ios"]}


@pytest.fixture
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="test-key", native_only=True) as server:
        yield server


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="test-key", native_only=True) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def request(**kw: Any) -> LLMTurnRequest:
    base: dict[str, Any] = {"run_id": "run-s", "node_id": "planner", "node_kind": "agent",
                            "model": "anthropic/claude-sonnet-4-6", "system": "You plan experiments.",
                            "user": "Checkout conversion dropped.", "output_schema": PLAN,
                            "tools": ["sum_values", "echo"], "keep_conversation": True}
    return LLMTurnRequest(**{**base, **kw})


async def tool_loop(server: FakeAnthropic | FakeOpenAI, cfg: LLMSettings, store: LocalArtifactStore,
                    **kw: Any) -> list[LLMTurnResult]:
    """Turns of one node visit as the workflow runs them: tool calls get results, an invalid
    answer gets a repair request, until a final answer (at most 5 turns)."""
    results: list[LLMTurnResult] = []
    ref, new_messages = "", []
    for number in range(1, 6):
        result = await complete_turn(request(turn=number, conversation_ref=ref, new_messages=new_messages, **kw), cfg,
                                     store=store)
        results.append(result)
        if result.status == "final":
            break
        ref = result.conversation_ref
        if result.status == "tool_calls":
            new_messages = [ChatMessage(role="tool", tool_call_id=c.id, tool_name=c.name, result={"total": 3.0})
                            for c in result.tool_calls]
        else:
            new_messages = [ChatMessage(role="user", text=f"Repair your answer: {result.invalid_reason}")]
    return results


def anthropic_settings(server: FakeAnthropic, **kw: Any) -> LLMSettings:
    return LLMSettings(anthropic_api_key="test-key", anthropic_base_url=server.base_url, **kw)


def openai_settings(server: FakeOpenAI, **kw: Any) -> LLMSettings:
    return LLMSettings(openai_api_key="test-key", openai_base_url=server.base_url, **kw)


# -- Anthropic -------------------------------------------------------------------------------------

async def test_anthropic_node_with_tools_answers_natively_without_a_repair(anthropic_fake: FakeAnthropic,
                                                                           store: LocalArtifactStore) -> None:
    anthropic_fake.queue(Reply(text="Let me add these.", tool_calls=[ToolUse("sum_values", {"values": [1, 2]})]),
                         Reply(answer=GOOD))
    results = await tool_loop(anthropic_fake, anthropic_settings(anthropic_fake), store)
    assert [r.status for r in results] == ["tool_calls", "final"]
    assert results[-1].output == GOOD
    assert anthropic_fake.native_requests == 2 and anthropic_fake.pending == 0
    first, last = anthropic_fake.requests
    for sent in (first.body, last.body):
        assert [t["name"] for t in sent["tools"]] == ["sum_values", "echo"]
        assert sent["tool_choice"] == {"type": "auto"}
        assert sent["output_config"]["format"]["type"] == "json_schema"
        assert strict_schema_problem(sent["output_config"]["format"]["schema"]) == ""
    assert last.body["messages"][-1]["content"][0]["type"] == "tool_result"


async def test_the_fake_answers_prose_when_the_answer_is_not_asked_natively(anthropic_fake: FakeAnthropic,
                                                                             store: LocalArtifactStore) -> None:
    # The answer-tool path against a model that only keeps to a format natively: prose, repairs, failure.
    anthropic_fake.queue(*[Reply(answer=GOOD)] * 5)
    results = await tool_loop(anthropic_fake, anthropic_settings(anthropic_fake, anthropic_structured_output="tool"),
                              store, tools=[])
    assert [r.status for r in results] == ["invalid"] * 5
    assert results[0].text.startswith("Here is what I found.") and anthropic_fake.native_requests == 0
    assert anthropic_fake.requests[0].body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}


@pytest.mark.parametrize(("model", "thinking"), [
    ("anthropic/claude-sonnet-4-6", {"type": "adaptive"}),
    ("anthropic/claude-haiku-4-5", {"type": "enabled", "budget_tokens": 8192}),
])
async def test_anthropic_node_with_tools_and_thinking_answers_natively(anthropic_fake: FakeAnthropic,
                                                                       store: LocalArtifactStore, model: str,
                                                                       thinking: dict[str, Any]) -> None:
    anthropic_fake.queue(Reply(thinking="The sum first.", tool_calls=[ToolUse("sum_values", {"values": [1, 2]})]),
                         Reply(thinking="Now the plan.", answer=GOOD, reasoning_tokens=30, output_tokens=80))
    results = await tool_loop(anthropic_fake, anthropic_settings(anthropic_fake), store, model=model,
                              reasoning_effort="medium")
    assert [r.status for r in results] == ["tool_calls", "final"] and results[-1].output == GOOD
    assert results[-1].usage.reasoning_tokens == 30
    sent = anthropic_fake.last.body
    assert sent["thinking"] == thinking and sent["tool_choice"] == {"type": "auto"}  # thinking: never forced
    assert sent["output_config"]["format"]["schema"]["properties"]["segments"] == {
        "type": "array", "items": {"type": "string", "enum": ["ios", "web"]}}
    replayed = sent["messages"][1]["content"][0]
    assert replayed["type"] == "thinking" and replayed["thinking"] == "The sum first."  # signed block kept
    assert anthropic_fake.native_requests == 2


async def test_anthropic_repair_still_follows_an_answer_cut_off_at_the_token_limit(
        anthropic_fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    # Constrained decoding cannot stop max_tokens from cutting the JSON short: the repair turn remains.
    anthropic_fake.queue(Reply(tool_calls=[ToolUse("echo", {"x": 1})]), Reply(answer=GOOD, stop="length"),
                         Reply(answer=GOOD))
    results = await tool_loop(anthropic_fake, anthropic_settings(anthropic_fake), store, reasoning_effort="low")
    assert [r.status for r in results] == ["tool_calls", "invalid", "final"] and results[-1].output == GOOD
    assert results[1].invalid_reason.startswith("the answer was cut off at the output token limit")
    repair = anthropic_fake.last.body["messages"]
    assert repair[-1]["content"][-1]["text"].startswith("Repair your answer: the answer was cut off")
    assert anthropic_fake.last.body["output_config"]["format"]["type"] == "json_schema"


async def test_anthropic_repair_follows_an_answer_that_breaks_a_rule_the_schema_cannot_say(
        anthropic_fake: FakeAnthropic, store: LocalArtifactStore) -> None:
    anthropic_fake.queue(Reply(answer={"selected_routes": [], "reasoning": "none fits"}),
                         Reply(answer={"selected_routes": ["ship"], "reasoning": "metrics improved"}))
    results = await tool_loop(anthropic_fake, anthropic_settings(anthropic_fake), store, node_id="decide",
                              node_kind="router", purpose="route", output_schema=None, tools=[],
                              route_candidates=["ship", "iterate"], multi_route=True)
    assert [r.status for r in results] == ["invalid", "final"]
    assert "is empty" in results[0].invalid_reason
    assert results[-1].output == {"selected_routes": ["ship"], "reasoning": "metrics improved"}


async def test_older_claude_models_and_free_form_fields_keep_the_answer_tool(store: LocalArtifactStore) -> None:
    with FakeAnthropic(api_key="test-key") as server:
        server.queue(Reply(answer=GOOD), Reply(answer={"notes": {"any": ["json"]}}))
        old = await complete_turn(request(model="anthropic/claude-sonnet-4-20250514", tools=[]),
                                  anthropic_settings(server), store=store)
        assert old.output == GOOD and server.last.body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
        assert "output_config" not in server.last.body
        free = Schema(name="notes", fields=[SchemaField(name="notes", type="json")])
        loose = await complete_turn(request(output_schema=free, tools=[]), anthropic_settings(server), store=store)
        assert loose.output == {"notes": {"any": ["json"]}} and "output_config" not in server.last.body


async def test_native_mode_forces_the_format_for_an_unrecognised_model_name(anthropic_fake: FakeAnthropic,
                                                                            store: LocalArtifactStore) -> None:
    anthropic_fake.queue(Reply(answer=GOOD))
    cfg = anthropic_settings(anthropic_fake, anthropic_structured_output="native")
    result = await complete_turn(request(model="anthropic/my-gateway-claude", tools=[]), cfg, store=store)
    assert result.output == GOOD and anthropic_fake.native_requests == 1


def test_which_claude_models_take_native_structured_output() -> None:
    assert all(native_output_supported(m) for m in ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5-20251101",
                                                    "claude-sonnet-4-5-20250929", "claude-opus-4-7"))
    assert not any(native_output_supported(m) for m in ("claude-sonnet-4-20250514", "claude-opus-4-1-20250805",
                                                        "claude-3-7-sonnet-latest", "claude-test"))


def test_the_structured_output_setting_is_read_and_checked() -> None:
    assert LLMSettings.from_env({}).anthropic_structured_output == "auto"
    assert LLMSettings.from_env({"ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT": " Tool "}).anthropic_structured_output == "tool"
    with pytest.raises(LLMSettingsError, match="ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT"):
        LLMSettings.from_env({"ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT": "grammar"})


def test_the_fake_honours_the_beta_form_only_with_its_header() -> None:
    import anthropic

    schema = strict_json_schema(answer_spec(PLAN).json_schema)
    with FakeAnthropic(native_only=True) as server:
        server.default = Reply(answer=GOOD)
        client = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
        args: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                "messages": [{"role": "user", "content": "plan"}]}
        with pytest.raises(anthropic.BadRequestError, match="output_format: Extra inputs are not permitted"):
            client.messages.create(**args, extra_body={"output_format": {"type": "json_schema", "schema": schema}})
        beta = client.messages.create(**args, extra_body={"output_format": {"type": "json_schema", "schema": schema}},
                                      extra_headers={"anthropic-beta": ANTHROPIC_STRUCTURED_OUTPUTS_BETA})
        assert beta.content[0].text.startswith('{"hypothesis"')
        open_schema = {**schema, "additionalProperties": True}
        with pytest.raises(anthropic.BadRequestError, match="additionalProperties"):
            client.messages.create(**args, output_config={"format": {"type": "json_schema", "schema": open_schema}})
        prose = client.messages.create(**args)
        assert prose.content[0].text.startswith("Here is what I found.")


# -- OpenAI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_openai_node_with_tools_and_reasoning_answers_natively(openai_fake: FakeOpenAI, store: LocalArtifactStore,
                                                                     api: str) -> None:
    openai_fake.queue(Reply(tool_calls=[ToolUse("sum_values", {"values": [1, 2]})]), Reply(answer=GOOD))
    results = await tool_loop(openai_fake, openai_settings(openai_fake, openai_api=api), store, model="openai/o4-mini",
                              reasoning_effort="high")
    assert [r.status for r in results] == ["tool_calls", "final"] and results[-1].output == GOOD
    assert openai_fake.native_requests == 2
    sent = openai_fake.last.body
    fmt = sent["response_format"]["json_schema"] if api == "chat" else sent["text"]["format"]
    assert fmt["strict"] is True and fmt["name"] == "plan" and strict_schema_problem(fmt["schema"]) == ""
    assert [t.get("name") or t["function"]["name"] for t in sent["tools"]] == ["sum_values", "echo"]


async def test_openai_repair_still_follows_an_answer_cut_off(openai_fake: FakeOpenAI, store: LocalArtifactStore) -> None:
    openai_fake.queue(Reply(answer=GOOD, stop="length"), Reply(answer=GOOD))
    results = await tool_loop(openai_fake, openai_settings(openai_fake), store, model="openai/gpt-4.1", tools=[])
    assert [r.status for r in results] == ["invalid", "final"] and results[-1].output == GOOD
    assert "cut off" in results[0].invalid_reason


# -- the strict subset -----------------------------------------------------------------------------

def test_strict_schema_closes_objects_requires_every_field_and_keeps_enums() -> None:
    loose = {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "description": "how many"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2},
        "when": {"type": "string", "format": "date", "maxLength": 10},
        "nested": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "additionalProperties": False}},
        "required": ["n"]}
    strict = strict_json_schema(loose)
    assert strict == {"type": "object", "additionalProperties": False, "required": ["n", "tags", "when", "nested"],
                      "properties": {
                          "n": {"type": "integer", "description": 'how many\n\n{minimum: 1}'},
                          "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                                   "description": "{minItems: 2}"},
                          "when": {"type": "string", "format": "date", "description": "{maxLength: 10}"},
                          "nested": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                                     "additionalProperties": False}}}
    assert strict_schema_problem(strict) == ""
    assert loose["required"] == ["n"]  # not changed


def test_free_form_values_have_no_strict_form() -> None:
    assert strict_json_schema(answer_spec(Schema(name="x", fields=[SchemaField(name="v", type="json")])).json_schema) is None
    assert strict_json_schema({"type": "object", "properties": {"m": {"type": "object"}}}) is None
    assert strict_json_schema({"type": "object", "properties": {"l": {"type": "array"}}}) is None


def test_every_answer_schema_is_already_strict() -> None:
    spec = answer_spec(PLAN)
    assert strict_json_schema(spec.json_schema) == spec.json_schema and spec.strict



# -- a whole run -----------------------------------------------------------------------------------

NATIVE_SRC = """
schema finding:
  summary: string
  severity: string [enum: "low", "high"]
agent analyst:
  model: "anthropic/claude-sonnet-4-6"
  output: finding
  tools: [sum_values]
  reasoning_effort: EFFORT
workflow w:
  entry: analyst
  analyst -> done
"""


@pytest.mark.parametrize("effort", ["low", "high"])
async def test_a_run_with_tools_and_thinking_finishes_on_its_first_answer(
        temporal_env: Any, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, effort: str) -> None:
    from runs import finish, start

    from worker import build_worker

    with FakeAnthropic(native_only=True) as server:
        server.queue(Reply(thinking="Add them up.", tool_calls=[ToolUse("sum_values", {"values": [1.5, 2.5]})]),
                     Reply(thinking="Enough.", answer={"summary": "total 4", "severity": "low"}))
        for name, value in {**server.env(), "ITERLOOP_OFFLINE": ""}.items():
            monkeypatch.setenv(name, value)
        async with build_worker(temporal_env.client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
            result = await finish(await start(temporal_env.client, task_queue, NATIVE_SRC.replace("EFFORT", effort)))
    assert result.status == "finished"
    assert {k: v for k, v in result.outputs["analyst"].items() if not k.startswith("_")} == {
        "summary": "total 4", "severity": "low"}
    assert len(server.requests) == 2 and server.native_requests == 2  # a tool turn and the answer: no repair
    assert result.usage.calls == 2
