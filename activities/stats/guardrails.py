"""Guardrails: metrics that must not get worse (by more than a tolerated margin) while the primary moves.

Each guardrail gets one-sided tests on the "goodness" scale g (the change in the metric's good
direction, relative by default), against a margin m >= 0:

* regression: H0 g >= -m vs H1 g < -m. Rejecting means the metric dropped by more than the margin
  with confidence; that is the "did it get worse?" test that kills or rolls back an experiment.
  With m = 0 it is exactly GrowthBook's guardrail test.
* non-inferiority: H0 g <= -m vs H1 g > -m. Rejecting proves the drop, if any, is within the
  margin; required for shipping only when a team asks for it (``require_non_inferiority``).

One-sided at ``alpha`` (default 0.05) because only one direction is a risk, and never part of the
multiple-comparison family (see ``corrections.py``). Under sequential monitoring the two-sided
always-valid sequence is used for each side, which keeps each one-sided error below alpha at
every look (conservative, since each side gets the whole alpha budget of a two-sided sequence).
A guardrail without the minimum data is reported as such and not tested.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field
from scipy import stats

from activities.stats import defaults
from activities.stats.arms import Metric
from activities.stats.effects import EffectEstimate, check_alpha, compare, format_change
from activities.stats.errors import StatsInputError
from activities.stats.sample_guard import SampleGuardResult, check_minimum_sample
from activities.stats.sequential import always_valid_p_value, sequential_critical_value

GuardrailStatus = Literal["regressed", "non_inferior", "not_established", "insufficient_data"]


class Guardrail(BaseModel):
    metric: Metric
    margin: float = Field(default=0.0, ge=0, description="Largest tolerated worsening, on margin_type's scale")
    margin_type: Literal["relative", "absolute"] = "relative"


class GuardrailResult(BaseModel):
    metric: str
    #: The treatment arm the guardrail compares with control.
    variant: str = "treatment"
    status: GuardrailStatus
    margin: float
    margin_type: Literal["relative", "absolute"]
    alpha: float
    sequential: bool
    #: Observed change on margin_type's scale (natural sign: negative = the metric went down).
    effect: float | None
    #: The one-sided 1 - alpha bound on the bad side: the worst change still plausible.
    worst_plausible_effect: float | None
    p_regression: float | None
    p_non_inferiority: float | None
    estimate: EffectEstimate | None
    sample_guard: SampleGuardResult
    message: str


def check_guardrail(
    guardrail: Guardrail,
    *,
    alpha: float = defaults.GUARDRAIL_ALPHA,
    sequential_tuning: float | None = None,
    min_units: int = defaults.MIN_UNITS_PER_ARM,
    min_conversions: int = defaults.MIN_CONVERSIONS_PER_ARM,
    cuped: bool = True,
) -> GuardrailResult:
    """One-sided regression and non-inferiority tests of one guardrail metric (CUPED-adjusted when
    ``cuped`` and both arms carry a covariate)."""
    check_alpha(alpha)
    metric = guardrail.metric
    relative = guardrail.margin_type == "relative"
    guard = check_minimum_sample(metric, min_units=min_units, min_conversions=min_conversions)
    base = {"metric": metric.name, "variant": metric.variant, "margin": guardrail.margin,
            "margin_type": guardrail.margin_type, "alpha": alpha, "sequential": sequential_tuning is not None,
            "sample_guard": guard}
    label = f"guardrail '{metric.name}'" + ("" if metric.variant == "treatment" else f" ({metric.variant})")
    if not guard.passed:
        return GuardrailResult(
            **base, status="insufficient_data", effect=None, worst_plausible_effect=None, p_regression=None,
            p_non_inferiority=None, estimate=None,
            message=f"{label} not tested yet: " + "; ".join(guard.shortfalls),
        )

    est = compare(metric, alpha=alpha, cuped=cuped)
    if relative:
        if est.relative_lift is None or est.relative_standard_error is None:
            raise StatsInputError(
                f"{label}: a relative margin needs a positive control mean, got {est.control_mean}; "
                "use margin_type='absolute'"
            )
        effect, se = est.relative_lift, est.relative_standard_error
    else:
        effect, se = est.absolute_diff, est.standard_error
    sign = 1.0 if metric.higher_is_better else -1.0
    goodness = sign * effect
    distance = goodness + guardrail.margin  # > 0: inside the margin, < 0: beyond it
    if se > 0:
        z = distance / se
    else:
        z = 0.0 if distance == 0 else math.copysign(math.inf, distance)

    if sequential_tuning is None:
        dist = stats.norm if est.df is None else stats.t(est.df)
        p_reg, p_ni = float(dist.cdf(z)), float(dist.sf(z))
        bound = float(dist.ppf(1 - alpha))
    else:
        n_total = est.n_control + est.n_treatment
        p_two = 0.0 if math.isinf(z) else always_valid_p_value(z, n_total, alpha=alpha, tuning=sequential_tuning)
        p_reg = p_two if z < 0 else 1.0
        p_ni = p_two if z > 0 else 1.0
        bound = sequential_critical_value(n_total, alpha=alpha, tuning=sequential_tuning)
    worst = sign * (goodness - bound * se)

    shown = format_change(effect, relative=relative)
    how_bad = (
        f"beyond the {format_change(-sign * guardrail.margin, relative=relative)} margin"
        if guardrail.margin else "a significant worsening"
    )
    status: GuardrailStatus
    if p_reg < alpha:
        status = "regressed"
        message = f"{label} regressed: {shown} vs control, {how_bad} (one-sided p={p_reg:.3g})"
    elif p_ni < alpha:
        status = "non_inferior"
        message = f"{label} holds: {shown}, worst plausible {format_change(worst, relative=relative)}"
    else:
        status = "not_established"
        message = (
            f"{label} shows no significant regression ({shown}, one-sided p={p_reg:.3g}) "
            f"but a change as bad as {format_change(worst, relative=relative)} is not ruled out"
        )
    return GuardrailResult(
        **base, status=status, effect=effect, worst_plausible_effect=worst, p_regression=p_reg,
        p_non_inferiority=p_ni, estimate=est, message=message,
    )
