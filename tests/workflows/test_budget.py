"""The budget rules, without Temporal."""

from __future__ import annotations

from dsl import ir
from workflows.budget import budget_exceeded, new_budget_warnings


def test_budget_rules() -> None:
    budget = ir.Budget(max_iterations=10, max_tokens=100)
    assert budget_exceeded(budget, {"iterations": 9}, before_step=True) is None
    assert budget_exceeded(budget, {"iterations": 10}, before_step=True).dimension == "iterations"  # type: ignore[union-attr]
    assert budget_exceeded(budget, {"tokens": 130}, before_step=False).dimension == "tokens"  # type: ignore[union-attr]
    assert [w.dimension for w in new_budget_warnings(budget, {"tokens": 80, "iterations": 8}, [])] == ["iterations", "tokens"]
    assert new_budget_warnings(budget, {"tokens": 80}, ["tokens"]) == []
