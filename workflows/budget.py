"""The run's budget rules: what has been used, which limit is near, which is exhausted.

Plain functions over plain data; the workflow passes the clock in (`workflow.now()`), so a replay
reaches the same verdict at the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dsl import ir


@dataclass
class BudgetCheck:
    dimension: str
    used: float
    limit: float

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit else 0.0


def used_so_far(budget_used: dict[str, float], started_at: str, now: datetime) -> dict[str, float]:
    """The counted dimensions plus the run's duration (`duration_s`) at ``now``."""
    used = dict(budget_used)
    start = datetime.fromisoformat(started_at) if started_at else now
    used["duration_s"] = (now - start).total_seconds()
    return used


def budget_dimensions(budget: ir.Budget | None, used: dict[str, float]) -> list[BudgetCheck]:
    """(dimension, used, limit) for every limit that is set, in a fixed order."""
    if budget is None:
        return []
    limits = (
        ("iterations", float(budget.max_iterations)),
        ("tokens", float(budget.max_tokens)),
        ("cost_usd", float(budget.max_cost_usd)),
        ("duration_s", float(budget.max_duration_seconds or 0.0)),
    )
    return [BudgetCheck(dim, used.get(dim, 0.0), limit) for dim, limit in limits if limit > 0]


def budget_exceeded(budget: ir.Budget | None, used: dict[str, float], *, before_step: bool) -> BudgetCheck | None:
    """The first exhausted dimension. Before a step, a step that would overrun iterations counts."""
    for check in budget_dimensions(budget, used):
        if before_step and check.dimension == "iterations":
            if check.used + 1 > check.limit:
                return check
        elif check.used >= check.limit:
            return check
    return None


def new_budget_warnings(budget: ir.Budget | None, used: dict[str, float], warned: list[str]) -> list[BudgetCheck]:
    """Dimensions that crossed 80% for the first time (the caller records them as warned)."""
    return [c for c in budget_dimensions(budget, used) if c.ratio >= 0.8 and c.dimension not in warned]
