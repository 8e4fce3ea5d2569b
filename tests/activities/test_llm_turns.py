"""What every model turn shares, whatever the provider: the activity (heartbeats, offloading),
settings, prices, conversations, tool names, and the judging of answers."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import FakeAnthropic, Raw, Reply
from temporalio.testing import ActivityEnvironment

from activities import artifacts
from activities.artifacts import LocalArtifactStore
from activities.llm import activity as llm_activity
from activities.llm.activity import complete_turn, configure, judge, llm_turn, usage_of, within_activity_timeout
from activities.llm.conversation import MISSING_RESULT_TEXT, paired
from activities.llm.pricing import PriceFileError, PriceTable
from activities.llm.provider import ModelReply, TokenCounts, ToolSpec, model_id, resolve_provider, wire_name
from activities.llm.settings import LLMSettings, LLMSettingsError
from activities.llm.tool_specs import ToolNames
from dsl.ir import Schema, SchemaField
from workflows.contract.env_refs import truthy
from workflows.contract.messages import ChatMessage, LLMTurnRequest, ToolCall
from workflows.contract.output_validation import parse_json_object

ANSWER = Schema(name="review_auto_or_pause", fields=[SchemaField(name="approved", type="bool"),
                                                     SchemaField(name="comment", type="string"),
                                                     SchemaField(name="needs_human_input", type="bool")])


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def worker_settings(fake: FakeAnthropic, tmp_path: Path) -> Iterator[LLMSettings]:
    """The worker-wide settings and artifact store the activity uses, restored afterwards."""
    previous_root, previous = artifacts.store().root, llm_activity.current_settings()
    artifacts.configure(tmp_path / "artifacts")
    chosen = LLMSettings(anthropic_api_key="test-key", anthropic_base_url=fake.base_url)
    configure(settings=chosen)
    yield chosen
    configure(settings=previous)
    artifacts.configure(previous_root)


def request(**kw: Any) -> LLMTurnRequest:
    base: dict[str, Any] = {"run_id": "run-t", "node_id": "review", "node_kind": "human", "purpose": "auto_or_pause",
                            "model": "claude-haiku-4-5", "user": "Approve the launch?", "output_schema": ANSWER}
    return LLMTurnRequest(**{**base, **kw})


# -- the activity ------------------------------------------------------------------------------

async def test_activity_heartbeats_while_the_provider_works(fake: FakeAnthropic, worker_settings: LLMSettings) -> None:
    released = threading.Event()
    fake.queue(Reply(answer={"approved": True, "comment": "ok", "needs_human_input": False}, hold=released))
    beats: list[Any] = []
    env = ActivityEnvironment()

    def on_heartbeat(*details: Any) -> None:
        beats.append(details)
        released.set()  # the answer comes only after a heartbeat went out

    env.on_heartbeat = on_heartbeat
    result = await env.run(llm_turn, request(heartbeat_seconds=0.05))
    assert result.status == "final" and result.output["approved"] is True
    assert beats and "review · turn 1: waiting for anthropic" in beats[0][0]


async def test_activity_offloads_a_large_output(fake: FakeAnthropic, worker_settings: LLMSettings) -> None:
    fake.queue(Reply(text="x" * 5000))
    result = await ActivityEnvironment().run(llm_turn, request(purpose="node", output_schema=None,
                                                               offload_threshold_bytes=1000))
    stub = result.output["$artifact"]
    assert stub["fields"] == ["text"] and json.loads(artifacts.store().get(stub["uri"])) == {"text": "x" * 5000}


async def test_activity_resolves_artifact_references_in_the_prompt(fake: FakeAnthropic,
                                                                   worker_settings: LLMSettings) -> None:
    uri = artifacts.store().put("run-t", "analyst", json.dumps({"summary": "mobile dropped"}).encode())
    fake.queue(Reply(answer={"approved": True, "comment": "ok", "needs_human_input": False}))
    token = f"⟦artifact:{uri}#summary⟧"
    await ActivityEnvironment().run(llm_turn, request(user=f"Findings: {token}", artifact_tokens=[token]))
    assert fake.last.body["messages"][0]["content"][0]["text"] == "Findings: mobile dropped"


async def test_activity_leaves_token_look_alikes_the_workflow_did_not_place_as_text(
        fake: FakeAnthropic, worker_settings: LLMSettings) -> None:
    uri = artifacts.store().put("run-other", "secret", json.dumps({"summary": "not for this prompt"}).encode())
    fake.queue(Reply(answer={"approved": True, "comment": "ok", "needs_human_input": False}))
    look_alike = f"⟦artifact:{uri}#summary⟧"  # e.g. inside a run input or a model's answer
    await ActivityEnvironment().run(llm_turn, request(user=f"Findings: {look_alike}", input={"note": look_alike}))
    assert fake.last.body["messages"][0]["content"][0]["text"] == f"Findings: {look_alike}"


async def test_a_retried_turn_with_the_same_reply_stores_nothing_new(fake: FakeAnthropic, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    cfg = LLMSettings(anthropic_api_key="test-key", anthropic_base_url=fake.base_url)
    same = Raw(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                     "content": [{"type": "tool_use", "id": "toolu_1", "name": "final_answer",
                                  "input": {"approved": False, "comment": "wait", "needs_human_input": False}}],
                     "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}})
    fake.queue(same, same)
    first = await complete_turn(request(), cfg, store=store)
    second = await complete_turn(request(), cfg, store=store)
    assert first.conversation_ref == second.conversation_ref
    assert len(list((tmp_path / "store").rglob("*.json"))) == 1


async def test_a_backend_that_does_not_run_without_a_model_is_a_clear_non_retryable_error(tmp_path: Path) -> None:
    """A router's backend (routers never delegate) or an unknown name reaches the model turn."""
    from activities.errors import BadRequestError

    req = request(node_id="implementer", model="", backend="cursor_ai")
    with pytest.raises(BadRequestError) as raised:
        await complete_turn(req, LLMSettings(anthropic_api_key="test-key"),
                            store=LocalArtifactStore(tmp_path), env={})
    message = str(raised.value)
    assert "node 'implementer'" in message and "backend 'cursor_ai'" in message
    assert "C111" in message and "set `model:`" in message and "is empty" not in message
    assert raised.value.non_retryable


def test_a_provider_request_times_out_before_the_activity_does() -> None:
    from workflows.contract.state import RunOptions

    assert LLMSettings().request_timeout_seconds < RunOptions().llm_timeout_seconds
    assert LLMSettings.from_env({}).request_timeout_seconds == 270.0


@pytest.mark.parametrize(("configured", "activity_seconds", "used"), [
    (270.0, 300, 270.0), (600.0, 300, 270.0), (270.0, 60, 54.0), (100.0, 3600, 100.0), (600.0, 3600, 600.0)])
def test_the_request_timeout_is_cut_to_fit_the_activitys(configured: float, activity_seconds: int, used: float) -> None:
    settings = LLMSettings(request_timeout_seconds=configured)
    assert within_activity_timeout(settings, timedelta(seconds=activity_seconds)).request_timeout_seconds == used
    assert within_activity_timeout(settings, None) is settings


async def test_the_activity_gives_the_provider_a_timeout_inside_its_own(fake: FakeAnthropic,
                                                                        worker_settings: LLMSettings) -> None:
    from activities.llm import anthropic_provider

    fake.queue(Reply(answer={"approved": True, "comment": "ok", "needs_human_input": False}))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=120))
    await env.run(llm_turn, request())
    assert (fake.base_url, "test-key", 108.0) in anthropic_provider._clients


async def test_pooled_clients_close(fake: FakeAnthropic, worker_settings: LLMSettings) -> None:
    from activities.llm import anthropic_provider

    fake.queue(Reply(answer={"approved": True, "comment": "ok", "needs_human_input": False}))
    await ActivityEnvironment().run(llm_turn, request())
    clients = list(anthropic_provider._clients.values())
    assert clients
    await llm_activity.close_clients()
    assert anthropic_provider._clients == {} and all(c.is_closed() for c in clients)


# -- judging answers -----------------------------------------------------------------------------

def reply(answer: dict[str, Any] | None = None, text: str = "", **kw: Any) -> ModelReply:
    return ModelReply(message=ChatMessage(role="assistant", text=text), text=text, answer=answer, **kw)


def test_auto_or_pause_asking_for_a_human_need_not_fill_the_answer() -> None:
    result = judge(request(), reply({"needs_human_input": True}))
    assert result.status == "final" and result.output == {"needs_human_input": True}
    tentative = judge(request(), reply({"needs_human_input": True, "approved": "maybe"}))
    assert tentative.status == "final"  # the tentative answer is discarded, so it is not judged


def test_auto_or_pause_answering_must_fill_every_field_but_may_omit_the_flag() -> None:
    assert judge(request(), reply({"approved": True, "comment": "fine"})).status == "final"
    result = judge(request(), reply({"needs_human_input": False, "approved": True}))
    assert result.status == "invalid" and "field 'comment'" in result.invalid_reason


def test_json_after_prose_is_found() -> None:
    assert parse_json_object('The answer is {"a": 1} as requested.') == ({"a": 1}, "")
    assert parse_json_object('Here:\n```json\n{"a": 1}\n```\nDone.') == ({"a": 1}, "")
    assert parse_json_object('```\n{"a": 2}\n```') == ({"a": 2}, "")
    assert parse_json_object('Use {braces} carefully: {"a": 1}')[0] is None  # only the first `{` is tried
    assert parse_json_object("[1, 2]") == (None, "the reply is JSON but not an object: found list [1, 2]")
    assert parse_json_object("  ")[1] == "the reply is empty; expected a JSON object"


def test_int_field_rejects_fractions_and_bools() -> None:
    schema = Schema(name="n", fields=[SchemaField(name="n", type="int")])
    req = request(purpose="node", output_schema=schema)
    assert judge(req, reply({"n": 3.0})).status == "final"
    assert judge(req, reply({"n": 3.5})).invalid_reason == "field 'n' expected an int, found float 3.5"
    assert judge(req, reply({"n": True})).invalid_reason == "field 'n' expected an int, found bool True"


def test_field_names_that_shadow_pydantic_attributes_work() -> None:
    schema = Schema(name="odd", fields=[SchemaField(name="json", type="string"),
                                        SchemaField(name="model_config", type="string[]")])
    req = request(purpose="node", output_schema=schema)
    assert judge(req, reply({"json": "a", "model_config": ["b"]})).status == "final"
    assert "field 'model_config'" in judge(req, reply({"json": "a", "model_config": "b"})).invalid_reason


def test_refusal_or_tool_problem_is_invalid() -> None:
    result = judge(request(), reply(text="no", problem="the model refused to answer: no"))
    assert result.status == "invalid" and result.invalid_reason == "the model refused to answer: no"
    calls = [ToolCall(id="1", name="echo")]
    assert judge(request(), reply(tool_calls=calls)).status == "tool_calls"


# -- conversations and tool names ----------------------------------------------------------------

def test_unanswered_tool_calls_get_an_error_result_before_the_next_message() -> None:
    call = ToolCall(id="c1", name="sum_values")
    messages = [ChatMessage(role="user", text="hi"), ChatMessage(role="assistant", tool_calls=[call]),
                ChatMessage(role="user", text="go on"),
                ChatMessage(role="tool", tool_call_id="stray", tool_name="echo", text="orphan")]
    out = paired(messages)
    assert [m.role for m in out] == ["user", "assistant", "tool", "user"]
    assert out[2].tool_call_id == "c1" and out[2].is_error and out[2].text == MISSING_RESULT_TEXT


def test_dotted_tool_names_are_mangled_for_the_wire_and_mapped_back() -> None:
    specs = [ToolSpec(name="mcp.github.create_issue", description="", parameters={})]
    assert wire_name("mcp.github.create_issue") == "mcp_github_create_issue"
    assert ToolNames(specs).registry_name("mcp_github_create_issue") == "mcp.github.create_issue"
    assert ToolNames(specs).registry_name("made_up") == "made_up"


def test_tool_and_answer_schema_names_are_made_wire_safe_the_same_way() -> None:
    from activities.llm.structured_output import answer_spec

    assert wire_name("a.b c/d" + "x" * 80) == ("a_b_c_d" + "x" * 80)[:64]
    assert wire_name("") == "_" and wire_name("", fallback="output") == "output"
    assert answer_spec(Schema(name="plan.v2", fields=[])).name == "plan_v2"


def test_model_id_strips_only_the_provider_prefix() -> None:
    assert model_id("anthropic/claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert model_id("openai/meta-llama/Llama-3-8b") == "meta-llama/Llama-3-8b"
    assert model_id("openai-responses/gpt-5") == "gpt-5"
    assert model_id("gpt-4.1") == "gpt-4.1"
    assert resolve_provider("openai-responses/gpt-5", script_available=False, offline=False, env={}) == "openai"


# -- settings ------------------------------------------------------------------------------------

def test_settings_from_the_standard_variables(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": " sk-ant ", "ANTHROPIC_BASE_URL": "http://proxy:8080", "OPENAI_API_KEY": "sk-oai",
           "OPENAI_BASE_URL": "http://vllm:8000/v1", "ITERLOOP_OPENAI_API": "responses",
           "ITERLOOP_PRICES_FILE": str(tmp_path / "p.yaml"), "ITERLOOP_LLM_MAX_OUTPUT_TOKENS": "4096",
           "ITERLOOP_LLM_REQUEST_TIMEOUT": "120", "ITERLOOP_PROMPT_CACHING": "0", "ITERLOOP_OFFLINE": "1"}
    s = LLMSettings.from_env(env)
    assert (s.anthropic_api_key, s.anthropic_base_url, s.openai_api_key, s.openai_base_url) == (
        "sk-ant", "http://proxy:8080", "sk-oai", "http://vllm:8000/v1")
    assert s.openai_api == "responses" and s.prices_file == tmp_path / "p.yaml" and s.max_output_tokens == 4096
    assert s.request_timeout_seconds == 120.0 and s.prompt_caching is False and s.offline is True
    assert LLMSettings.from_env(env, offline=False).offline is False
    assert LLMSettings.from_env({}) == LLMSettings()


@pytest.mark.parametrize(("value", "on"), [("1", True), (" On ", True), ("YES", True), ("true", True),
                                           ("0", False), ("off", False), ("", False), ("maybe", False)])
def test_the_offline_switch_reads_like_every_other_on_off_variable(value: str, on: bool) -> None:
    assert truthy(value) is on
    assert LLMSettings.from_env({"ITERLOOP_OFFLINE": value}).offline is on


@pytest.mark.parametrize(("name", "value"), [("ITERLOOP_OPENAI_API", "assistants"),
                                             ("ITERLOOP_LLM_MAX_OUTPUT_TOKENS", "-5"),
                                             ("ITERLOOP_LLM_REQUEST_TIMEOUT", "soon")])
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(LLMSettingsError, match=name):
        LLMSettings.from_env({name: value})


# -- price files ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    ("- a\n", "expected a mapping with one key, 'models'"),
    ("models:\n  m: {input: 1}\n", "'output' is missing"),
    ("models:\n  m: {input: 1, output: -2}\n", "'output' must be a non-negative number"),
    ("models:\n  m: {input: 1, output: 2, cached: 1}\n", "unknown key 'cached'"),
    ("models: [unclosed\n", "is not valid YAML"),
])
def test_a_broken_price_file_is_reported_with_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PriceFileError, match=problem):
        PriceTable.load(path)
    with pytest.raises(PriceFileError):
        configure(settings=LLMSettings(prices_file=path))


def test_a_model_without_a_price_is_counted_as_an_unpriced_call() -> None:
    tokens = TokenCounts(input_tokens=1000, output_tokens=100)
    unknown = usage_of("openai", "openai/house-model-without-a-price", reply(text="ok", tokens=tokens), LLMSettings())
    priced = usage_of("anthropic", "claude-sonnet-4-5", reply(text="ok", tokens=tokens), LLMSettings())
    assert (unknown.cost_usd, unknown.unpriced_calls) == (0.0, 1)
    assert priced.cost_usd > 0 and priced.unpriced_calls == 0
    assert unknown.plus(priced).plus(unknown).unpriced_calls == 2  # summed per node and per run


def test_a_missing_price_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="ITERLOOP_PRICES_FILE"):
        PriceTable.load(tmp_path / "nope.yaml")


def test_a_price_file_broken_or_deleted_mid_run_never_fails_a_paid_turn(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "prices.yaml"
    versions = iter(range(1, 10))

    def write(text: str) -> None:  # each version with its own mtime, however coarse the file system's clock
        path.write_text(text, encoding="utf-8")
        stamp = next(versions) * 1_000_000_000
        os.utime(path, ns=(stamp, stamp))

    write("models:\n  openai/house-model: {input: 2, output: 4}\n")
    cfg, previous = LLMSettings(prices_file=path), llm_activity.current_settings()
    configure(settings=cfg)  # the start-up check loads it
    paid = reply(text="ok", tokens=TokenCounts(input_tokens=1_000_000, output_tokens=500_000))
    try:
        write("models: [unclosed\n")
        broken = [usage_of("openai", "openai/house-model", paid, cfg) for _ in range(2)]
        path.unlink()
        deleted = usage_of("openai", "openai/house-model", paid, cfg)
        write("models:\n  openai/house-model: {input: 1, output: 1}\n")
        fixed = usage_of("openai", "openai/house-model", paid, cfg)
    finally:
        configure(settings=previous)

    assert [u.cost_usd for u in (*broken, deleted, fixed)] == [4.0, 4.0, 4.0, 1.5]  # the last good table, then the fix
    warnings = [r.getMessage() for r in caplog.records if r.name == "iterloop.llm.pricing"]
    assert len(warnings) == 2 and "is not valid YAML" in warnings[0] and "does not exist" in warnings[1]
    assert all("the prices it held when it last loaded" in w for w in warnings)


def test_price_file_entries_match_with_or_without_the_provider_prefix(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  anthropic/claude-haiku-4-5: {input: 10, output: 20, cache_write: 12}\n", encoding="utf-8")
    table = PriceTable.load(path)
    tokens = TokenCounts(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_tokens=500_000)
    for model in ("claude-haiku-4-5", "anthropic/claude-haiku-4-5"):
        cost = table.cost("anthropic", model, tokens)
        assert cost.source == "override" and cost.usd == pytest.approx(5 + 6 + 20)
    assert table.cost("anthropic", "claude-sonnet-4-6", tokens).source == "genai-prices"
