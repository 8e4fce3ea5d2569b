"""Edge selection and loops, without Temporal."""

from __future__ import annotations

import pytest

import dsl
from dsl import ir
from workflows.edges import inner_loops, loop_regions, select_edge


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
