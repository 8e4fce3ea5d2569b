"""The pure graph semantics, without Temporal."""

from __future__ import annotations

import pytest

import dsl
from dsl import ir
from workflows import scheduler as S


def compile_ok(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


CHAIN = compile_ok("""
schema v:
  approved: bool
agent a:
  model: "m"
  output: v
agent fix:
  model: "m"
workflow w:
  entry: a
  a -> fix when not approved as retry(2)
  a -> done when approved
  a -> fail
  fix -> a
""")


def test_matching_condition_beats_earlier_fallback() -> None:
    edge = S.select_edge(CHAIN, "a", {"approved": True}, {})
    assert edge is not None and edge.target == "done"


def test_negated_condition_and_loop_exhaustion_falls_back() -> None:
    assert S.select_edge(CHAIN, "a", {"approved": False}, {}).target == "fix"  # type: ignore[union-attr]
    assert S.select_edge(CHAIN, "a", {"approved": False}, {"retry": 2}).target == "fail"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [None, "true", 1])
def test_missing_or_non_boolean_field_matches_no_condition(value: object) -> None:
    output = {} if value is None else {"approved": value}
    assert S.select_edge(CHAIN, "a", output, {}).target == "fail"  # type: ignore[union-attr]


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
    ctx = S.DataContext(vars={"topic": "pricing"}, outputs={"a": {"approved": True, "summary": "ok"}},
                        history={"a": [{"approved": False, "summary": "first"}, {"approved": True, "summary": "ok"}]})
    got = S.build_input(MAPPED, "b", ctx)
    assert got["whole"] == {"approved": True, "summary": "ok"}
    assert got["flag"] is True
    assert got["text"] == "About pricing: ok"
    assert got["via_input"] == "ok"
    assert [h["summary"] for h in got["history"]] == ["first", "ok"]


def test_entry_without_mappings_gets_vars_and_run_inputs() -> None:
    ctx = S.DataContext(vars={"topic": "pricing"}, run_inputs={"code": "x"})
    assert S.build_input(MAPPED, "a", ctx) == {"topic": "pricing", "code": "x"}
    assert S.initial_vars(MAPPED, {"topic": "churn", "other": 1}) == {"topic": "churn"}


def test_command_values_are_shell_quoted() -> None:
    ctx = S.DataContext(vars={"name": "x; rm -rf /"})
    rendered = S.render_command("echo {{vars.name}} {{input.n}}", ctx, {"n": 3})
    assert rendered == "echo 'x; rm -rf /' 3"


FAN = compile_ok("""
agent a:
  model: "m"
  tools: [write_file]
agent b:
  model: "m"
  readonly: true
tool t:
  command: "make"
router r:
  mode: fan_out_all
join j:
  strategy: best_effort
workflow w:
  entry: r
  r -> a
  r -> b
  r -> t
  a -> j
  b -> j
  t -> j
  j -> done
""")


def test_convergence_and_mutating_branches() -> None:
    assert S.find_convergence(FAN, ["a", "b", "t"]) == "j"
    assert S.convergence_strategy(FAN, "j") == "best_effort"
    assert S.mutating_branches(FAN, ["a", "b", "t"], "j") == ["a", "t"]


def test_answers_are_coerced_and_validated() -> None:
    schema = ir.Schema(name="s", fields=[ir.SchemaField(name="approved", type="bool"),
                                        ir.SchemaField(name="level", type="string", enum_values=["low", "high"]),
                                        ir.SchemaField(name="n", type="int")])
    assert S.coerce_answers(schema, {"approved": "yes", "level": "high", "n": "4"}, gate="g") == {
        "approved": True, "level": "high", "n": 4}
    with pytest.raises(S.AnswerError, match="needs field 'n'"):
        S.coerce_answers(schema, {"approved": True, "level": "low"}, gate="g")
    with pytest.raises(S.AnswerError, match="one of low, high"):
        S.coerce_answers(schema, {"approved": True, "level": "mid", "n": 1}, gate="g")
    with pytest.raises(S.AnswerError, match="no field 'aproved'"):
        S.coerce_answers(schema, {"aproved": True, "level": "low", "n": 1}, gate="g")


def test_budget_rules() -> None:
    budget = ir.Budget(max_iterations=10, max_tokens=100)
    assert S.budget_exceeded(budget, {"iterations": 9}, before_step=True) is None
    assert S.budget_exceeded(budget, {"iterations": 10}, before_step=True).dimension == "iterations"  # type: ignore[union-attr]
    assert S.budget_exceeded(budget, {"tokens": 130}, before_step=False).dimension == "tokens"  # type: ignore[union-attr]
    assert [w.dimension for w in S.new_budget_warnings(budget, {"tokens": 80, "iterations": 8}, [])] == ["iterations", "tokens"]
    assert S.new_budget_warnings(budget, {"tokens": 80}, ["tokens"]) == []


NESTED = compile_ok("""
schema s:
  more: bool
  again: bool
agent plan:
  model: "m"
  output: s
agent look:
  model: "m"
  output: s
agent fix:
  model: "m"
  output: s
agent side:
  model: "m"
  output: s
workflow w:
  entry: plan
  plan -> look
  look -> look when more as monitoring(3)
  look -> fix when again as fixes(2)
  look -> side
  fix -> look
  side -> plan when again as cycle(5)
  side -> done
""")


def test_loop_regions_are_the_innermost_natural_loops_of_their_edges() -> None:
    regions = S.loop_regions(NESTED)
    assert regions["monitoring"] == {"look"}
    # `fixes` marks the edge into the detour; its region is still the detour's natural loop.
    assert regions["fixes"] == {"look", "fix"}
    assert regions["cycle"] == {"plan", "look", "fix", "side"}


def test_inner_loops_are_those_strictly_inside_another() -> None:
    assert S.inner_loops(NESTED) == {"cycle": ["fixes", "monitoring"], "fixes": ["monitoring"], "monitoring": []}


def test_loops_sharing_a_body_do_not_reset_each_other() -> None:
    wf = compile_ok("""
schema s:
  a: bool
  b: bool
agent x:
  model: "m"
  output: s
agent y:
  model: "m"
  output: s
workflow w:
  entry: x
  x -> y
  y -> x when a as first(2)
  y -> x when b as second(2)
  y -> done
""")
    assert S.inner_loops(wf) == {"first": [], "second": []}
