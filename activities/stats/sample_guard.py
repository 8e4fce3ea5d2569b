"""Minimum data before anything is called.

The tests rest on normal approximations and on the sample representing the population. With a
handful of users per arm (or a handful of conversions) neither holds: early lifts of +40% are
routine noise. So no verdict is issued until every arm has at least 150 units (GrowthBook's
minimum sample size; Optimizely uses 100) and, for conversion metrics, np > 5 and n(1-p) > 5
(PostHog), i.e. at least 6 conversions and 6 non-conversions per arm.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.stats import defaults
from activities.stats.arms import ConversionMetric, Metric


class SampleGuardResult(BaseModel):
    metric: str
    passed: bool
    min_units: int
    min_conversions: int
    #: One line per unmet requirement, e.g. "control has 120 units (needs 150)".
    shortfalls: list[str]


def check_minimum_sample(
    metric: Metric,
    *,
    min_units: int = defaults.MIN_UNITS_PER_ARM,
    min_conversions: int = defaults.MIN_CONVERSIONS_PER_ARM,
) -> SampleGuardResult:
    """Whether each arm of ``metric`` has enough units (and conversions) for a verdict."""
    shortfalls: list[str] = []
    for arm_name, arm in (("control", metric.control), (metric.variant, metric.treatment)):
        if arm.n < min_units:
            shortfalls.append(f"{arm_name} has {arm.n} units (needs {min_units})")
        if isinstance(metric, ConversionMetric):
            converted = arm.conversions  # type: ignore[union-attr]
            if converted < min_conversions:
                shortfalls.append(f"{arm_name} has {converted} conversions (needs {min_conversions})")
            if arm.n - converted < min_conversions:
                shortfalls.append(f"{arm_name} has {arm.n - converted} non-conversions (needs {min_conversions})")
    return SampleGuardResult(
        metric=metric.name,
        passed=not shortfalls,
        min_units=min_units,
        min_conversions=min_conversions,
        shortfalls=shortfalls,
    )
