"""Bayesian read-out of a conversion metric: chance to beat control and expected loss.

Each arm's rate gets a Beta posterior (Beta(a0 + conversions, b0 + non-conversions), uniform
Beta(1, 1) prior by default). Two questions a product team asks are then answered directly:

* chance to win, P(p_T > p_C) = integral of f_T(x) F_C(x) dx;
* expected loss (risk) of each choice: what we expect to give up if we ship the arm and it is
  actually worse, e.g. E[max(0, p_C - p_T)] for shipping treatment. Reported absolute and
  relative to control (E[max(0, 1 - p_T/p_C)]), the scale of GrowthBook's risk thresholds
  (0.25% low / 1.25% high).

Everything is computed by one-dimensional numerical integration against the exact Beta densities
(no sampling), using E[(X - x)+] = m S_{a+1,b}(x) - x S_{a,b}(x) for X ~ Beta(a, b) with mean m
and survival function S, so results are deterministic and accurate to ~1e-9.

Why offer it next to the frequentist test: "93% chance to win, expected loss 0.1%" is easier
to act on than a p-value, and risk stays small when being wrong would be cheap. It is not a
substitute for the SRM gate or guardrails, and it does not control false positives under peeking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel
from scipy import integrate, stats

from activities.stats import defaults
from activities.stats.arms import ProportionArm
from activities.stats.errors import StatsInputError

_TAIL = 1e-13  # integrate over the central 1 - 2e-13 of a posterior: the rest is below rounding


class BetaBinomialResult(BaseModel):
    prior_alpha: float
    prior_beta: float
    control_posterior: tuple[float, float]
    treatment_posterior: tuple[float, float]
    control_rate_mean: float
    treatment_rate_mean: float
    #: P(treatment rate > control rate).
    chance_to_win: float
    #: E[max(0, p_C - p_T)]: expected absolute loss if treatment ships.
    expected_loss_treatment: float
    #: E[max(0, p_T - p_C)]: expected absolute loss if control is kept.
    expected_loss_control: float
    #: E[max(0, 1 - p_T/p_C)]: expected relative loss if treatment ships.
    relative_loss_treatment: float
    #: E[max(0, p_T/p_C - 1)]: expected relative loss if control is kept (None when the control
    #: posterior has a <= 1, i.e. no conversions under a uniform prior: E[1/p_C] is then infinite).
    relative_loss_control: float | None
    #: Risk of shipping treatment against the win/lose thresholds.
    treatment_risk_level: Literal["low", "medium", "high"]
    #: Chance to win at least the threshold and low risk of shipping treatment.
    meets_ship_bar: bool


def _integrate(f: Callable[[float], float], dist: stats.rv_continuous) -> float:
    lo, hi = float(dist.ppf(_TAIL)), float(dist.ppf(1 - _TAIL))
    mid = float(dist.median())
    # Split at the mode region so quad sees the peak of a narrow posterior.
    value = integrate.quad(f, lo, mid, limit=200, epsabs=1e-13, epsrel=1e-10)[0]
    value += integrate.quad(f, mid, hi, limit=200, epsabs=1e-13, epsrel=1e-10)[0]
    return value


def beta_binomial(
    control: ProportionArm,
    treatment: ProportionArm,
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    chance_to_win_threshold: float = defaults.CHANCE_TO_WIN_THRESHOLD,
    win_risk: float = defaults.WIN_RISK,
    lose_risk: float = defaults.LOSE_RISK,
) -> BetaBinomialResult:
    """Posterior chance to win and expected losses for a conversion metric (exact, deterministic)."""
    if prior_alpha <= 0 or prior_beta <= 0:
        raise StatsInputError(f"Beta prior parameters must be positive, got ({prior_alpha}, {prior_beta})")
    a_c, b_c = prior_alpha + control.conversions, prior_beta + control.users - control.conversions
    a_t, b_t = prior_alpha + treatment.conversions, prior_beta + treatment.users - treatment.conversions
    post_c, post_t = stats.beta(a_c, b_c), stats.beta(a_t, b_t)
    m_c, m_t = a_c / (a_c + b_c), a_t / (a_t + b_t)
    upper_t = stats.beta(a_t + 1, b_t)  # density of p_T reweighted by p_T: E[p_T; p_T > c] = m_t · S(c)

    # P(p_T > p_C) = E_C[S_T(p_C)]; integrating over the control posterior keeps a tie exactly symmetric.
    chance = _integrate(lambda c: post_c.pdf(c) * post_t.sf(c), post_c)

    def excess_t_over(c: float) -> float:  # E[(p_T - c)+]
        return m_t * upper_t.sf(c) - c * post_t.sf(c)

    def shortfall_t_under(c: float) -> float:  # E[(c - p_T)+]
        return c * post_t.cdf(c) - m_t * upper_t.cdf(c)

    loss_t = _integrate(lambda c: post_c.pdf(c) * shortfall_t_under(c), post_c)
    loss_c = _integrate(lambda c: post_c.pdf(c) * excess_t_over(c), post_c)
    rel_loss_t = _integrate(lambda c: post_c.pdf(c) * shortfall_t_under(c) / c, post_c)
    rel_loss_c = _integrate(lambda c: post_c.pdf(c) * excess_t_over(c) / c, post_c) if a_c > 1 else None

    level: Literal["low", "medium", "high"] = (
        "low" if rel_loss_t < win_risk else "medium" if rel_loss_t < lose_risk else "high"
    )
    return BetaBinomialResult(
        prior_alpha=prior_alpha,
        prior_beta=prior_beta,
        control_posterior=(a_c, b_c),
        treatment_posterior=(a_t, b_t),
        control_rate_mean=m_c,
        treatment_rate_mean=m_t,
        chance_to_win=min(1.0, max(0.0, chance)),
        expected_loss_treatment=max(0.0, loss_t),
        expected_loss_control=max(0.0, loss_c),
        relative_loss_treatment=max(0.0, rel_loss_t),
        relative_loss_control=None if rel_loss_c is None else max(0.0, rel_loss_c),
        treatment_risk_level=level,
        meets_ship_bar=chance >= chance_to_win_threshold and level == "low",
    )
