"""Sample ratio mismatch: is the observed split of units across arms the split we configured?

Run it first. A broken split (a redirect that drops users, a bot filter that hits one arm, a
caching bug) biases every metric in ways no test can correct, so when it fires the experiment is
not interpreted at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from scipy import stats

from activities.stats import defaults
from activities.stats.errors import StatsInputError


class SrmResult(BaseModel):
    observed: list[int]
    expected_weights: list[float]
    expected_counts: list[float]
    chi2: float
    df: int
    p_value: float
    threshold: float
    min_count: int
    enough_data: bool
    srm_detected: bool
    message: str


def check_srm(
    observed: Sequence[int],
    expected_weights: Sequence[float] | None = None,
    *,
    threshold: float = defaults.SRM_P_THRESHOLD,
    min_count: int = defaults.SRM_MIN_COUNT,
) -> SrmResult:
    """Pearson chi-square goodness of fit of assignment counts against the configured split.

    chi2 = sum((O - E)^2 / E) with k-1 degrees of freedom. The gate is deliberately strict
    (p < 0.001): the check runs on every look of every experiment, and at that level a false alarm
    is rare while real assignment bugs, which produce enormous chi-square values at scale, still
    trip it. Until every arm has ``min_count`` units the test is computed but not trusted.
    ``expected_weights`` may be any positive numbers (50/50 as ``[1, 1]``); equal by default.
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
    if any(w <= 0 for w in weights):
        raise StatsInputError(f"expected_weights must all be positive, got {weights}")
    if not 0 < threshold < 1:
        raise StatsInputError(f"SRM threshold must be in (0, 1), got {threshold}")

    total = sum(counts)
    shares = [w / sum(weights) for w in weights]
    expected = [total * s for s in shares]
    enough = min(counts) >= min_count
    if total == 0:
        chi2, p = 0.0, 1.0
    else:
        res = stats.chisquare(counts, f_exp=expected)
        chi2, p = float(res.statistic), float(res.pvalue)
    detected = enough and p < threshold
    if not enough:
        message = f"SRM not assessed yet: an arm has fewer than {min_count} units ({counts})"
    elif detected:
        message = (
            f"Sample ratio mismatch: observed {counts} vs expected {[round(e, 1) for e in expected]} "
            f"(chi2={chi2:.2f}, p={p:.2g} < {threshold}); assignment is broken, do not interpret results"
        )
    else:
        message = f"Split matches the configured ratio (chi2={chi2:.2f}, p={p:.3g})"
    return SrmResult(
        observed=counts,
        expected_weights=shares,
        expected_counts=expected,
        chi2=chi2,
        df=len(counts) - 1,
        p_value=p,
        threshold=threshold,
        min_count=min_count,
        enough_data=enough,
        srm_detected=detected,
        message=message,
    )
