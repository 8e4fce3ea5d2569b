"""The pure live-control budget rules (`workflows.budget`): raised limits, refusals, loop grants,
and the loop budget guard's pricing of a round. No server."""

from __future__ import annotations

import dsl
from dsl import ir
from workflows.budget import (
    effective_budget,
    grant_problem,
    granted_counters,
    raise_problem,
    round_spend,
    round_unaffordable,
)

LOOP = """\
agent a:
  model: "scripted"
workflow w:
  entry: a
  a -> a as again(2)
  a -> done
"""


def test_raised_limits_replace_the_workflows_own() -> None:
    budget = ir.Budget(max_cost_usd=1.0, max_tokens=100)
    raised = effective_budget(budget, {"cost_usd": 5.0, "tokens": 300.0})
    assert raised is not None and (raised.max_cost_usd, raised.max_tokens) == (5.0, 300)
    assert effective_budget(budget, {}) is budget


def test_a_raise_must_go_above_the_limit_in_force() -> None:
    budget = ir.Budget(max_cost_usd=1.0)
    assert raise_problem(budget, {"cost_usd": 2.0}) is None
    assert "limits only go up; the cost_usd limit is 1 now" in (raise_problem(budget, {"cost_usd": 1.0}) or "")


def test_a_raise_of_a_dimension_without_a_limit_is_refused() -> None:
    problem = raise_problem(ir.Budget(max_cost_usd=1.0), {"tokens": 500.0})
    assert problem == "--max-tokens: the run has no tokens limit, so there is nothing to raise"


def test_a_raise_with_no_limit_is_refused() -> None:
    assert "nothing to raise" in (raise_problem(ir.Budget(max_cost_usd=1.0), {}) or "")


def test_a_grant_names_a_loop_of_the_workflow_and_at_least_one_round() -> None:
    wf = dsl.check_source(LOOP).workflow
    assert wf is not None
    assert grant_problem(wf, "again", 1) is None
    assert "has no loop 'other'; loops: again" in (grant_problem(wf, "other", 1) or "")
    assert "at least 1" in (grant_problem(wf, "again", 0) or "")


def test_granted_rounds_move_a_loop_away_from_its_bound() -> None:
    assert granted_counters({"again": 2, "other": 1}, {"again": 3}) == {"again": -1, "other": 1}
    counters = {"again": 2}
    assert granted_counters(counters, {}) is counters


def test_a_round_is_priced_at_what_the_previous_one_spent() -> None:
    used = {"cost_usd": 0.5, "tokens": 900.0}
    assert round_spend(used, {"cost_usd": 0.3, "tokens": 400.0}, {}) == {"cost_usd": 0.2, "tokens": 500.0}
    # the first time round: what the loop's nodes have spent so far
    assert round_spend(used, None, {"cost_usd": 0.1, "tokens": 50.0}) == {"cost_usd": 0.1, "tokens": 50.0}


def test_the_guard_stops_a_round_the_remaining_budget_cannot_pay() -> None:
    budget = ir.Budget(max_cost_usd=1.0, max_tokens=10_000)
    short = round_unaffordable(budget, {"cost_usd": 0.85, "tokens": 100.0}, {"cost_usd": 0.2, "tokens": 50.0})
    assert short is not None and (short.dimension, short.used) == ("cost_usd", 0.2)
    assert round(short.limit, 6) == 0.15
    assert round_unaffordable(budget, {"cost_usd": 0.7}, {"cost_usd": 0.2}) is None
    assert round_unaffordable(budget, {"cost_usd": 0.99}, {"cost_usd": 0.0}) is None  # a free round always fits
    assert round_unaffordable(ir.Budget(max_iterations=3), {"cost_usd": 5.0}, {"cost_usd": 1.0}) is None
