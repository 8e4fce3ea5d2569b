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


# -- live control: limits raised while a run runs, and the loop budget guard ---------------------

#: Budget dimension → the `ir.Budget` field that limits it (what `iterloop budget` raises).
LIMIT_FIELDS: dict[str, str] = {"cost_usd": "max_cost_usd", "tokens": "max_tokens", "iterations": "max_iterations",
                                "duration_s": "max_duration_seconds"}
#: The command-line flag that raises each dimension, named in messages that say how to go on.
LIMIT_FLAGS: dict[str, str] = {"cost_usd": "--max-cost-usd", "tokens": "--max-tokens",
                               "iterations": "--max-iterations", "duration_s": "--max-duration"}


def effective_budget(budget: ir.Budget | None, raised: dict[str, float]) -> ir.Budget | None:
    """The workflow's budget with the limits raised live (`RunState.budget_limits`) in force."""
    if budget is None or not raised:
        return budget
    update: dict[str, float | int] = {}
    for dim, limit in raised.items():
        field = LIMIT_FIELDS[dim]
        update[field] = int(limit) if field in ("max_tokens", "max_iterations") else float(limit)
    return budget.model_copy(update=update)


def current_limits(budget: ir.Budget | None) -> dict[str, float]:
    """Every dimension's limit (0 = none), by dimension."""
    if budget is None:
        return {dim: 0.0 for dim in LIMIT_FIELDS}
    return {dim: float(getattr(budget, field) or 0.0) for dim, field in LIMIT_FIELDS.items()}


def raise_problem(budget: ir.Budget | None, limits: dict[str, float]) -> str | None:
    """Why a live raise to ``limits`` is refused (None: it is taken). Limits only go up: a raise
    that lowers one, or sets one the workflow does not limit (which would make it stricter), would
    stop a run its author let go on."""
    if not limits:
        return "nothing to raise: give at least one of --max-cost-usd, --max-tokens, --max-iterations, --max-duration"
    now = current_limits(budget)
    problems = []
    for dim, limit in limits.items():
        flag = LIMIT_FLAGS[dim]
        if now[dim] <= 0:
            problems.append(f"{flag}: the run has no {dim} limit, so there is nothing to raise")
        elif not limit > now[dim]:
            problems.append(f"{flag} {limit:g}: limits only go up; the {dim} limit is {now[dim]:g} now, give more")
    return "; ".join(problems) or None


def grant_problem(wf: ir.Workflow, loop: str, iterations: int) -> str | None:
    """Why granting ``iterations`` more rounds to ``loop`` is refused (None: it is taken)."""
    if loop not in wf.loops:
        return (f"--grant {loop}={iterations}: workflow '{wf.name}' has no loop '{loop}'; loops: "
                f"{', '.join(sorted(wf.loops)) or '(none)'}")
    if iterations < 1:
        return f"--grant {loop}={iterations}: grant at least 1 more iteration"
    return None


def granted_counters(loop_counters: dict[str, int], grants: dict[str, int]) -> dict[str, int]:
    """The loop counters edge selection compares with each loop's bound: a loop granted N more
    rounds is N rounds further from its bound (the run's own counters are left as they are)."""
    if not grants:
        return loop_counters
    return {**loop_counters, **{name: loop_counters.get(name, 0) - n for name, n in grants.items()}}


#: The dimensions a round of a loop spends and the guard prices it in.
GUARDED = ("cost_usd", "tokens")


def round_spend(used: dict[str, float], mark: dict[str, float] | None, region_usage: dict[str, float]) -> dict[str, float]:
    """What the previous round of a loop spent: the budget used since its back edge was last taken
    (``mark``), or, the first time round, what the nodes of its region have spent so far."""
    if mark is None:
        return {dim: region_usage.get(dim, 0.0) for dim in GUARDED}
    return {dim: max(0.0, used.get(dim, 0.0) - mark.get(dim, 0.0)) for dim in GUARDED}


def round_unaffordable(budget: ir.Budget | None, used: dict[str, float], estimate: dict[str, float]) -> BudgetCheck | None:
    """The loop budget guard's rule: the first limited dimension (cost, then tokens) whose remaining
    budget is less than another round like the previous one would spend (None: the round fits, or
    nothing is limited, or the previous round spent nothing). The `BudgetCheck`'s ``used`` is the
    estimate and its ``limit`` the remaining budget."""
    for check in budget_dimensions(budget, used):
        if check.dimension not in GUARDED:
            continue
        need = estimate.get(check.dimension, 0.0)
        remaining = check.limit - check.used
        if need > 0 and remaining < need:
            return BudgetCheck(check.dimension, need, max(0.0, remaining))
    return None
