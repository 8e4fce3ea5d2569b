"""What a connector answers, whatever the source: funnels, metric series, experiment results and
the learning history, as pydantic models (they are tool outputs, so they travel through workflow
history and reach the models' prompts).

- `FunnelData`: users at each step, conversions (`FunnelData.from_counts` computes them).
- `MetricSeries`: one value per day, week (starting Monday) or month.
- `ExperimentResults`: users and conversions per variant (`variant_result` computes the rate).
- `HistoricalExperiment`: a finished experiment and its verdict.
- `RatioMetric`: how a connector's settings define a metric as one metric over another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Granularity = Literal["day", "week", "month"]
Day = date  # for fields named `date`
GRANULARITIES: tuple[str, ...] = ("day", "week", "month")


class _Model(BaseModel):
    """Unknown fields are refused: a misspelt field in a connector's answer would vanish silently.
    Infinite and NaN numbers are refused too: one of them in an arm makes every statistic after it
    meaningless while still looking like a number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FunnelStep(_Model):
    name: str
    users: int
    conversion_from_previous: float = Field(description="users / users at the previous step (1.0 for the first)")
    conversion_from_start: float = Field(description="users / users at the first step")


class FunnelData(_Model):
    funnel: str
    segment: dict[str, str] = Field(default_factory=dict)
    start: date
    end: date
    steps: list[FunnelStep]

    @classmethod
    def from_counts(cls, funnel: str, counts: Iterable[tuple[str, int]], *, start: date, end: date,
                    segment: Mapping[str, str] | None = None) -> FunnelData:
        """Build a funnel from ``(step name, users)`` pairs in step order; 0/0 counts as 0.0."""
        steps: list[FunnelStep] = []
        first = previous = None
        for name, users in counts:
            users = int(users)
            first = users if first is None else first
            steps.append(FunnelStep(
                name=name, users=users,
                conversion_from_previous=1.0 if previous is None else _ratio(users, previous),
                conversion_from_start=1.0 if previous is None else _ratio(users, first)))
            previous = users
        return cls(funnel=funnel, segment=dict(segment or {}), start=start, end=end, steps=steps)

    def conversion(self, from_step: str, to_step: str) -> float:
        """Users at ``to_step`` / users at ``from_step`` (0.0 when nobody reached ``from_step``)."""
        users = {s.name: s.users for s in self.steps}
        return _ratio(users[to_step], users[from_step])


class MetricPoint(_Model):
    date: Day = Field(description="the day, or the first day of the week (Monday) or month")
    value: float
    segment: dict[str, str] | None = None


class MetricSeries(_Model):
    metric: str
    granularity: Granularity = "day"
    points: list[MetricPoint]


class VariantResult(_Model):
    variant: str
    users: int = Field(description="exposed users (the unit of randomisation)")
    conversions: int = Field(description="users who converted; for continuous metrics, users measured")
    conversion_rate: float
    revenue_mean: float | None = Field(None, description="revenue per user (USD)")
    revenue_sd: float | None = None
    value_mean: float | None = Field(None, description="per-user mean of a continuous metric")
    value_sd: float | None = None
    capped_at: float | None = Field(None, description="winsorisation: the per-unit cap applied before value_mean/"
                                                      "value_sd were computed (None: uncapped)")
    # CUPED: the same metric per unit over the pre-period (a unit without pre-period data counts 0)
    pre_mean: float | None = Field(None, description="CUPED covariate: per-unit mean of the metric before the start")
    pre_sd: float | None = Field(None, ge=0)
    pre_covariance: float | None = Field(None, description="covariance of a unit's pre-period and in-experiment values")
    # ratio metrics (metric_kind "ratio"): per-unit numerator and denominator, for the delta method
    numerator_mean: float | None = None
    numerator_sd: float | None = Field(None, ge=0)
    denominator_mean: float | None = None
    denominator_sd: float | None = Field(None, ge=0)
    numerator_denominator_covariance: float | None = None


class ExperimentResults(_Model):
    experiment_key: str
    metric: str
    metric_kind: Literal["conversion", "continuous", "ratio"] = "conversion"
    variants: list[VariantResult]
    as_of: datetime

    def variant(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(f"experiment '{self.experiment_key}' has no variant '{name}'; "
                       f"it has: {', '.join(v.variant for v in self.variants) or 'none yet'}")


class HistoricalExperiment(_Model):
    key: str
    hypothesis: str
    metric: str
    lift: float = Field(description="relative change of the metric, treatment vs control")
    p_value: float
    verdict: str = Field(description="SHIP_WINNER, KILL, ITERATE or INCONCLUSIVE")
    started: date
    ended: date
    segment: dict[str, str] = Field(default_factory=dict)


def variant_result(variant: str, users: int, conversions: int, **extra: float | None) -> VariantResult:
    """A `VariantResult` with its conversion rate computed (0.0 for an arm without users)."""
    return VariantResult(variant=variant, users=int(users), conversions=int(conversions),
                         conversion_rate=_ratio(conversions, users), **extra)


class RatioMetric(_Model):
    """A metric defined as one metric divided by another, e.g. checkout_conversion =
    purchases / checkout_starts. Both must be count (or sum) metrics of the same connector."""

    numerator: str
    denominator: str
    description: str = ""


def _ratio(a: float, b: float) -> float:
    """``a / b``, 0.0 when nobody is in ``b`` (an empty step converts nobody)."""
    return a / b if b else 0.0
