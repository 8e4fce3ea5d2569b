"""Power, sample size and minimum detectable effect (MDE), for planning and for reading a null.

For a true absolute effect delta with standard error sigma_D = sqrt(s_C^2/n_C + s_T^2/n_T), a
two-sided test at alpha has power

    pi = 1 - Phi(z_{1-alpha/2} - delta/sigma_D) + Phi(z_{alpha/2} - delta/sigma_D)

(both tails, as in statsmodels' ``NormalIndPower``). Per-arm n ~ 2 s^2 (z_{1-alpha/2} + z_{1-beta})^2
/ delta^2 for equal arms, about 16 s^2/delta^2 at alpha=0.05 and 80% power; here n is solved from
the exact formula instead, which also handles unequal allocation (``ratio`` = n_T / n_C).

For conversions s_C^2 = p(1-p) at the baseline and s_T^2 at baseline + delta, so the variance
follows the effect. For continuous metrics the sd is a planning input (from history; the
treatment sd defaults to the control's).

With ``sequential_tuning`` set, z_{1-alpha/2} is replaced by the always-valid multiplier at the
total sample (see ``sequential.py``): sequential tests pay for free peeking with power, so plans
for them need more units. This counts only rejections at the final look, so it slightly
overstates the sample needed (an earlier look may already have stopped).

With ``relative_test=True`` the plan is for the test the verdict actually runs: a Wald test of the
relative lift with its delta-method standard error. That statistic equals
delta / sqrt(s_T^2/n_T + (T/C)^2 s_C^2/n_C), i.e. the absolute test with the control's variance
scaled by (T/C)^2, so a plan for an increase needs slightly more units than the absolute test's.

Several treatments against one control (``calculate_sample_size``'s ``treatments``) are planned
at alpha / treatments per comparison: Bonferroni, the level Holm's first step uses, so the plan is
conservative for Holm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel
from scipy import optimize, special

from activities.stats import defaults
from activities.stats.effects import check_alpha
from activities.stats.errors import StatsInputError
from activities.stats.sequential import sequential_critical_value

MetricType = Literal["conversion", "continuous"]
MdeType = Literal["relative", "absolute"]


class PowerAnalysis(BaseModel):
    metric_type: MetricType
    #: Control conversion rate or mean (None for a continuous plan given in absolute terms only).
    baseline: float | None
    effect_absolute: float
    effect_relative: float | None
    #: The control's sd as the planned test sees it (times T/C for the relative-lift test).
    sd_control: float
    sd_treatment: float
    alpha: float
    #: The power asked for (sample-size plans) or None (power of a given n).
    target_power: float | None
    n_control: int
    n_treatment: int
    n_total: int
    #: Power achieved at n_control / n_treatment.
    power: float
    sequential_tuning: float | None


class MdeResult(BaseModel):
    metric_type: MetricType
    baseline: float | None
    n_control: int
    n_treatment: int
    alpha: float
    power: float
    sequential_tuning: float | None
    #: Smallest detectable positive absolute effect (None when no effect reaches the power).
    mde_absolute: float | None
    mde_relative: float | None


def power_at(
    delta: float, var_control: float, var_treatment: float, n_control: float, n_treatment: float,
    *, alpha: float = defaults.ALPHA, sequential_tuning: float | None = None,
) -> float:
    """Two-sided power against an absolute effect ``delta`` given per-unit variances and arm sizes."""
    se = math.sqrt(var_control / n_control + var_treatment / n_treatment)
    if sequential_tuning is None:
        crit = float(special.ndtri(1 - alpha / 2))
    else:
        crit = sequential_critical_value(n_control + n_treatment, alpha=alpha, tuning=sequential_tuning)
    shift = delta / se
    # special.ndtr is the normal cdf without scipy.stats' per-call overhead (solvers call this a lot).
    return float(special.ndtr(shift - crit) + special.ndtr(-shift - crit))


# -- inputs ------------------------------------------------------------------------------------


def _check_rate(baseline_rate: float) -> None:
    if not 0 < baseline_rate < 1:
        raise StatsInputError(f"baseline_rate must be a conversion rate in (0, 1), got {baseline_rate}")


def _check_plan(alpha: float, power: float, ratio: float = 1.0) -> None:
    check_alpha(alpha)
    if not 0 < power < 1:
        raise StatsInputError(f"power must be in (0, 1), got {power}; 0.8 is the usual target")
    if ratio <= 0:
        raise StatsInputError(f"ratio (n_treatment / n_control) must be positive, got {ratio}")


def _proportion_delta(baseline_rate: float, mde: float, mde_type: MdeType) -> float:
    _check_rate(baseline_rate)
    if mde == 0:
        raise StatsInputError("mde must be non-zero: no sample size detects a zero effect")
    delta = mde * baseline_rate if mde_type == "relative" else mde
    if not 0 < baseline_rate + delta < 1:
        raise StatsInputError(
            f"a {mde_type} MDE of {mde} moves the baseline rate {baseline_rate} to {baseline_rate + delta}, "
            "outside (0, 1); choose a smaller MDE"
        )
    return delta


def _mean_delta(mde: float, mde_type: MdeType, baseline_mean: float | None) -> float:
    if mde == 0:
        raise StatsInputError("mde must be non-zero: no sample size detects a zero effect")
    if mde_type == "absolute":
        return mde
    if baseline_mean is None or baseline_mean <= 0:
        raise StatsInputError(
            f"a relative MDE for a continuous metric needs a positive baseline_mean, got {baseline_mean}; "
            "pass baseline_mean or use mde_type='absolute'"
        )
    return mde * baseline_mean


def _check_sd(sd: float, name: str) -> None:
    if not sd > 0:
        raise StatsInputError(f"{name} must be positive, got {sd}")


# -- sample size -------------------------------------------------------------------------------


def _solve_n_control(power_of_n: Callable[[float], float], target: float) -> float:
    """Smallest (real) control-arm size with power >= target; power grows with n."""
    lo, hi = 2.0, 4.0
    if power_of_n(lo) >= target:
        return lo
    while power_of_n(hi) < target:
        lo, hi = hi, hi * 2
        if hi > 1e13:
            raise StatsInputError("mde: the requested power is out of reach at any realistic sample size (over "
                                  "10^13 units per arm); plan for a larger mde or a lower power")
    return float(optimize.brentq(lambda n: power_of_n(n) - target, lo, hi, xtol=1e-6))


def _plan(
    metric_type: MetricType, baseline: float | None, delta: float, sd_c: float, sd_t: float,
    alpha: float, target: float | None, n_c: int, n_t: int, sequential_tuning: float | None,
) -> PowerAnalysis:
    return PowerAnalysis(
        metric_type=metric_type,
        baseline=baseline,
        effect_absolute=delta,
        effect_relative=delta / baseline if baseline else None,
        sd_control=sd_c,
        sd_treatment=sd_t,
        alpha=alpha,
        target_power=target,
        n_control=n_c,
        n_treatment=n_t,
        n_total=n_c + n_t,
        power=power_at(delta, sd_c**2, sd_t**2, n_c, n_t, alpha=alpha, sequential_tuning=sequential_tuning),
        sequential_tuning=sequential_tuning,
    )


def sample_size_proportions(
    baseline_rate: float,
    mde: float = defaults.TARGET_MDE,
    *,
    mde_type: MdeType = "relative",
    alpha: float = defaults.ALPHA,
    power: float = defaults.POWER,
    ratio: float = 1.0,
    sequential_tuning: float | None = None,
    relative_test: bool = False,
) -> PowerAnalysis:
    """Units per arm to detect a conversion-rate change of ``mde`` (relative by default)."""
    _check_plan(alpha, power, ratio)
    delta = _proportion_delta(baseline_rate, mde, mde_type)
    var_c = baseline_rate * (1 - baseline_rate)
    var_t = (baseline_rate + delta) * (1 - baseline_rate - delta)
    var_c_test = var_c * _relative_scale(baseline_rate, delta, relative_test)
    n = _solve_n_control(
        lambda n_c: power_at(delta, var_c_test, var_t, n_c, ratio * n_c, alpha=alpha,
                             sequential_tuning=sequential_tuning),
        power,
    )
    return _plan("conversion", baseline_rate, delta, math.sqrt(var_c_test), math.sqrt(var_t), alpha, power,
                 math.ceil(n), math.ceil(ratio * n), sequential_tuning)


def _relative_scale(baseline: float | None, delta: float, relative_test: bool) -> float:
    """(T/C)^2, the factor on the control's variance in the relative-lift test (1 for the absolute test)."""
    if not relative_test:
        return 1.0
    if baseline is None or baseline <= 0:
        raise StatsInputError("a plan for the relative-lift test needs a positive baseline (baseline_mean)")
    return ((baseline + delta) / baseline) ** 2


def sample_size_means(
    sd: float,
    mde: float,
    *,
    mde_type: MdeType = "absolute",
    baseline_mean: float | None = None,
    sd_treatment: float | None = None,
    alpha: float = defaults.ALPHA,
    power: float = defaults.POWER,
    ratio: float = 1.0,
    sequential_tuning: float | None = None,
    relative_test: bool = False,
) -> PowerAnalysis:
    """Units per arm to detect a change of ``mde`` in a mean (absolute by default)."""
    _check_plan(alpha, power, ratio)
    _check_sd(sd, "sd")
    sd_t = sd if sd_treatment is None else sd_treatment
    _check_sd(sd_t, "sd_treatment")
    delta = _mean_delta(mde, mde_type, baseline_mean)
    var_c_test = sd**2 * _relative_scale(baseline_mean, delta, relative_test)
    n = _solve_n_control(
        lambda n_c: power_at(delta, var_c_test, sd_t**2, n_c, ratio * n_c, alpha=alpha,
                             sequential_tuning=sequential_tuning),
        power,
    )
    return _plan("continuous", baseline_mean, delta, math.sqrt(var_c_test), sd_t, alpha, power, math.ceil(n),
                 math.ceil(ratio * n), sequential_tuning)


# -- power of a given n --------------------------------------------------------------------------


def _check_n(n_control: int, n_treatment: int | None) -> int:
    n_t = n_control if n_treatment is None else n_treatment
    if n_control < 1 or n_t < 1:
        raise StatsInputError(f"arm sizes must be at least 1, got n_control={n_control}, n_treatment={n_t}")
    return n_t


def power_proportions(
    baseline_rate: float,
    mde: float,
    n_control: int,
    n_treatment: int | None = None,
    *,
    mde_type: MdeType = "relative",
    alpha: float = defaults.ALPHA,
    sequential_tuning: float | None = None,
) -> PowerAnalysis:
    """Power of a conversion test with these arm sizes against an effect of ``mde``."""
    check_alpha(alpha)
    n_t = _check_n(n_control, n_treatment)
    delta = _proportion_delta(baseline_rate, mde, mde_type)
    sd_c = math.sqrt(baseline_rate * (1 - baseline_rate))
    sd_t = math.sqrt((baseline_rate + delta) * (1 - baseline_rate - delta))
    return _plan("conversion", baseline_rate, delta, sd_c, sd_t, alpha, None, n_control, n_t, sequential_tuning)


def power_means(
    sd: float,
    mde: float,
    n_control: int,
    n_treatment: int | None = None,
    *,
    mde_type: MdeType = "absolute",
    baseline_mean: float | None = None,
    sd_treatment: float | None = None,
    alpha: float = defaults.ALPHA,
    sequential_tuning: float | None = None,
) -> PowerAnalysis:
    """Power of a mean comparison with these arm sizes against an effect of ``mde``."""
    check_alpha(alpha)
    n_t = _check_n(n_control, n_treatment)
    _check_sd(sd, "sd")
    sd_t = sd if sd_treatment is None else sd_treatment
    _check_sd(sd_t, "sd_treatment")
    delta = _mean_delta(mde, mde_type, baseline_mean)
    return _plan("continuous", baseline_mean, delta, sd, sd_t, alpha, None, n_control, n_t, sequential_tuning)


# -- minimum detectable effect -------------------------------------------------------------------


def _solve_delta(power_of_delta: Callable[[float], float], target: float, upper: float | None) -> float | None:
    if upper is not None:
        if power_of_delta(upper) < target:
            return None
        hi = upper
    else:
        hi = 1.0
        while power_of_delta(hi) < target:
            hi *= 2
    return float(optimize.brentq(lambda d: power_of_delta(d) - target, 0.0, hi, xtol=1e-12))


def mde_proportions(
    baseline_rate: float,
    n_control: int,
    n_treatment: int | None = None,
    *,
    alpha: float = defaults.ALPHA,
    power: float = defaults.POWER,
    sequential_tuning: float | None = None,
) -> MdeResult:
    """Smallest upward change in conversion rate these arm sizes detect with the given power."""
    _check_plan(alpha, power)
    _check_rate(baseline_rate)
    n_t = _check_n(n_control, n_treatment)
    var_c = baseline_rate * (1 - baseline_rate)

    def power_of(d: float) -> float:
        p_t = baseline_rate + d
        return power_at(d, var_c, p_t * (1 - p_t), n_control, n_t, alpha=alpha, sequential_tuning=sequential_tuning)

    delta = _solve_delta(power_of, power, upper=(1 - baseline_rate) * (1 - 1e-9))
    return MdeResult(
        metric_type="conversion", baseline=baseline_rate, n_control=n_control, n_treatment=n_t, alpha=alpha,
        power=power, sequential_tuning=sequential_tuning, mde_absolute=delta,
        mde_relative=None if delta is None else delta / baseline_rate,
    )


def mde_means(
    sd: float,
    n_control: int,
    n_treatment: int | None = None,
    *,
    baseline_mean: float | None = None,
    sd_treatment: float | None = None,
    alpha: float = defaults.ALPHA,
    power: float = defaults.POWER,
    sequential_tuning: float | None = None,
) -> MdeResult:
    """Smallest change in a mean these arm sizes detect with the given power (relative if baseline > 0)."""
    _check_plan(alpha, power)
    _check_sd(sd, "sd")
    sd_t = sd if sd_treatment is None else sd_treatment
    _check_sd(sd_t, "sd_treatment")
    n_t = _check_n(n_control, n_treatment)
    delta = _solve_delta(
        lambda d: power_at(d, sd**2, sd_t**2, n_control, n_t, alpha=alpha, sequential_tuning=sequential_tuning),
        power,
        upper=None,
    )
    rel = delta / baseline_mean if delta is not None and baseline_mean and baseline_mean > 0 else None
    return MdeResult(
        metric_type="continuous", baseline=baseline_mean, n_control=n_control, n_treatment=n_t, alpha=alpha,
        power=power, sequential_tuning=sequential_tuning, mde_absolute=delta, mde_relative=rel,
    )
