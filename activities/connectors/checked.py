"""Numbers from a source, checked at the connector boundary before they become answers.

The models (`activities.connectors.models`) refuse infinite and NaN numbers, but pydantic's
message names neither the connector, the experiment nor the metric. A non-finite count or mean in
a wire answer (JSON allows `NaN` and `Infinity` in Python's parser; GA4 sends numbers as strings;
a warehouse query can divide by zero) would otherwise become an "infinite mean ships" verdict or a
bare `ValueError` that Temporal retries for nothing. Every connector builds its arms through
`checked_arm`, so such an answer is one non-retryable `ConnectorError` that says where the number
came from and what to check.

Arms are also kept **by name and in the source's order**: `checked_arms` refuses two arms with the
same name and never sorts, so position carries no meaning (the statistics tools find the control
by its name) and no arm is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from activities.connectors.models import VariantResult, variant_result
from activities.errors import ConnectorError

#: Optional per-arm fields, all floats (see `VariantResult`).
FLOAT_FIELDS: tuple[str, ...] = (
    "revenue_mean", "revenue_sd", "value_mean", "value_sd", "capped_at", "pre_mean", "pre_sd", "pre_covariance",
    "numerator_mean", "numerator_sd", "denominator_mean", "denominator_sd", "numerator_denominator_covariance")


class ArmContext:
    """Where a number comes from: connector, experiment, metric (for the error message)."""

    def __init__(self, source: str, experiment_key: str, metric: str) -> None:
        self.source, self.experiment_key, self.metric = source, experiment_key, metric

    def where(self, variant: str | None = None) -> str:
        arm = f", variant '{variant}'" if variant is not None else ""
        return f"{self.source}: experiment '{self.experiment_key}', metric '{self.metric}'{arm}"

    def invalid(self, variant: str | None, field: str, value: Any, expected: str) -> ConnectorError:
        return ConnectorError(
            f"{self.where(variant)}: field '{field}' is {value!r}, expected {expected}. The source's answer "
            f"cannot be judged; check the metric's definition in {self.source} (a division by zero, an empty "
            "or corrupt value) and read the results again.",
            details={"source": self.source, "experiment_key": self.experiment_key, "metric": self.metric,
                     "variant": variant, "field": field, "value": repr(value)})


def finite_number(value: Any, ctx: ArmContext, variant: str | None, field: str) -> float:
    """``value`` (a number or a numeric string) as a finite float, else a `ConnectorError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ctx.invalid(variant, field, value, "a finite number") from None
    if not math.isfinite(number):
        raise ctx.invalid(variant, field, value, "a finite number")
    return number


def finite_count(value: Any, ctx: ArmContext, variant: str | None, field: str) -> int:
    """``value`` as a whole, non-negative count (`"20000"`, `20000.0`), else a `ConnectorError`."""
    number = finite_number(0 if value is None else value, ctx, variant, field)
    if number < 0 or number != int(number):
        raise ctx.invalid(variant, field, value, "a whole number of users, 0 or more")
    return int(number)


def checked_arm(ctx: ArmContext, variant: Any, users: Any, conversions: Any,
                **extra: Any) -> VariantResult:
    """A `VariantResult` whose every number was checked finite (``None`` extras stay ``None``)."""
    name = str(variant)
    floats = {}
    for field, value in extra.items():
        if field not in FLOAT_FIELDS:
            raise TypeError(f"checked_arm: unknown field {field!r}")
        floats[field] = None if value is None else finite_number(value, ctx, name, field)
    return variant_result(name, finite_count(users, ctx, name, "users"),
                          finite_count(conversions, ctx, name, "conversions"), **floats)


def checked_arms(ctx: ArmContext, arms: Iterable[VariantResult]) -> list[VariantResult]:
    """``arms`` in the source's order, refusing a name seen twice (the tools pick arms by name)."""
    out: list[VariantResult] = []
    seen: set[str] = set()
    for arm in arms:
        if arm.variant in seen:
            raise ctx.invalid(arm.variant, "variant", arm.variant, "each arm's name once")
        seen.add(arm.variant)
        out.append(arm)
    return out


def mean_and_sd(n: int, total: float, total_of_squares: float) -> tuple[float, float]:
    """The mean and sample standard deviation of ``n`` per-unit values from their sum and sum of
    squares (portable SQL: SQLite has no STDDEV). One unit has sd 0, not a division by zero."""
    mean = total / n
    var = (total_of_squares - n * mean * mean) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(max(var, 0.0))


def sample_covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    """The sample covariance of two per-unit values from their sums (0 for a single unit)."""
    if n <= 1:
        return 0.0
    return (sum_xy - sum_x * sum_y / n) / (n - 1)
