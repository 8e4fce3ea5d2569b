"""Fixed-horizon comparison of one treatment against control: effect, interval, p-value.

Which test when:
* conversion metrics (each unit converts or not): two-proportion z-test. ``p_value`` is the
  textbook pooled-variance test (the variance under the null of equal rates, as
  ``statsmodels.stats.proportion.proportions_ztest``); intervals use the unpooled p(1-p)/n per arm,
  because they describe the effect where it is, not where the null puts it.
* continuous metrics from summary statistics: Welch's t-test, which does not assume the arms share
  a variance (a treatment often changes the spread as well as the mean).
* ratio metrics: each arm's ratio with its delta-method variance (``activities.stats.ratio``),
  then Welch's t-test.
* with CUPED covariates on both arms (``activities.stats.cuped``): the same tests on the
  adjusted means and variances (z for conversions, Welch's t for means).

All report the absolute difference and the relative lift (T - C) / C, the number growth teams
quote. The relative interval uses the delta method,
Var(lift) ~ s_T^2/(n_T C^2) + T^2 s_C^2/(n_C C^4), which treats the control mean in the
denominator as random too, so it is wider than naively dividing the absolute interval by C.
Relative numbers exist only when the control mean is positive.

**The decision statistic.** A verdict must quote an interval and a p-value that agree: the
interval excludes 0 exactly when p < alpha. The pooled p-value and an unpooled relative interval
do not always agree (the audit found 0.1-0.8% of looks where they did not), so decisions use
``decision_p_value``: a Wald test on the scale of the reported interval (relative when defined,
else absolute), with the same standard error and the same distribution (normal for z-tests,
Welch's t for t-tests). That is how GrowthBook's frequentist engine reads a relative effect.

Assumption: units are independent and the analysis unit is the randomisation unit (a ratio
metric handles the other case). The tests lean on the central limit theorem, hence the
minimum-sample guard before any verdict.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel
from scipy import special, stats

from activities.stats import defaults
from activities.stats.arms import ContinuousMetric, ConversionMetric, MeanArm, Metric, ProportionArm, RatioMetric
from activities.stats.cuped import CupedAdjustment, cuped_adjust
from activities.stats.errors import StatsInputError
from activities.stats.ratio import ratio_as_mean_arm

TestName = Literal["two_proportion_z", "welch_t", "delta_method_ratio", "cuped_z", "cuped_welch_t"]
Scale = Literal["relative", "absolute"]


class EffectEstimate(BaseModel):
    metric: str
    #: The treatment arm's name.
    variant: str = "treatment"
    test: TestName
    higher_is_better: bool
    n_control: int
    n_treatment: int
    #: Arm means (CUPED-adjusted when ``cuped`` is set; the ratio itself for a ratio metric).
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
    #: The test's own p-value (pooled for two proportions).
    p_value: float
    alpha: float
    significant: bool
    #: The point estimate moved in the metric's good direction (regardless of significance).
    improved: bool
    #: The scale decisions are made on: relative when the lift is defined, else absolute.
    decision_scale: Scale = "absolute"
    #: Wald statistic on that scale (estimate / its standard error).
    decision_statistic: float = 0.0
    #: Two-sided p-value of that statistic: agrees with the interval on the same scale.
    decision_p_value: float = 1.0
    #: What CUPED did, when it was applied.
    cuped: CupedAdjustment | None = None

    @property
    def decision_estimate(self) -> tuple[float, float]:
        """(estimate, standard error) on the decision scale."""
        if self.decision_scale == "relative":
            assert self.relative_lift is not None and self.relative_standard_error is not None
            return self.relative_lift, self.relative_standard_error
        return self.absolute_diff, self.standard_error

    def decision_interval(self, level: float) -> tuple[float, float]:
        """Two-sided interval at ``level`` (an alpha) on the decision scale, with the test's distribution."""
        value, se = self.decision_estimate
        q = two_sided_quantile(level, self.df)
        return value - q * se, value + q * se


def check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0 < alpha < 1:
        raise StatsInputError(f"{name} must be in (0, 1), got {alpha}")


def two_sided_quantile(alpha: float, df: float | None) -> float:
    """z_{1-alpha/2}, or Student's t quantile with ``df`` degrees of freedom."""
    return float(special.ndtri(1 - alpha / 2) if df is None else special.stdtrit(df, 1 - alpha / 2))


def two_sided_p(statistic: float, df: float | None) -> float:
    """Two-sided p-value of a z (df None) or t statistic; an infinite statistic gives 0."""
    if math.isinf(statistic):
        return 0.0
    # scipy.special rather than scipy.stats: the same functions without the per-call overhead.
    return float(2 * (special.ndtr(-abs(statistic)) if df is None else special.stdtr(df, -abs(statistic))))


def ratio_of(value: float, se: float) -> float:
    """value / se, with an exact tie at zero spread uninformative and any other difference decisive."""
    if se > 0:
        return value / se
    return 0.0 if value == 0 else math.copysign(math.inf, value)


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
    variant: str,
    test: TestName,
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
    cuped: CupedAdjustment | None = None,
) -> EffectEstimate:
    diff = mean_t - mean_c
    se = math.sqrt(var_c / n_c + var_t / n_t)
    q = two_sided_quantile(alpha, df)
    # The relative lift is relative to the unadjusted control mean (the same numbers without CUPED).
    base_c = cuped.control_mean_unadjusted if cuped else mean_c
    base_t = cuped.treatment_mean_unadjusted if cuped else mean_t
    lift = rel_se = rel_ci = None
    if base_c > 0:
        lift = diff / base_c
        rel_se = math.sqrt(relative_lift_variance(base_c, base_t, var_c, var_t, n_c, n_t))
        rel_ci = (lift - q * rel_se, lift + q * rel_se)
    scale: Scale = "relative" if lift is not None else "absolute"
    decision_statistic = ratio_of(lift, rel_se) if lift is not None and rel_se is not None else ratio_of(diff, se)
    return EffectEstimate(
        metric=metric,
        variant=variant,
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
        decision_scale=scale,
        decision_statistic=decision_statistic,
        decision_p_value=two_sided_p(decision_statistic, df),
        cuped=cuped,
    )


def two_proportion_test(
    control: ProportionArm,
    treatment: ProportionArm,
    *,
    alpha: float = defaults.ALPHA,
    metric: str = "conversion",
    variant: str = "treatment",
    higher_is_better: bool = True,
) -> EffectEstimate:
    """Two-sided two-proportion z-test of conversion rates (pooled variance for the p-value)."""
    check_alpha(alpha)
    if control.users < 1 or treatment.users < 1:
        raise StatsInputError(
            f"metric '{metric}': each arm needs at least 1 user, "
            f"got control={control.users}, {variant}={treatment.users}"
        )
    n_c, n_t = control.users, treatment.users
    pooled = (control.conversions + treatment.conversions) / (n_c + n_t)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    diff = treatment.rate - control.rate
    # Identical all-or-nothing arms (0% or 100% everywhere) carry no evidence of a difference.
    z = diff / se_null if se_null > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    return _estimate(
        metric=metric, variant=variant, test="two_proportion_z", higher_is_better=higher_is_better,
        n_c=n_c, n_t=n_t, mean_c=control.rate, mean_t=treatment.rate, var_c=control.variance,
        var_t=treatment.variance, statistic=z, df=None, p_value=p, alpha=alpha,
    )


def _welch_df(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    vc, vt = var_c / n_c, var_t / n_t
    return (vc + vt) ** 2 / (vc**2 / (n_c - 1) + vt**2 / (n_t - 1))


def welch_t_test(
    control: MeanArm,
    treatment: MeanArm,
    *,
    alpha: float = defaults.ALPHA,
    metric: str = "continuous",
    variant: str = "treatment",
    higher_is_better: bool = True,
    test: TestName = "welch_t",
    cuped: CupedAdjustment | None = None,
) -> EffectEstimate:
    """Two-sided Welch t-test from summary statistics (unequal variances allowed)."""
    check_alpha(alpha)
    if control.n < 2 or treatment.n < 2:
        raise StatsInputError(
            f"metric '{metric}': Welch's t-test needs at least 2 units per arm, "
            f"got control={control.n}, {variant}={treatment.n}"
        )
    vc, vt = control.var / control.n, treatment.var / treatment.n
    if vc + vt == 0:
        raise StatsInputError(
            f"metric '{metric}': both arms have zero variance, so there is no spread to test against; "
            "check that sd/variance were aggregated per unit"
        )
    diff = treatment.mean - control.mean
    t = diff / math.sqrt(vc + vt)
    df = _welch_df(control.var, control.n, treatment.var, treatment.n)
    p = float(2 * stats.t.sf(abs(t), df))
    return _estimate(
        metric=metric, variant=variant, test=test, higher_is_better=higher_is_better, n_c=control.n,
        n_t=treatment.n, mean_c=control.mean, mean_t=treatment.mean, var_c=control.var, var_t=treatment.var,
        statistic=t, df=df, p_value=p, alpha=alpha, cuped=cuped,
    )


def _cuped_test(metric: ConversionMetric | ContinuousMetric, alpha: float) -> EffectEstimate:
    """The metric's test on CUPED-adjusted means and variances (both arms carry ``pre``)."""
    c, t = metric.control, metric.treatment
    assert c.pre is not None and t.pre is not None
    mean_c, var_c, mean_t, var_t, summary = cuped_adjust(c.n, c.mean, c.var, c.pre, t.n, t.mean, t.var, t.pre)
    if isinstance(metric, ContinuousMetric):
        return welch_t_test(MeanArm(n=c.n, mean=mean_c, variance=var_c), MeanArm(n=t.n, mean=mean_t, variance=var_t),
                            alpha=alpha, metric=metric.name, variant=metric.variant,
                            higher_is_better=metric.higher_is_better, test="cuped_welch_t", cuped=summary)
    if c.n < 1 or t.n < 1:
        raise StatsInputError(f"metric '{metric.name}': each arm needs at least 1 user, "
                              f"got control={c.n}, {metric.variant}={t.n}")
    diff, se = mean_t - mean_c, math.sqrt(var_c / c.n + var_t / t.n)
    z = ratio_of(diff, se)
    return _estimate(
        metric=metric.name, variant=metric.variant, test="cuped_z", higher_is_better=metric.higher_is_better,
        n_c=c.n, n_t=t.n, mean_c=mean_c, mean_t=mean_t, var_c=var_c, var_t=var_t, statistic=z, df=None,
        p_value=two_sided_p(z, None), alpha=alpha, cuped=summary,
    )


def has_covariates(metric: Metric) -> bool:
    """Both arms carry a CUPED covariate."""
    return not isinstance(metric, RatioMetric) and metric.control.pre is not None and metric.treatment.pre is not None


def compare(metric: Metric, *, alpha: float = defaults.ALPHA, cuped: bool = True) -> EffectEstimate:
    """Run the test that fits the metric's kind (CUPED-adjusted when ``cuped`` and both arms have a covariate)."""
    check_alpha(alpha)
    if cuped and has_covariates(metric):
        assert not isinstance(metric, RatioMetric)
        return _cuped_test(metric, alpha)
    if isinstance(metric, ConversionMetric):
        return two_proportion_test(metric.control, metric.treatment, alpha=alpha, metric=metric.name,
                                   variant=metric.variant, higher_is_better=metric.higher_is_better)
    if isinstance(metric, RatioMetric):
        control = ratio_as_mean_arm(metric.control, metric=metric.name, arm_name="control")
        treatment = ratio_as_mean_arm(metric.treatment, metric=metric.name, arm_name=metric.variant)
        return welch_t_test(control, treatment, alpha=alpha, metric=metric.name, variant=metric.variant,
                            higher_is_better=metric.higher_is_better, test="delta_method_ratio")
    return welch_t_test(metric.control, metric.treatment, alpha=alpha, metric=metric.name, variant=metric.variant,
                        higher_is_better=metric.higher_is_better)


def format_change(value: float, *, relative: bool) -> str:
    """A signed change as people read it: +3.20% for a relative lift, +0.0123 for an absolute one."""
    return f"{value:+.2%}" if relative else f"{value:+.4g}"
