"""The offline scripted model provider, provider resolution and the llm_turn activity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import artifacts
from activities.llm import activity as llm_activity
from activities.llm import conversation
from activities.llm.activity import complete_turn, configure, llm_turn
from activities.llm.provider import ModelProvider, resolve_provider
from activities.llm.scripted import ScriptedProvider
from activities.llm.settings import LLMSettings
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import (
    ERR_BAD_REQUEST,
    ERR_MODEL_AUTH,
    ERR_SCRIPT,
    ChatMessage,
    LLMTurnRequest,
    LLMTurnResult,
)
from workflows.contract.scripts import ScriptLoadError, load_script

PLAN = Schema(name="plan", fields=[
    SchemaField(name="hypothesis", type="string"),
    SchemaField(name="priority", type="string", enum_values=["high", "low"]),
    SchemaField(name="approved", type="bool"),
    SchemaField(name="sample_size", type="int"),
    SchemaField(name="lift", type="float"),
    SchemaField(name="details", type="json"),
    SchemaField(name="metrics", type="string[]"),
])

GOOD_PLAN = {"hypothesis": "shorter form", "priority": "high", "approved": False, "sample_size": 1200,
             "lift": 0.05, "details": {"page": "/checkout"}, "metrics": ["conversion"]}


def request(**kw: Any) -> LLMTurnRequest:
    base: dict[str, Any] = {"run_id": "run-1", "node_id": "planner", "node_kind": "agent",
                            "model": "scripted", "output_schema": PLAN}
    return LLMTurnRequest(**{**base, **kw})


async def turn(**kw: Any) -> LLMTurnResult:
    return await complete_turn(request(**kw), LLMSettings())


async def run(**kw: Any) -> dict[str, Any]:
    return (await turn(**kw)).output


async def script_error(**kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await turn(**kw)
    err = info.value
    assert err.type == ERR_SCRIPT and err.non_retryable
    return err


@pytest.fixture(autouse=True)
def _online_by_default_with_a_private_store(tmp_path: Path) -> Any:
    previous = artifacts.store().root
    artifacts.configure(tmp_path / "artifacts")
    configure(settings=LLMSettings())
    yield
    configure(settings=LLMSettings())
    artifacts.configure(previous)


# -- provider resolution ---------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "script", "offline", "expected"), [
    ("scripted", False, False, "scripted"),
    ("scripted/growth-demo", False, False, "scripted"),
    ("anthropic/claude-sonnet-4-5", False, False, "anthropic"),
    ("claude-opus-4-1", False, False, "anthropic"),
    ("openai/gpt-5", False, False, "openai"),
    ("gpt-4o", False, False, "openai"),
    ("o1-mini", False, False, "openai"),
    ("o3", False, False, "openai"),
    ("o4-mini", False, False, "openai"),
    ("claude-opus-4-1", False, True, "scripted"),
    ("gpt-4o", True, False, "scripted"),
    ("", True, False, "scripted"),
    ("mystery-model", False, True, "scripted"),
])
def test_resolve_provider_table(model: str, script: bool, offline: bool, expected: str) -> None:
    assert resolve_provider(model, script_available=script, offline=offline, env={}) == expected


@pytest.mark.parametrize("model", ["mistral-large", "gemini/pro", "", "o2-preview"])
def test_resolve_provider_rejects_unknown_model_naming_it_and_the_accepted_forms(model: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_provider(model, script_available=False, offline=False, env={})
    message = str(info.value)
    assert repr(model) in message
    assert "anthropic/" in message and "openai/" in message and "scripted" in message


def test_resolve_provider_expands_env_in_model() -> None:
    env = {"PLANNER_MODEL": "anthropic/claude-sonnet-4-5", "FAST": "gpt-4o-mini"}
    assert resolve_provider("${PLANNER_MODEL}", script_available=False, offline=False, env=env) == "anthropic"
    assert resolve_provider("$FAST", script_available=False, offline=False, env=env) == "openai"
    assert resolve_provider("scripted/${MISSING}", script_available=False, offline=False, env=env) == "scripted"


def test_resolve_provider_error_names_the_reference_not_its_value() -> None:
    with pytest.raises(ValueError, match=r"'\$\{M\}' \(as set in the worker's environment\)") as info:
        resolve_provider("${M}", script_available=False, offline=False, env={"M": "llama-3"})
    assert "llama-3" not in str(info.value)  # the message goes to history, which never holds `${…}` values


def test_scripted_provider_implements_model_provider() -> None:
    assert isinstance(ScriptedProvider(), ModelProvider)


# -- scripted outputs per visit ----------------------------------------------------------------------

async def test_single_output_object_is_used_on_every_visit() -> None:
    script = {"planner": GOOD_PLAN}
    assert await run(script=script, visit=1) == GOOD_PLAN
    assert await run(script=script, visit=3) == GOOD_PLAN


@pytest.mark.parametrize("wrap", [False, True])
async def test_list_entry_uses_item_k_for_visit_k_and_repeats_the_last(wrap: bool) -> None:
    outputs = [{**GOOD_PLAN, "hypothesis": f"h{i}"} for i in (1, 2, 3)]
    script = {"planner": {"outputs": outputs} if wrap else outputs}
    seen = [(await run(script=script, visit=v))["hypothesis"] for v in (1, 2, 3, 4, 7)]
    assert seen == ["h1", "h2", "h3", "h3", "h3"]


async def test_scripted_output_keeps_extra_keys_and_is_not_shared_with_the_script() -> None:
    script = {"planner": {**GOOD_PLAN, "notes": "extra"}}
    out = await run(script=script)
    assert out["notes"] == "extra"
    out["details"]["page"] = "changed"
    assert script["planner"]["details"] == {"page": "/checkout"}


async def test_int_field_accepts_an_integral_float() -> None:
    assert (await run(script={"planner": {**GOOD_PLAN, "sample_size": 42.0}}))["sample_size"] == 42.0


# -- generation from the schema ----------------------------------------------------------------------

async def test_output_is_generated_from_the_schema_when_the_node_has_no_entry() -> None:
    out = await run(script={"other": {"x": 1}})
    assert out == {"hypothesis": "planner.hypothesis", "priority": "high", "approved": True, "sample_size": 1,
                   "lift": 1.0, "details": {}, "metrics": []}


async def test_output_is_generated_without_any_script_when_offline() -> None:
    assert (await run(script=None))["hypothesis"] == "planner.hypothesis"


async def test_generation_uses_script_defaults() -> None:
    out = await run(script={"defaults": {"approved": False, "metrics": ["conversion"], "unused": 3}})
    assert out["approved"] is False and out["metrics"] == ["conversion"] and "unused" not in out


async def test_schemaless_node_gets_a_text_output() -> None:
    assert await run(output_schema=None) == {"text": "planner.text"}


async def test_bad_default_is_a_script_error_naming_the_default() -> None:
    err = await script_error(script={"defaults": {"sample_size": "many"}})
    assert "defaults.sample_size" in err.message and "expected an int" in err.message


# -- schema violations -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field", "expected", "found"), [
    ({"sample_size": "lots"}, "sample_size", "an int", "string 'lots'"),
    ({"approved": "yes"}, "approved", "a bool", "string 'yes'"),
    ({"lift": True}, "lift", "a number", "bool True"),
    ({"priority": "medium"}, "priority", "a string (one of 'high', 'low')", "string 'medium' (not in the enum)"),
    ({"metrics": "conversion"}, "metrics", "a list of strings", "string 'conversion'"),
    ({"metrics": ["a", 2]}, "metrics", "a list of strings", "list ['a', 2]"),
    ({"hypothesis": None}, "hypothesis", "a string", "null"),
])
async def test_schema_violation_names_node_field_expected_and_found(
        change: dict[str, Any], field: str, expected: str, found: str) -> None:
    err = await script_error(script={"planner": {**GOOD_PLAN, **change}}, visit=2)
    assert "node 'planner' (visit 2)" in err.message
    assert f"field '{field}' expected {expected}" in err.message
    assert f"found {found}" in err.message


async def test_missing_field_is_a_schema_violation() -> None:
    plan = {k: v for k, v in GOOD_PLAN.items() if k != "lift"}
    err = await script_error(script={"planner": plan})
    assert "field 'lift'" in err.message and "missing" in err.message


async def test_only_the_visit_being_run_is_validated() -> None:
    script = {"planner": [GOOD_PLAN, {"hypothesis": 3}]}
    assert await run(script=script, visit=1) == GOOD_PLAN
    err = await script_error(script=script, visit=2)
    assert "visit 2" in err.message


async def test_non_object_entry_is_a_script_error() -> None:
    err = await script_error(script={"planner": "just text"})
    assert "expected an output object" in err.message and "string 'just text'" in err.message


# -- human gates -------------------------------------------------------------------------------------

ANSWER = Schema(name="review_auto_or_pause", fields=[SchemaField(name="approved", type="bool"),
                                                     SchemaField(name="needs_human_input", type="bool")])


async def test_auto_or_pause_may_omit_needs_human_input() -> None:
    out = await run(node_id="review", purpose="auto_or_pause", output_schema=ANSWER,
                    script={"review": {"approved": True}})
    assert out == {"approved": True}


async def test_auto_or_pause_asking_for_a_human_needs_no_answer_fields() -> None:
    out = await run(node_id="review", purpose="auto_or_pause", output_schema=ANSWER,
                    script={"review": {"needs_human_input": True}})
    assert out == {"needs_human_input": True}


async def test_auto_or_pause_still_checks_answer_fields_when_auto_answering() -> None:
    err = await script_error(node_id="review", purpose="auto_or_pause", output_schema=ANSWER,
                             script={"review": {"needs_human_input": False}})
    assert "field 'approved'" in err.message


# -- routers -----------------------------------------------------------------------------------------

ROUTE = {"node_id": "triage", "node_kind": "router", "purpose": "route", "output_schema": None,
         "route_candidates": ["bug_fix", "feature", "docs"]}


async def test_route_entry_selects_the_named_target() -> None:
    assert await run(**ROUTE, script={"triage": "feature"}) == {"selected_route": "feature", "reasoning": "scripted"}


async def test_route_list_selects_per_visit() -> None:
    script = {"triage": ["docs", {"selected_route": "bug_fix", "reasoning": "flaky test"}]}
    assert (await run(**ROUTE, script=script, visit=1))["selected_route"] == "docs"
    assert await run(**ROUTE, script=script, visit=2) == {"selected_route": "bug_fix", "reasoning": "flaky test"}


async def test_multi_route_entry_selects_the_named_targets() -> None:
    out = await run(**ROUTE, multi_route=True, script={"triage": ["docs", "bug_fix"]}, visit=2)
    assert out == {"selected_routes": ["docs", "bug_fix"], "reasoning": "scripted"}


async def test_multi_route_accepts_a_single_name() -> None:
    assert (await run(**ROUTE, multi_route=True, script={"triage": "docs"}))["selected_routes"] == ["docs"]


async def test_route_without_entry_picks_the_first_candidate_or_all_when_multi() -> None:
    assert (await run(**ROUTE, script={}))["selected_route"] == "bug_fix"
    assert (await run(**ROUTE, multi_route=True))["selected_routes"] == ["bug_fix", "feature", "docs"]


@pytest.mark.parametrize(("multi", "entry"), [(False, "deploy"), (True, ["docs", "deploy"])])
async def test_route_to_an_unknown_target_is_a_script_error_naming_node_and_candidates(
        multi: bool, entry: Any) -> None:
    err = await script_error(**ROUTE, multi_route=multi, script={"triage": entry})
    assert "'triage'" in err.message and "'deploy'" in err.message
    assert "['bug_fix', 'feature', 'docs']" in err.message


async def test_single_route_given_several_targets_is_a_script_error() -> None:
    err = await script_error(**ROUTE, script={"triage": [["docs", "feature"]]})
    assert "expected one target name" in err.message


# -- usage -------------------------------------------------------------------------------------------

async def test_usage_is_labelled_scripted_and_deterministic() -> None:
    req = request(system="s" * 10, user="u" * 30, script={"planner": GOOD_PLAN})
    first, second = await complete_turn(req, LLMSettings()), await complete_turn(req, LLMSettings())
    assert first == second
    usage = first.usage
    assert usage.provider == "scripted" and usage.model == "scripted" and usage.cost_usd == 0.0
    assert usage.input_tokens == 40 // 4 + 1 and usage.output_tokens > 1
    assert "_provider" not in first.output


async def test_usage_model_defaults_to_scripted_when_unset() -> None:
    assert (await turn(model="", script={})).usage.model == "scripted"


async def test_script_cost_per_call_is_the_turns_cost() -> None:
    usage = (await turn(script={"planner": GOOD_PLAN, "cost_per_call_usd": 0.25})).usage
    assert usage.cost_usd == 0.25 and usage.calls == 1


# -- load_script -------------------------------------------------------------------------------------

def test_load_script_round_trips_yaml(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(
        "defaults:\n  needs_human_input: false\n"
        "planner:\n  - {hypothesis: a, priority: high}\n  - hypothesis: b\n    priority: low\n"
        "triage: docs\n"
        "fanout:\n  outputs:\n    - [web, mobile]\n", encoding="utf-8")
    assert load_script(path) == {
        "defaults": {"needs_human_input": False},
        "planner": [{"hypothesis": "a", "priority": "high"}, {"hypothesis": "b", "priority": "low"}],
        "triage": "docs",
        "fanout": {"outputs": [["web", "mobile"]]},
    }


def test_load_script_of_an_empty_file_is_an_empty_script(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_script(path) == {}


def test_load_script_reports_malformed_yaml_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("planner:\n  hypothesis: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScriptLoadError, match=r"bad\.yaml:\d+:\d+' is not valid YAML"):
        load_script(path)


def test_load_script_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptLoadError, match="does not exist"):
        load_script(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("text", "problem"), [
    ("- a\n- b\n", "expected a mapping"),
    ("defaults: 3\n", "'defaults' must map field names"),
    ("planner: []\n", "empty list"),
    ("planner:\n  launch: 2024-05-01\n", "'planner.launch' holds date"),
])
def test_load_script_rejects_a_wrong_shape(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScriptLoadError, match=problem):
        load_script(path)


# -- the activity ------------------------------------------------------------------------------------

async def test_activity_runs_the_scripted_provider() -> None:
    result = await ActivityEnvironment().run(llm_turn, request(script={"planner": GOOD_PLAN}))
    assert result.output == GOOD_PLAN and result.usage.provider == "scripted"


async def test_activity_uses_scripted_for_a_real_model_when_offline() -> None:
    configure(offline=True)
    result = await ActivityEnvironment().run(llm_turn, request(model="claude-sonnet-4-5"))
    assert result.usage.provider == "scripted" and result.usage.model == "claude-sonnet-4-5"


@pytest.mark.parametrize(("model", "variable"), [("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
                                                  ("gpt-4o", "OPENAI_API_KEY")])
async def test_activity_without_an_api_key_fails_naming_the_variable_to_set(model: str, variable: str) -> None:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(llm_turn, request(model=model))
    err = info.value
    assert err.type == ERR_MODEL_AUTH and err.non_retryable
    assert variable in err.message and "node 'planner'" in err.message and "--offline" in err.message


async def test_activity_rejects_an_unknown_model_as_a_bad_request() -> None:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(llm_turn, request(model="mistral-large"))
    assert info.value.type == ERR_BAD_REQUEST and info.value.non_retryable
    assert "node 'planner'" in info.value.message and "'mistral-large'" in info.value.message


async def test_env_in_model_is_expanded_on_the_worker_and_recorded_as_the_reference() -> None:
    result = await complete_turn(request(model="scripted/${DEMO}"), LLMSettings(), env={"DEMO": "growth"})
    assert result.usage.model == "scripted/${DEMO}"  # usage goes to history: the value stays on the worker


async def test_activity_expands_env_from_the_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERLOOP_TEST_MODEL", "scripted/from-env")
    result = await ActivityEnvironment().run(llm_turn, request(model="${ITERLOOP_TEST_MODEL}"))
    assert result.usage.model == "${ITERLOOP_TEST_MODEL}"


def test_configure_sets_the_offline_flag() -> None:
    configure(offline=True)
    assert llm_activity.current_settings().offline is True


def test_configure_reads_keys_and_base_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    configure(offline=False)
    s = llm_activity.current_settings()
    assert s.anthropic_api_key == "sk-ant-test" and s.openai_base_url == "http://127.0.0.1:9/v1" and not s.offline
    assert "sk-ant-test" not in repr(s)


# -- multi-turn scripts (tool loops offline) ---------------------------------------------------------

LOOP = {"planner": {"turns": [
    {"tool_calls": [{"name": "sum_values", "arguments": {"values": [1, 2]}}, {"name": "echo"}]},
    {"reply_text": "not json"},
    GOOD_PLAN,
]}}


async def test_a_tool_turn_asks_for_the_scripted_calls_with_stable_ids() -> None:
    result = await turn(script=LOOP, tools=["sum_values", "echo"], visit=2)
    assert result.status == "tool_calls" and result.output == {}
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("planner-v2-t1-1", "sum_values", {"values": [1, 2]}), ("planner-v2-t1-2", "echo", {})]
    assert [t.name for t in result.tools] == ["sum_values", "echo"]


async def test_turns_continue_the_stored_conversation_through_a_repair_to_the_output() -> None:
    first = await turn(script=LOOP, tools=["sum_values", "echo"])
    results = [ChatMessage(role="tool", tool_call_id=c.id, tool_name=c.name, result={"total": 3.0})
               for c in first.tool_calls]
    second = await turn(script=LOOP, tools=["sum_values", "echo"], turn=2, conversation_ref=first.conversation_ref,
                        new_messages=results)
    assert second.status == "invalid" and second.invalid_reason.startswith("the reply is not valid JSON")
    assert second.text == "not json"
    repair = ChatMessage(role="user", text="Answer with JSON.")
    third = await turn(script=LOOP, tools=["sum_values", "echo"], turn=3, conversation_ref=second.conversation_ref,
                       new_messages=[repair])
    assert third.status == "final" and third.output == GOOD_PLAN
    stored = conversation.load(third.conversation_ref, artifacts.store())
    assert [m.role for m in stored] == ["user", "assistant", "tool", "tool", "assistant", "user", "assistant"]
    assert stored[1].tool_calls[0].name == "sum_values" and stored[2].result == {"total": 3.0}


async def test_past_the_last_turn_the_last_one_repeats() -> None:
    assert (await turn(script=LOOP, turn=9)).output == GOOD_PLAN


async def test_a_spent_tool_budget_skips_to_the_next_output() -> None:
    script = {"planner": {"turns": [{"tool_calls": [{"name": "echo"}]}, GOOD_PLAN]}}
    result = await turn(script=script, allow_tools=False)
    assert result.status == "final" and result.output == GOOD_PLAN
    only_tools = {"planner": {"turns": [{"tool_calls": [{"name": "echo"}]}]}}
    generated = await turn(script=only_tools, allow_tools=False, turn=4)
    assert generated.status == "final" and generated.output["hypothesis"] == "planner.hypothesis"


async def test_turns_are_per_visit() -> None:
    script = {"planner": [{"turns": [{"tool_calls": [{"name": "echo"}]}, GOOD_PLAN]}, {**GOOD_PLAN, "hypothesis": "b"}]}
    assert (await turn(script=script, visit=1)).status == "tool_calls"
    assert (await turn(script=script, visit=2)).output["hypothesis"] == "b"


async def test_offline_runs_skip_tools_the_registry_does_not_know() -> None:
    result = await turn(script=LOOP, tools=["sum_values", "mcp.playwright.*", "read_file"])
    assert [t.name for t in result.tools] == ["sum_values"]


@pytest.mark.parametrize(("entry", "problem"), [
    ({"turns": []}, "'planner.turns' must be a non-empty list"),
    ({"turns": [{"tool_calls": [{"arguments": {}}]}]}, "'planner.turns[0].tool_calls[0]' must be {name: <tool>"),
    ([GOOD_PLAN, {"turns": [{"reply_text": 3}]}], "'planner[1].turns[0].reply_text' must be a string"),
])
async def test_malformed_turns_are_a_script_error(entry: Any, problem: str) -> None:
    err = await script_error(script={"planner": entry})
    assert problem in err.message


async def test_a_turn_checks_only_its_own_entry_and_the_shared_keys() -> None:
    others_broken = {"planner": GOOD_PLAN, "critic": [], "judge": {"turns": []}}
    assert await run(script=others_broken) == GOOD_PLAN  # the other nodes' entries are not this turn's business
    err = await script_error(script={"planner": GOOD_PLAN, "cost_per_call_usd": -1})
    assert "'cost_per_call_usd' must be a non-negative number" in err.message
    err = await script_error(script={"planner": GOOD_PLAN, "defaults": [1]})
    assert "'defaults' must map field names" in err.message
