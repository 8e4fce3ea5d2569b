"""Per-arm summary statistics and the metric shapes the tests consume.

Everything here is a sufficient statistic (counts, or n/mean/spread), never unit-level rows: that
is what connectors return and what fits in a workflow's history. Every number must be finite
(``allow_inf_nan=False``): one infinite mean or NaN spread makes every statistic after it
meaningless while still looking like a number (an infinite mean "shipped", a NaN read as
INCONCLUSIVE "with 100% power", before this was checked).

Three metric kinds:
* ``ConversionMetric``: each unit converts or not (``ProportionArm``).
* ``ContinuousMetric``: a per-unit value, from n / mean / sd (``MeanArm``); winsorised values are
  taken as given (the connector caps them before aggregating).
* ``RatioMetric``: a ratio of two per-unit sums (revenue per session, randomised by user), from
  the per-unit means, spreads and covariance of numerator and denominator (``RatioArm``); it is
  compared with the delta method (``activities.stats.ratio``).

A conversion or continuous arm may carry ``pre``, its CUPED covariate (the same metric per unit
over the pre-period: mean, sd and its covariance with the in-experiment value); ``compare`` uses
it when both arms have one (``activities.stats.cuped``).

``variant`` names the treatment arm of a metric, so that a multi-arm experiment is a list of
metrics, one per treatment, each against the same control.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Finite(BaseModel):
    """Refuses infinite and NaN numbers (see the module docstring)."""

    model_config = ConfigDict(allow_inf_nan=False)


class Covariate(_Finite):
    """CUPED covariate of one arm: the metric per unit over the pre-period (a unit without
    pre-period data counts 0) and its covariance with the unit's in-experiment value."""

    mean: float = Field(description="Per-unit mean of the pre-period value")
    sd: float = Field(ge=0, description="Per-unit standard deviation of the pre-period value")
    covariance: float = Field(description="Sample covariance of a unit's pre-period and in-experiment values")


class ProportionArm(_Finite):
    """One arm of a conversion metric: how many units were exposed and how many converted."""

    users: int = Field(ge=0, description="Units (users) assigned to the arm")
    conversions: int = Field(ge=0, description="Units that converted at least once")
    pre: Covariate | None = Field(default=None, description="CUPED covariate, when the connector has one")

    @model_validator(mode="after")
    def _conversions_within_users(self) -> ProportionArm:
        if self.conversions > self.users:
            raise ValueError(
                f"conversions ({self.conversions}) exceed users ({self.users}); a conversion metric "
                "counts each converting user once, so conversions must be <= users"
            )
        return self

    @property
    def n(self) -> int:
        return self.users

    @property
    def rate(self) -> float:
        return self.conversions / self.users if self.users else 0.0

    @property
    def mean(self) -> float:
        return self.rate

    @property
    def variance(self) -> float:
        """Bernoulli variance p(1-p) of one unit."""
        return self.rate * (1.0 - self.rate)

    @property
    def var(self) -> float:
        return self.variance


class MeanArm(_Finite):
    """One arm of a continuous metric, from summary statistics: n, mean and sd *or* variance."""

    n: int = Field(ge=0, description="Units in the arm")
    mean: float = Field(description="Sample mean of the metric per unit")
    sd: float | None = Field(default=None, ge=0, description="Sample standard deviation (give this or variance)")
    variance: float | None = Field(default=None, ge=0, description="Sample variance (give this or sd)")
    pre: Covariate | None = Field(default=None, description="CUPED covariate, when the connector has one")

    @model_validator(mode="after")
    def _one_spread(self) -> MeanArm:
        if self.sd is None and self.variance is None:
            raise ValueError("a continuous arm needs its spread: give sd or variance")
        if self.sd is None:
            self.sd = math.sqrt(self.variance)  # type: ignore[arg-type]
        elif self.variance is None:
            self.variance = self.sd * self.sd  # a huge sd gives inf (refused below), not OverflowError
        elif not math.isclose(self.sd**2, self.variance, rel_tol=1e-6, abs_tol=1e-12):
            raise ValueError(f"sd ({self.sd}) and variance ({self.variance}) disagree; give only one of them")
        if not math.isfinite(self.variance):  # a finite but huge sd squares to inf
            raise ValueError(f"sd ({self.sd}) is too large to square; check the metric's units")
        return self

    @property
    def var(self) -> float:
        return float(self.variance)  # set by the validator


class RatioArm(_Finite):
    """One arm of a ratio metric (sum of X / sum of Y over the arm's units), from per-unit
    summary statistics of the numerator X and the denominator Y."""

    n: int = Field(ge=0, description="Units (the randomisation unit, e.g. users) in the arm")
    numerator_mean: float
    numerator_sd: float = Field(ge=0)
    denominator_mean: float
    denominator_sd: float = Field(ge=0)
    covariance: float = Field(description="Sample covariance of a unit's numerator and denominator")


class ConversionMetric(_Finite):
    """A binary per-unit metric (converted or not), compared with the two-proportion z-test."""

    kind: Literal["conversion"] = "conversion"
    name: str = "primary"
    variant: str = Field(default="treatment", description="The treatment arm's name")
    higher_is_better: bool = True
    control: ProportionArm
    treatment: ProportionArm


class ContinuousMetric(_Finite):
    """A per-unit numeric metric (revenue, sessions), compared with Welch's t-test."""

    kind: Literal["continuous"] = "continuous"
    name: str = "primary"
    variant: str = Field(default="treatment", description="The treatment arm's name")
    higher_is_better: bool = True
    control: MeanArm
    treatment: MeanArm


class RatioMetric(_Finite):
    """A ratio of per-unit sums (revenue per session), compared with the delta method."""

    kind: Literal["ratio"] = "ratio"
    name: str = "primary"
    variant: str = Field(default="treatment", description="The treatment arm's name")
    higher_is_better: bool = True
    control: RatioArm
    treatment: RatioArm


Metric = Annotated[ConversionMetric | ContinuousMetric | RatioMetric, Field(discriminator="kind")]
