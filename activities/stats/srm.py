"""Sample ratio mismatch: is the observed split of units across arms the split we configured?

Run it first. A broken split (a redirect that drops users, a bot filter that hits one arm, a
caching bug) biases every metric in ways no test can correct, so when it fires the experiment is
not interpreted at all.

Two tests:
* ``fixed``: Pearson's chi-square goodness of fit, chi2 = sum((O - E)^2 / E) with k-1 degrees
  of freedom, flagged at p < 0.001. Valid for one read; read every day for a month, its false
  alarms add up (0.1% per look becomes about 1% over 30 looks).
* ``sequential``: the Dirichlet-multinomial test of Lindon & Malek (2022, "Anytime-valid
  inference for multinomial count data"), Optimizely's and GrowthBook's sequential SRM. Under the
  configured split p, the counts' likelihood is compared with its average under a Dirichlet
  prior centred on p (concentration 10,000, so it doubts small deviations):

      BF = Gamma(c) / Gamma(c + N) * prod_i Gamma(c p_i + n_i) / Gamma(c p_i) / prod_i p_i^n_i

  BF is a non-negative martingale under a correct split, so by Ville's inequality
  P(BF ever reaches 1/alpha) <= alpha, and p = min(1, 1/BF) may be read at every look without
  inflating false alarms. This uses the current counts only, which is valid and slightly
  conservative (the running minimum over looks would be smaller).

When is it assessed? On the total, as GrowthBook does, not on the smallest observed arm: once
every arm is *expected* to hold ``min_count`` units (total x smallest configured share >=
min_count). Gating on the smallest observed arm hid the worst failure of all: [10000, 0], where
the treatment receives nobody, was "not assessed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel
from scipy import special

from activities.stats import defaults
from activities.stats.errors import StatsInputError

SrmMethod = Literal["fixed", "sequential"]


class SrmResult(BaseModel):
    observed: list[int]
    expected_weights: list[float]
    expected_counts: list[float]
    #: Which test gave ``p_value``.
    method: SrmMethod = "fixed"
    chi2: float
    df: int
    #: The method's p-value (always-valid for ``sequential``).
    p_value: float
    #: Bayes factor of the sequential test (None for ``fixed``).
    bayes_factor: float | None = None
    threshold: float
    #: Units every arm is expected to hold before the test is trusted.
    min_count: int
    #: Total units needed for that (the gate is on the total).
    min_total: int = 0
    enough_data: bool
    srm_detected: bool
    message: str


def sequential_srm_p_value(counts: Sequence[int], shares: Sequence[float],
                           concentration: float = defaults.SRM_SEQUENTIAL_CONCENTRATION) -> tuple[float, float]:
    """(always-valid p-value, Bayes factor) of the Dirichlet-multinomial test; the factor may be inf."""
    if concentration <= 0:
        raise StatsInputError(f"SRM concentration must be positive, got {concentration}")
    n = sum(counts)
    prior = [concentration * s for s in shares]
    log_bf = special.gammaln(concentration) - special.gammaln(concentration + n)
    log_bf += sum(special.gammaln(a + k) - special.gammaln(a) - k * math.log(s) for a, k, s in zip(prior, counts, shares))
    log_bf = float(log_bf)
    p = 1.0 if log_bf <= 0 else math.exp(-log_bf)
    return p, (math.exp(log_bf) if log_bf < 700 else math.inf)


def check_srm(
    observed: Sequence[int],
    expected_weights: Sequence[float] | None = None,
    *,
    threshold: float = defaults.SRM_P_THRESHOLD,
    min_count: int = defaults.SRM_MIN_COUNT,
    method: SrmMethod = "fixed",
) -> SrmResult:
    """Goodness of fit of assignment counts against the configured split (``method``: see the module).

    The gate is deliberately strict (p < 0.001): the check runs on every look of every experiment,
    and at that level a false alarm is rare while real assignment bugs, which produce enormous
    deviations at scale, still trip it. ``expected_weights`` may be any positive numbers (50/50 as
    ``[1, 1]``); equal by default.
    """
    counts = [int(c) for c in observed]
    if len(counts) < 2:
        raise StatsInputError(f"SRM check needs the counts of at least 2 arms, got {len(counts)}")
    if any(c < 0 for c in counts):
        raise StatsInputError(f"SRM counts must be non-negative, got {counts}")
    weights = [1.0] * len(counts) if expected_weights is None else [float(w) for w in expected_weights]
    if len(weights) != len(counts):
        raise StatsInputError(
            f"expected_weights has {len(weights)} entries but observed has {len(counts)}; give one weight per arm"
        )
    if any(not math.isfinite(w) or w <= 0 for w in weights):
        raise StatsInputError(f"expected_weights must all be positive finite numbers, got {weights}")
    if not 0 < threshold < 1:
        raise StatsInputError(f"SRM threshold must be in (0, 1), got {threshold}")
    if method not in ("fixed", "sequential"):
        raise StatsInputError(f"SRM method must be 'fixed' or 'sequential', got {method!r}")

    total = sum(counts)
    shares = [w / sum(weights) for w in weights]
    expected = [total * s for s in shares]
    min_total = math.ceil(min_count / min(shares)) if min_count > 0 else 0
    enough = total >= min_total and total > 0
    if total == 0:
        chi2, chi2_p = 0.0, 1.0
    else:
        # Pearson's statistic and the chi-square survival function (scipy.special: no per-call overhead).
        chi2 = sum((o - e) ** 2 / e for o, e in zip(counts, expected))
        chi2_p = float(special.chdtrc(len(counts) - 1, chi2))
    bf = None
    if method == "sequential":
        p, bf = sequential_srm_p_value(counts, shares) if total else (1.0, 1.0)
    else:
        p = chi2_p
    detected = enough and p < threshold
    test = "sequential Dirichlet-multinomial test" if method == "sequential" else "chi-square test"
    if not enough:
        message = f"SRM not assessed yet: {total} units assigned, the check needs {min_total} ({counts})"
    elif detected:
        message = (
            f"Sample ratio mismatch: observed {counts} vs expected {[round(e, 1) for e in expected]} "
            f"({test}, p={p:.2g} < {threshold}); assignment is broken, do not interpret results"
        )
    else:
        message = f"Split matches the configured ratio ({test}, chi2={chi2:.2f}, p={p:.3g})"
    return SrmResult(
        observed=counts,
        expected_weights=shares,
        expected_counts=expected,
        method=method,
        chi2=chi2,
        df=len(counts) - 1,
        p_value=p,
        bayes_factor=bf,
        threshold=threshold,
        min_count=min_count,
        min_total=min_total,
        enough_data=enough,
        srm_detected=detected,
        message=message,
    )
