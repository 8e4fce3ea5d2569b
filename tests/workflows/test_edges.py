"""Edge selection and loops, without Temporal."""

from __future__ import annotations

import pytest

import dsl
from dsl import ir
from dsl.expressions import ExpressionError, Scope
from workflows.edges import bounded_counters, inner_loops, loop_bound_value, loop_regions, select_edge


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
    edge = select_edge(CHAIN, "a", {"approved": True}, {})
    assert edge is not None and edge.target == "done"


def test_negated_condition_and_loop_exhaustion_falls_back() -> None:
    assert select_edge(CHAIN, "a", {"approved": False}, {}).target == "fix"  # type: ignore[union-attr]
    assert select_edge(CHAIN, "a", {"approved": False}, {"retry": 2}).target == "fail"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [None, "true", 1])
def test_missing_or_non_boolean_field_matches_no_condition(value: object) -> None:
    output = {} if value is None else {"approved": value}
    assert select_edge(CHAIN, "a", output, {}).target == "fail"  # type: ignore[union-attr]


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
    regions = loop_regions(NESTED)
    assert regions["monitoring"] == {"look"}
    # `fixes` marks the edge into the detour; its region is still the detour's natural loop.
    assert regions["fixes"] == {"look", "fix"}
    assert regions["cycle"] == {"plan", "look", "fix", "side"}


def test_inner_loops_are_those_strictly_inside_another() -> None:
    assert inner_loops(NESTED) == {"cycle": ["fixes", "monitoring"], "fixes": ["monitoring"], "monitoring": []}


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
    assert inner_loops(wf) == {"first": [], "second": []}


EXPRESSIONS = compile_ok("""
vars:
  target: float = 0.02
schema readout:
  lift: float
  srm: bool
agent analyst:
  model: "m"
  output: readout
agent ship:
  model: "m"
agent hold:
  model: "m"
workflow w:
  entry: analyst
  analyst -> ship when "lift > vars.target && !srm"
  analyst -> fail when "srm"
  analyst -> hold when else
  ship -> done
  hold -> done
""")


@pytest.mark.parametrize(("output", "target"), [
    ({"lift": 0.05, "srm": False}, "ship"),
    ({"lift": 0.05, "srm": True}, "fail"),
    ({"lift": 0.01, "srm": False}, "hold"),
    ({"lift": 0.01}, "hold"),  # an absent field is null, and null is false
])
def test_expression_conditions_are_tried_in_order_and_else_takes_the_rest(output: dict[str, object],
                                                                          target: str) -> None:
    edge = select_edge(EXPRESSIONS, "analyst", output, {}, Scope(vars={"target": 0.02}))
    assert edge is not None and edge.target == target


def test_an_expression_that_cannot_be_evaluated_raises_the_languages_error() -> None:
    with pytest.raises(ExpressionError, match="cannot compare string 'high' > float 0.02"):
        select_edge(EXPRESSIONS, "analyst", {"lift": "high", "srm": False}, {}, Scope(vars={"target": 0.02}))


EXHAUSTION_EXIT = compile_ok("""
agent fix:
  model: "m"
workflow w:
  entry: fix
  fix -> done
  fix -> fix as again(2)
""")


def test_a_loop_back_edge_beside_a_plain_edge_is_taken_until_the_loop_is_exhausted() -> None:
    taken = [select_edge(EXHAUSTION_EXIT, "fix", {}, {"again": n}) for n in range(3)]
    assert [e.target if e else None for e in taken] == ["fix", "fix", "done"]


DATA_BOUND = compile_ok("""
vars:
  n: int = 2
agent a:
  model: "m"
workflow w:
  entry: a
  a -> a as again("vars.n")
  a -> done
""")


def test_a_data_bound_is_checked_and_brings_the_loop_that_much_closer_to_its_ceiling() -> None:
    assert loop_bound_value(DATA_BOUND, "again", 2.0) == 2
    assert loop_bound_value(DATA_BOUND, "again", "3") == 3
    for bad in (-1, 1001, "many", True, None):
        with pytest.raises(ValueError, match="the bound of loop 'again'"):
            loop_bound_value(DATA_BOUND, "again", bad)
    counters = bounded_counters(DATA_BOUND, {"again": 1}, {"again": 2})
    assert select_edge(DATA_BOUND, "a", {}, counters).target == "a"  # type: ignore[union-attr]
    counters = bounded_counters(DATA_BOUND, {"again": 2}, {"again": 2})
    assert select_edge(DATA_BOUND, "a", {}, counters).target == "done"  # type: ignore[union-attr]
