"""Generate gbstats_vectors.json: GrowthBook's own statistics on fixed summary statistics.

Run OUTSIDE the repository's environment (gbstats is not a dependency of iterloop, and its pins
would clash), from the repository root:

    python3 -m venv /tmp/gbvenv && /tmp/gbvenv/bin/pip install gbstats
    /tmp/gbvenv/bin/python tests/data/stats/make_gbstats_vectors.py > tests/data/stats/gbstats_vectors.json

The JSON records the gbstats version, the date and, for every case, the inputs as summary
statistics (n, mean, sd, ...: what iterloop's connectors return) next to gbstats' outputs.
tests/activities/test_stats_gbstats.py feeds the same inputs to activities.stats and compares.
gbstats takes sums (sum, sum of squares, sum of products); they are rebuilt from the summary
statistics here exactly as a warehouse would have aggregated them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import sys

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm


def mean_stat(n: int, mean: float, sd: float) -> SampleMeanStatistic:
    return SampleMeanStatistic(n=n, sum=n * mean, sum_squares=(n - 1) * sd**2 + n * mean**2)


def cuped_stat(arm: dict) -> RegressionAdjustedStatistic:
    n = arm["n"]
    return RegressionAdjustedStatistic(
        n=n, post_statistic=mean_stat(n, arm["mean"], arm["sd"]),
        pre_statistic=mean_stat(n, arm["pre_mean"], arm["pre_sd"]),
        post_pre_sum_of_products=(n - 1) * arm["covariance"] + n * arm["pre_mean"] * arm["mean"], theta=0)


def ratio_stat(arm: dict) -> RatioStatistic:
    n = arm["n"]
    return RatioStatistic(
        n=n, m_statistic=mean_stat(n, arm["numerator_mean"], arm["numerator_sd"]),
        d_statistic=mean_stat(n, arm["denominator_mean"], arm["denominator_sd"]),
        m_d_sum_of_products=(n - 1) * arm["covariance"] + n * arm["numerator_mean"] * arm["denominator_mean"])


def stat(kind: str, arm: dict):
    if kind == "conversion":
        return ProportionStatistic(n=arm["users"], sum=arm["conversions"])
    if kind == "continuous":
        return mean_stat(arm["n"], arm["mean"], arm["sd"])
    if kind == "cuped":
        return cuped_stat(arm)
    return ratio_stat(arm)


CASES = [
    ("conversion", {"users": 10_000, "conversions": 1000}, {"users": 10_000, "conversions": 1100}),
    ("conversion", {"users": 4_000, "conversions": 520}, {"users": 4_100, "conversions": 505}),
    ("conversion", {"users": 52_000, "conversions": 2080}, {"users": 51_500, "conversions": 2163}),
    ("continuous", {"n": 5000, "mean": 20.0, "sd": 8.0}, {"n": 5000, "mean": 20.5, "sd": 8.5}),
    ("continuous", {"n": 800, "mean": 3.2, "sd": 5.1}, {"n": 760, "mean": 2.9, "sd": 4.4}),
    ("cuped", {"n": 3000, "mean": 10.0, "sd": 4.0, "pre_mean": 9.5, "pre_sd": 3.8, "covariance": 10.0},
     {"n": 3100, "mean": 10.3, "sd": 4.1, "pre_mean": 9.6, "pre_sd": 3.9, "covariance": 10.5}),
    ("cuped", {"n": 20_000, "mean": 0.12, "sd": 0.33, "pre_mean": 0.10, "pre_sd": 0.30, "covariance": 0.04},
     {"n": 20_000, "mean": 0.125, "sd": 0.335, "pre_mean": 0.101, "pre_sd": 0.301, "covariance": 0.041}),
    ("ratio", {"n": 6000, "numerator_mean": 12.0, "numerator_sd": 20.0, "denominator_mean": 3.0, "denominator_sd": 2.0,
               "covariance": 15.0},
     {"n": 6100, "numerator_mean": 12.9, "numerator_sd": 21.0, "denominator_mean": 3.05, "denominator_sd": 2.1,
      "covariance": 16.0}),
]

SRM_CASES = [([5000, 4500], [1, 1]), ([2010, 7990], [20, 80]), ([50, 30, 20], [1, 1, 1]), ([10_000, 0], [1, 1])]


def main() -> None:
    out = {
        "provenance": {
            "generator": "tests/data/stats/make_gbstats_vectors.py",
            "gbstats_version": importlib.metadata.version("gbstats"),
            "python": sys.version.split()[0],
            "date": datetime.date.today().isoformat(),
            "note": "difference_type relative; frequentist TwoSidedTTest, SequentialTwoSidedTTest (tuning 5000), "
                    "EffectBayesianABTest with the default improper prior; alpha 0.05",
        },
        "cases": [],
        "srm": [],
    }
    for kind, control, treatment in CASES:
        a, b = stat(kind, control), stat(kind, treatment)
        fixed = TwoSidedTTest(a, b, FrequentistConfig(alpha=0.05))
        fixed_result = fixed.compute_result()
        a, b = stat(kind, control), stat(kind, treatment)
        seq = SequentialTwoSidedTTest(a, b, SequentialConfig(alpha=0.05, sequential_tuning_parameter=5000))
        seq_result = seq.compute_result()
        a, b = stat(kind, control), stat(kind, treatment)
        bayes = EffectBayesianABTest(a, b, EffectBayesianConfig(alpha=0.05)).compute_result()
        theta = fixed.stat_a.theta if kind == "cuped" else None
        out["cases"].append({
            "kind": kind, "control": control, "treatment": treatment,
            "theta": theta,
            "fixed": {"lift": fixed_result.expected, "se": fixed_result.uplift.stddev, "ci": list(fixed_result.ci),
                      "p_value": fixed_result.p_value, "dof": fixed.dof},
            "sequential": {"ci": list(seq_result.ci), "p_value": seq_result.p_value},
            "bayesian": {"chance_to_win": bayes.chance_to_win, "risk_control": bayes.risk[0],
                         "risk_treatment": bayes.risk[1], "ci": list(bayes.ci)},
        })
    for users, weights in SRM_CASES:
        out["srm"].append({"users": users, "weights": weights, "p_value": float(check_srm(users, weights))})
    json.dump(out, sys.stdout, indent=1, allow_nan=False, default=float)
    sys.stdout.write("\n")


if __name__ == "__main__":
    assert all(math.isfinite(x) for _, c, t in CASES for x in [*c.values(), *t.values()])
    main()
