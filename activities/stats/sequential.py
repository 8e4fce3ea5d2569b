"""Always-valid inference, so an experiment can be looked at every day without inflating errors.

A fixed-horizon p-value is valid once, at the planned sample. Checking it at every look and
stopping the first time p < 0.05 turns a 5% false-positive rate into 20-30% over a few dozen
looks. The fix used here is GrowthBook's (and, in substance, Optimizely's mSPRT): a normal-mixture
martingale over the running effect estimate. Its confidence sequence [estimate +/- B(n)] covers
the true effect at *every* sample size simultaneously with probability 1 - alpha (Howard et al.
2021), so "stop as soon as it excludes 0" keeps the false-positive rate at most alpha.

With N the total sample, SE the standard error of the estimate and s2 = SE^2 * N its
per-unit variance, the mixture gives

    B(N) = SE * sqrt( 2 (N rho^2 + 1) / (N rho^2) * ln( sqrt(N rho^2 + 1) / alpha ) )
    rho^2 = ( 2 ln(1/alpha) + ln(1 + 2 ln(1/alpha)) ) / S

where S is the tuning parameter: the total sample size at which the sequence is tightest
(default 5,000; set it to the expected decision sample size). This is Howard's boundary
(1/N) sqrt((s2 N + r) ln((s2 N + r) / (r alpha^2))) with mixture precision r = s2 / rho^2. The
always-valid p-value is 1 / (mixture likelihood ratio) at the same rho, so p < alpha exactly
when the sequence excludes 0. The price is width: B is larger than the fixed-horizon z * SE.

The test is on the estimate's decision scale (``EffectEstimate.decision_scale``: the relative
lift with its delta-method standard error when defined, else the absolute difference), the scale
of the reported sequence, so the sequence excludes 0 exactly when p < alpha.

Two alphas: ``alpha`` fixes rho (the mixing distribution, chosen before the data) and ``level``
is the error rate an interval is drawn at. They differ only when a correction gives one
comparison a smaller share of alpha: the always-valid p-value, computed at the fixed rho, is
then compared with that share, and the interval at that share agrees with it.

Assumptions: the estimate is asymptotically normal (the minimum-sample guard keeps that honest)
and SE is estimated from the data; with estimated variances the guarantee is approximate.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from activities.stats import defaults
from activities.stats.effects import EffectEstimate, check_alpha
from activities.stats.errors import StatsInputError


class SequentialResult(BaseModel):
    metric: str
    variant: str = "treatment"
    #: The alpha rho was chosen for (see the module docstring).
    alpha: float
    tuning: float
    #: Mixing parameter derived from alpha and the tuning parameter.
    rho: float
    n_total: int
    #: Half-width of the sequence in standard errors (compare with 1.96 for a fixed-horizon test).
    critical_value: float
    absolute_cs: tuple[float, float]
    relative_cs: tuple[float, float] | None
    #: Always-valid p-value at this look alone.
    p_value_this_look: float
    #: Smallest always-valid p-value over this and earlier looks (equal to this look's if none given).
    p_value: float
    significant: bool
    #: The scale the test was run on (the estimate's decision scale).
    scale: Literal["relative", "absolute"] = "absolute"


def mixing_rho(alpha: float, tuning: float) -> float:
    """rho for which the two-sided sequence is (approximately) narrowest at total sample ``tuning``."""
    check_alpha(alpha)
    if not (tuning > 0 and math.isfinite(tuning)):
        raise StatsInputError(f"sequential tuning parameter must be a positive sample size, got {tuning}")
    log_inv_alpha = -math.log(alpha)
    return math.sqrt((2 * log_inv_alpha + math.log(1 + 2 * log_inv_alpha)) / tuning)


def sequential_critical_value(
    n_total: float, *, alpha: float = defaults.ALPHA, tuning: float = defaults.SEQUENTIAL_TUNING,
    level: float | None = None,
) -> float:
    """B(N) / SE: the multiplier that replaces z_{1-alpha/2} in a sequential interval.

    ``alpha`` fixes rho; ``level`` (default ``alpha``) is the error rate of the interval."""
    if n_total <= 0:
        raise StatsInputError(f"sequential test needs a positive total sample size, got {n_total}")
    level = alpha if level is None else level
    check_alpha(level, "level")
    a = n_total * mixing_rho(alpha, tuning) ** 2
    return math.sqrt(2 * (a + 1) / a * max(0.0, math.log(math.sqrt(a + 1) / level)))


def always_valid_p_value(
    z: float, n_total: float, *, alpha: float = defaults.ALPHA, tuning: float = defaults.SEQUENTIAL_TUNING
) -> float:
    """1 / mixture likelihood ratio for a z-score observed at total sample ``n_total``, capped at 1.

    ``alpha`` only fixes rho (the mixing distribution); it must be the alpha the result is judged at.
    """
    if n_total <= 0:
        raise StatsInputError(f"sequential test needs a positive total sample size, got {n_total}")
    if math.isnan(z):
        raise StatsInputError("sequential test got a NaN z-score; check the arms' means and spreads")
    a = n_total * mixing_rho(alpha, tuning) ** 2
    # Log space: the likelihood ratio overflows for overwhelming evidence, its inverse just tends to 0.
    log_ratio = a * z * z / (2 * (a + 1)) - 0.5 * math.log(a + 1)
    return 1.0 if log_ratio <= 0 else min(1.0, math.exp(-log_ratio))


def always_valid_test(
    estimate: EffectEstimate,
    *,
    tuning: float = defaults.SEQUENTIAL_TUNING,
    previous_p_value: float | None = None,
    alpha: float | None = None,
) -> SequentialResult:
    """Sequential read of a fixed-horizon estimate at its current sample size.

    ``alpha`` (default ``estimate.alpha``) fixes rho and the sequences' level. The test is on the
    estimate's decision scale (relative lift when defined); both sequences use the same multiplier.
    Pass the p-value returned at the previous look as ``previous_p_value`` to carry the running
    minimum.
    """
    alpha = estimate.alpha if alpha is None else alpha
    n_total = estimate.n_control + estimate.n_treatment
    rho = mixing_rho(alpha, tuning)
    crit = sequential_critical_value(n_total, alpha=alpha, tuning=tuning)
    z = estimate.decision_statistic  # infinite when there is no spread at all and the arms differ
    p_now = 0.0 if math.isinf(z) else always_valid_p_value(z, n_total, alpha=alpha, tuning=tuning)
    if previous_p_value is not None and not 0 <= previous_p_value <= 1:
        raise StatsInputError(f"previous_p_value must be in [0, 1], got {previous_p_value}")
    p = p_now if previous_p_value is None else min(p_now, previous_p_value)
    half = crit * estimate.standard_error
    rel_cs = None
    if estimate.relative_lift is not None and estimate.relative_standard_error is not None:
        rel_half = crit * estimate.relative_standard_error
        rel_cs = (estimate.relative_lift - rel_half, estimate.relative_lift + rel_half)
    return SequentialResult(
        metric=estimate.metric,
        variant=estimate.variant,
        alpha=alpha,
        tuning=tuning,
        rho=rho,
        n_total=n_total,
        critical_value=crit,
        absolute_cs=(estimate.absolute_diff - half, estimate.absolute_diff + half),
        relative_cs=rel_cs,
        p_value_this_look=p_now,
        p_value=p,
        significant=p < alpha,
        scale=estimate.decision_scale,
    )
