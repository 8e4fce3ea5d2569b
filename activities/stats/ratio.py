"""Ratio metrics with the delta method: revenue per session, items per order, clicks per view.

When the analysis unit (a session) is not the randomisation unit (a user), sessions of one user
are correlated, so treating each session as independent understates the variance. Instead each
arm's metric is R = mean(X) / mean(Y) over its users, with X and Y the per-user numerator and
denominator, and its variance comes from the delta method (first-order Taylor expansion of X/Y
around the means):

    Var(R) ~ [ Var(X)/mu_Y^2 - 2 mu_X Cov(X, Y)/mu_Y^3 + mu_X^2 Var(Y)/mu_Y^4 ] / n

(Deng et al. 2018, "Applying the Delta Method in Metric Analytics"; the same expression as
GrowthBook's ``RatioStatistic``). The bracket is the per-user variance returned here, so a ratio
arm becomes a ``MeanArm`` and the usual Welch comparison (and its relative lift) applies.
"""

from __future__ import annotations

from activities.stats.arms import MeanArm, RatioArm
from activities.stats.errors import StatsInputError

#: A delta-method variance this far below zero is a rounding artefact, beyond it bad inputs.
_NEGATIVE_TOLERANCE = 1e-9


def ratio_variance(arm: RatioArm) -> float:
    """Delta-method per-unit variance of mean(X)/mean(Y) for one arm (divide by n for the estimate's)."""
    mx, my = arm.numerator_mean, arm.denominator_mean
    return (arm.numerator_sd**2 / my**2 - 2 * mx * arm.covariance / my**3
            + mx**2 * arm.denominator_sd**2 / my**4)


def ratio_as_mean_arm(arm: RatioArm, *, metric: str, arm_name: str) -> MeanArm:
    """The arm's ratio as a mean with its delta-method per-unit variance."""
    if arm.denominator_mean == 0:
        raise StatsInputError(
            f"ratio metric '{metric}': arm '{arm_name}' has denominator_mean 0, so its ratio is undefined; "
            "check that the denominator is counted per unit of randomisation"
        )
    variance = ratio_variance(arm)
    scale = (arm.numerator_sd**2 + arm.denominator_sd**2) / arm.denominator_mean**2 + 1.0
    if variance < -_NEGATIVE_TOLERANCE * scale:
        raise StatsInputError(
            f"ratio metric '{metric}': arm '{arm_name}' gives a negative delta-method variance ({variance:.3g}); "
            "numerator_denominator_covariance cannot exceed numerator_sd * denominator_sd"
        )
    return MeanArm(n=arm.n, mean=arm.numerator_mean / arm.denominator_mean, variance=max(variance, 0.0))
