"""CUPED: variance reduction with the metric's own pre-period value (Deng, Xu, Kohavi & Walker 2013).

A unit's value before the experiment (X) predicts its value during it (Y), and assignment is
independent of X, so Y - theta (X - mean X) has the same expected difference between arms and a
smaller variance: with theta = Cov(X, Y) / Var(X) the variance shrinks by the factor 1 - rho^2.

Everything here is computed from summary statistics per arm (n, mean and sd of Y and of X, and
their covariance), which is what a connector returns. theta is pooled over the arms compared (the
control and one treatment), from the per-arm sums reconstructed from those statistics, as
GrowthBook's ``compute_theta`` does: a single theta keeps the adjustment identical in both arms,
so it cannot create a difference. Per arm:

    adjusted mean     = mean Y - theta (mean X - pooled mean X)
    adjusted variance = Var Y + theta^2 Var X - 2 theta Cov(X, Y)

The relative lift stays relative to the *unadjusted* control mean (the adjustment moves levels,
not the effect). theta falls back to 0 (no adjustment) when X or Y has no variance at all.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.stats.arms import Covariate


class CupedAdjustment(BaseModel):
    """What CUPED did to one comparison: theta and how much variance it removed."""

    theta: float
    control_mean_unadjusted: float
    treatment_mean_unadjusted: float
    control_variance_unadjusted: float
    treatment_variance_unadjusted: float
    #: 1 - Var(adjusted difference) / Var(unadjusted difference): the share of variance removed.
    variance_reduction: float


def pooled_theta(arms: list[tuple[int, float, float, Covariate]]) -> float:
    """theta = Cov(X, Y) / Var(X) over the pooled units of ``arms`` ((n, mean Y, var Y, covariate) each)."""
    n = sum(a[0] for a in arms)
    if n < 2:
        return 0.0
    sum_y = sum(k * my for k, my, _, _ in arms)
    sum_y2 = sum((k - 1) * vy + k * my**2 for k, my, vy, _ in arms)
    sum_x = sum(k * c.mean for k, _, _, c in arms)
    sum_x2 = sum((k - 1) * c.sd**2 + k * c.mean**2 for k, _, _, c in arms)
    sum_xy = sum((k - 1) * c.covariance + k * c.mean * my for k, my, _, c in arms)
    var_y = (sum_y2 - sum_y**2 / n) / (n - 1)
    var_x = (sum_x2 - sum_x**2 / n) / (n - 1)
    if var_x <= 0 or var_y <= 0:
        return 0.0
    return ((sum_xy - sum_x * sum_y / n) / (n - 1)) / var_x


def adjusted_variance(var_y: float, covariate: Covariate, theta: float) -> float:
    """Per-unit variance of Y - theta X (never below 0: rounding on a perfect predictor)."""
    return max(0.0, var_y + theta**2 * covariate.sd**2 - 2 * theta * covariate.covariance)


def cuped_adjust(
    n_c: int, mean_c: float, var_c: float, pre_c: Covariate,
    n_t: int, mean_t: float, var_t: float, pre_t: Covariate,
) -> tuple[float, float, float, float, CupedAdjustment]:
    """Adjusted (mean_c, var_c, mean_t, var_t) per unit, and the adjustment's summary."""
    theta = pooled_theta([(n_c, mean_c, var_c, pre_c), (n_t, mean_t, var_t, pre_t)])
    pooled_pre = (n_c * pre_c.mean + n_t * pre_t.mean) / (n_c + n_t)
    adj_mean_c = mean_c - theta * (pre_c.mean - pooled_pre)
    adj_mean_t = mean_t - theta * (pre_t.mean - pooled_pre)
    adj_var_c = adjusted_variance(var_c, pre_c, theta)
    adj_var_t = adjusted_variance(var_t, pre_t, theta)
    raw = var_c / n_c + var_t / n_t
    adjusted = adj_var_c / n_c + adj_var_t / n_t
    summary = CupedAdjustment(
        theta=theta, control_mean_unadjusted=mean_c, treatment_mean_unadjusted=mean_t,
        control_variance_unadjusted=var_c, treatment_variance_unadjusted=var_t,
        variance_reduction=1.0 - adjusted / raw if raw > 0 else 0.0,
    )
    return adj_mean_c, adj_var_c, adj_mean_t, adj_var_t, summary
