"""Fixed-horizon comparison of one treatment against control: effect, interval, p-value.

Which test when:
* conversion metrics (each unit converts or not): two-proportion z-test. The p-value uses the
  pooled variance, which is the variance under the null of equal rates (the textbook test, same as
  ``statsmodels.stats.proportion.proportions_ztest``); intervals use the unpooled p(1-p)/n per arm,
  because they describe the effect where it is, not where the null puts it.
* continuous metrics from summary statistics: Welch's t-test, which does not assume the arms share
  a variance (a treatment often changes the spread as well as the mean).

Both report the absolute difference and the relative lift T/C - 1, the number growth teams quote.
The relative interval uses the delta method,
Var(lift) ~ s_T^2/(n_T C^2) + T^2 s_C^2/(n_C C^4), which treats the control mean in the
denominator as random too, so it is wider than naively dividing the absolute interval by C.
Relative numbers exist only when the control mean is positive.

Assumption: units are independent and the analysis unit is the randomisation unit. Both tests
lean on the central limit theorem, hence the minimum-sample guard before any verdict.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel
from scipy import stats

from activities.stats import defaults
from activities.stats.arms import ConversionMetric, MeanArm, Metric, ProportionArm
from activities.stats.errors import StatsInputError


class EffectEstimate(BaseModel):
    metric: str
    test: Literal["two_proportion_z", "welch_t"]
    higher_is_better: bool
    n_control: int
    n_treatment: int
    control_mean: float
    treatment_mean: float
    absolute_diff: float
    #: Unpooled standard error of the absolute difference.
    standard_error: float
    absolute_ci: tuple[float, float]
    relative_lift: float | None
    relative_standard_error: float | None
    relative_ci: tuple[float, float] | None
    #: z or t statistic of the test.
    statistic: float
    #: Welch-Satterthwaite degrees of freedom (None for the z-test).
    df: float | None
    p_value: float
    alpha: float
    significant: bool
    #: The point estimate moved in the metric's good direction (regardless of significance).
    improved: bool


def check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0 < alpha < 1:
        raise StatsInputError(f"{name} must be in (0, 1), got {alpha}")


def relative_lift_variance(
    control_mean: float,
    treatment_mean: float,
    control_var: float,
    treatment_var: float,
    n_control: int,
    n_treatment: int,
) -> float:
    """Delta-method variance of T/C - 1 for independent arms (per-unit variances given)."""
    c = control_mean
    return treatment_var / (n_treatment * c**2) + treatment_mean**2 * control_var / (n_control * c**4)


def _estimate(
    *,
    metric: str,
    test: Literal["two_proportion_z", "welch_t"],
    higher_is_better: bool,
    n_c: int,
    n_t: int,
    mean_c: float,
    mean_t: float,
    var_c: float,
    var_t: float,
    statistic: float,
    df: float | None,
    p_value: float,
    alpha: float,
) -> EffectEstimate:
    diff = mean_t - mean_c
    se = math.sqrt(var_c / n_c + var_t / n_t)
    q = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
    lift = rel_se = rel_ci = None
    if mean_c > 0:
        lift = mean_t / mean_c - 1
        rel_se = math.sqrt(relative_lift_variance(mean_c, mean_t, var_c, var_t, n_c, n_t))
        rel_ci = (lift - q * rel_se, lift + q * rel_se)
    return EffectEstimate(
        metric=metric,
        test=test,
        higher_is_better=higher_is_better,
        n_control=n_c,
        n_treatment=n_t,
        control_mean=mean_c,
        treatment_mean=mean_t,
        absolute_diff=diff,
        standard_error=se,
        absolute_ci=(diff - q * se, diff + q * se),
        relative_lift=lift,
        relative_standard_error=rel_se,
        relative_ci=rel_ci,
        statistic=statistic,
        df=df,
        p_value=p_value,
        alpha=alpha,
        significant=p_value < alpha,
        improved=(diff > 0) if higher_is_better else (diff < 0),
    )


def two_proportion_test(
    control: ProportionArm,
    treatment: ProportionArm,
    *,
    alpha: float = defaults.ALPHA,
    metric: str = "conversion",
    higher_is_better: bool = True,
) -> EffectEstimate:
    """Two-sided two-proportion z-test of conversion rates (pooled variance for the p-value)."""
    check_alpha(alpha)
    if control.users < 1 or treatment.users < 1:
        raise StatsInputError(
            f"metric '{metric}': each arm needs at least 1 user, "
            f"got control={control.users}, treatment={treatment.users}"
        )
    n_c, n_t = control.users, treatment.users
    pooled = (control.conversions + treatment.conversions) / (n_c + n_t)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    diff = treatment.rate - control.rate
    # Identical all-or-nothing arms (0% or 100% everywhere) carry no evidence of a difference.
    z = diff / se_null if se_null > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    return _estimate(
        metric=metric,
        test="two_proportion_z",
        higher_is_better=higher_is_better,
        n_c=n_c,
        n_t=n_t,
        mean_c=control.rate,
        mean_t=treatment.rate,
        var_c=control.variance,
        var_t=treatment.variance,
        statistic=z,
        df=None,
        p_value=p,
        alpha=alpha,
    )


def welch_t_test(
    control: MeanArm,
    treatment: MeanArm,
    *,
    alpha: float = defaults.ALPHA,
    metric: str = "continuous",
    higher_is_better: bool = True,
) -> EffectEstimate:
    """Two-sided Welch t-test from summary statistics (unequal variances allowed)."""
    check_alpha(alpha)
    if control.n < 2 or treatment.n < 2:
        raise StatsInputError(
            f"metric '{metric}': Welch's t-test needs at least 2 units per arm, "
            f"got control={control.n}, treatment={treatment.n}"
        )
    vc, vt = control.var / control.n, treatment.var / treatment.n
    if vc + vt == 0:
        raise StatsInputError(
            f"metric '{metric}': both arms have zero variance, so there is no spread to test against; "
            "check that sd/variance were aggregated per unit"
        )
    diff = treatment.mean - control.mean
    t = diff / math.sqrt(vc + vt)
    df = (vc + vt) ** 2 / (vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1))
    p = float(2 * stats.t.sf(abs(t), df))
    return _estimate(
        metric=metric,
        test="welch_t",
        higher_is_better=higher_is_better,
        n_c=control.n,
        n_t=treatment.n,
        mean_c=control.mean,
        mean_t=treatment.mean,
        var_c=control.var,
        var_t=treatment.var,
        statistic=t,
        df=df,
        p_value=p,
        alpha=alpha,
    )


def compare(metric: Metric, *, alpha: float = defaults.ALPHA) -> EffectEstimate:
    """Run the test that fits the metric's kind."""
    if isinstance(metric, ConversionMetric):
        return two_proportion_test(
            metric.control, metric.treatment, alpha=alpha, metric=metric.name, higher_is_better=metric.higher_is_better
        )
    return welch_t_test(
        metric.control, metric.treatment, alpha=alpha, metric=metric.name, higher_is_better=metric.higher_is_better
    )


def format_change(value: float, *, relative: bool) -> str:
    """A signed change as people read it: +3.20% for a relative lift, +0.0123 for an absolute one."""
    return f"{value:+.2%}" if relative else f"{value:+.4g}"
