"""Node inputs and rendered commands, without Temporal."""

from __future__ import annotations

import dsl
from dsl import ir
from workflows.inputs import (
    DataContext,
    build_input,
    initial_vars,
    loop_view,
    placed_input_tokens,
    render_command,
    render_text,
)


def compile_ok(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


MAPPED = compile_ok("""
schema v:
  approved: bool
  summary: string
agent a:
  model: "m"
  output: v
agent b:
  model: "m"
vars:
  topic: string = "pricing"
workflow w:
  entry: a
  a -> a when not approved as again(2)
  a -> b with {
    whole: "{{outputs.a}}",
    flag: "{{outputs.a.approved}}",
    text: "About {{vars.topic}}: {{outputs.a.summary}}",
    via_input: "{{input.summary}}",
    history: "{{outputs.a.history}}"
  }
  b -> done
""")


def test_with_mapping_single_reference_keeps_type_and_text_interpolates() -> None:
    ctx = DataContext(vars={"topic": "pricing"}, outputs={"a": {"approved": True, "summary": "ok"}},
                      history={"a": [{"approved": False, "summary": "first"}, {"approved": True, "summary": "ok"}]})
    got = build_input(MAPPED, "b", ctx)
    assert got["whole"] == {"approved": True, "summary": "ok"}
    assert got["flag"] is True
    assert got["text"] == "About pricing: ok"
    assert got["via_input"] == "ok"
    assert [h["summary"] for h in got["history"]] == ["first", "ok"]


def test_entry_without_mappings_gets_vars_and_run_inputs() -> None:
    ctx = DataContext(vars={"topic": "pricing"}, run_inputs={"code": "x"})
    assert build_input(MAPPED, "a", ctx) == {"topic": "pricing", "code": "x"}
    assert initial_vars(MAPPED, {"topic": "churn", "other": 1}) == {"topic": "churn"}


def test_command_values_travel_beside_the_command_as_variables() -> None:
    ctx = DataContext(vars={"name": "x; rm -rf /"})
    rendered = render_command("echo {{vars.name}} {{input.n}} {{vars.unset}}", ctx, {"n": 3})
    assert rendered.command == 'echo "${ITERLOOP_VALUE_1}" "${ITERLOOP_VALUE_2}" {{vars.unset}}'
    assert [(v.env, v.ref, v.value) for v in rendered.values] == [
        ("ITERLOOP_VALUE_1", "{{vars.name}}", "x; rm -rf /"), ("ITERLOOP_VALUE_2", "{{input.n}}", 3)]


def test_command_values_in_quotes_of_older_workflows_stay_data_for_the_outer_shell() -> None:
    ctx = DataContext(vars={"x": "v"})
    rendered = render_command("echo '<{{vars.x}}>' \\{{vars.x}}", ctx, {})
    assert rendered.command == 'echo \'<\'"${ITERLOOP_VALUE_1}"\'>\' \\""${ITERLOOP_VALUE_2}"'



def test_prompts_list_the_tokens_iterloop_wrote_and_not_those_a_value_holds() -> None:
    stub = {"ok": True, "$artifact": {"uri": "artifact://r/a/1.json", "bytes": 9000, "fields": ["body"]}}
    look_alike = "⟦artifact:artifact://other/run/2.json#secret⟧"
    ctx = DataContext(vars={"note": look_alike}, outputs={"a": stub})
    placed: list[str] = []
    text = render_text("{{outputs.a.body}} / {{vars.note}}", ctx, {}, placed)
    assert text == f"⟦artifact:artifact://r/a/1.json#body⟧ / {look_alike}"
    assert placed == ["⟦artifact:artifact://r/a/1.json#body⟧"]


def test_input_tokens_are_those_with_mappings_wrote_and_an_input_without_token_text_has_none() -> None:
    wf = compile_ok("""
agent a:
  model: "m"
agent b:
  model: "m"
vars:
  note: string = ""
workflow w:
  entry: a
  a -> b with {
    text: "Body: {{outputs.a.body}}; note: {{vars.note}}"
  }
  b -> done
""")
    stub = {"ok": True, "$artifact": {"uri": "artifact://r/a/1.json", "bytes": 9000, "fields": ["body"]}}
    look_alike = "⟦artifact:artifact://other/run/2.json#secret⟧"
    ctx = DataContext(vars={"note": look_alike}, outputs={"a": stub})
    node_input = build_input(wf, "b", ctx)
    assert look_alike in node_input["text"]
    assert placed_input_tokens(wf, "b", ctx, node_input) == ["⟦artifact:artifact://r/a/1.json#body⟧"]
    plain = DataContext(vars={"note": "plain"}, outputs={"a": {"body": "short"}})
    assert placed_input_tokens(wf, "b", plain, build_input(wf, "b", plain)) == []


def test_loop_and_run_references_render_from_the_run_state() -> None:
    wf = dsl.check_source("""
agent a:
  model: "m"
workflow w:
  entry: a
  a -> a as again(3) with { round: "{{loop.again.iteration}}", of: "{{loop.again.max}}", run: "{{run.id}} {{run.tokens}}" }
  a -> done
""").workflow
    assert wf is not None
    loops = loop_view(wf, {"again": 1}, {"again": 2}, {"again": {"x": 1}})
    assert loops == {"again": {"iteration": 1, "max": 5, "previous_output": {"x": 1}}}
    ctx = DataContext(outputs={"a": {}}, loops=loops,
                      run={"id": "r-1", "tokens": 42, "elapsed_seconds": 1.5, "cost_usd": 0.0})
    assert build_input(wf, "a", ctx, entry_gets_run_inputs=False) == {"round": 1, "of": 5, "run": "r-1 42"}
