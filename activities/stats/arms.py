"""Per-arm summary statistics and the metric shapes the tests consume.

Everything here is a sufficient statistic (counts, or n/mean/spread), never unit-level rows: that
is what connectors return and what fits in a workflow's history.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator


class ProportionArm(BaseModel):
    """One arm of a conversion metric: how many units were exposed and how many converted."""

    users: int = Field(ge=0, description="Units (users) assigned to the arm")
    conversions: int = Field(ge=0, description="Units that converted at least once")

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
    def variance(self) -> float:
        """Bernoulli variance p(1-p) of one unit."""
        return self.rate * (1.0 - self.rate)


class MeanArm(BaseModel):
    """One arm of a continuous metric, from summary statistics: n, mean and sd *or* variance."""

    n: int = Field(ge=0, description="Units in the arm")
    mean: float = Field(description="Sample mean of the metric per unit")
    sd: float | None = Field(default=None, ge=0, description="Sample standard deviation (give this or variance)")
    variance: float | None = Field(default=None, ge=0, description="Sample variance (give this or sd)")

    @model_validator(mode="after")
    def _one_spread(self) -> MeanArm:
        if self.sd is None and self.variance is None:
            raise ValueError("a continuous arm needs its spread: give sd or variance")
        if self.sd is None:
            self.sd = math.sqrt(self.variance)  # type: ignore[arg-type]
        elif self.variance is None:
            self.variance = self.sd**2
        elif not math.isclose(self.sd**2, self.variance, rel_tol=1e-6, abs_tol=1e-12):
            raise ValueError(f"sd ({self.sd}) and variance ({self.variance}) disagree; give only one of them")
        return self

    @property
    def var(self) -> float:
        return float(self.variance)  # set by the validator


class ConversionMetric(BaseModel):
    """A binary per-unit metric (converted or not), compared with the two-proportion z-test."""

    kind: Literal["conversion"] = "conversion"
    name: str = "primary"
    higher_is_better: bool = True
    control: ProportionArm
    treatment: ProportionArm


class ContinuousMetric(BaseModel):
    """A per-unit numeric metric (revenue, sessions), compared with Welch's t-test."""

    kind: Literal["continuous"] = "continuous"
    name: str = "primary"
    higher_is_better: bool = True
    control: MeanArm
    treatment: MeanArm


Metric = Annotated[ConversionMetric | ContinuousMetric, Field(discriminator="kind")]
