"""activities.stats against GrowthBook's gbstats, on golden vectors computed outside the repository.

tests/data/stats/gbstats_vectors.json holds gbstats' outputs (its version, the date and the
inputs are in the file's provenance) for conversion, continuous, CUPED and ratio metrics; the
generator is tests/data/stats/make_gbstats_vectors.py, run in a separate virtualenv. gbstats
reads every effect on the relative scale with the delta method, as the verdict does.

One known difference: gbstats reads a conversion metric with Student's t (Welch degrees of
freedom), activities.stats with the normal distribution of the two-proportion z-test. At these
sizes (thousands of units, thousands of degrees of freedom) the two differ in the fourth digit, so
conversion p-values and intervals are compared at 1e-3 relative; everything else to 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from activities.stats import (
    ContinuousMetric,
    ConversionMetric,
    Covariate,
    MeanArm,
    ProportionArm,
    RatioArm,
    RatioMetric,
    always_valid_test,
    check_srm,
    compare,
    normal_readout,
)
from activities.stats.arms import Metric

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "stats" / "gbstats_vectors.json").read_text())
CASES = VECTORS["cases"]


def metric_of(case: dict[str, Any]) -> Metric:
    kind, c, t = case["kind"], case["control"], case["treatment"]
    if kind == "conversion":
        return ConversionMetric(control=ProportionArm(**c), treatment=ProportionArm(**t))
    if kind == "continuous":
        return ContinuousMetric(control=MeanArm(**c), treatment=MeanArm(**t))
    if kind == "cuped":
        def arm(a: dict[str, float]) -> MeanArm:
            return MeanArm(n=int(a["n"]), mean=a["mean"], sd=a["sd"],
                           pre=Covariate(mean=a["pre_mean"], sd=a["pre_sd"], covariance=a["covariance"]))
        return ContinuousMetric(control=arm(c), treatment=arm(t))
    return RatioMetric(control=RatioArm(**c), treatment=RatioArm(**t))


def tolerance(case: dict[str, Any]) -> float:
    return 1e-3 if case["kind"] == "conversion" else 1e-9


def ids(case: dict[str, Any]) -> str:
    return f"{case['kind']}-{case['control'].get('n', case['control'].get('users'))}"


def test_the_vectors_say_where_they_come_from() -> None:
    provenance = VECTORS["provenance"]
    assert provenance["gbstats_version"] and provenance["date"] and provenance["generator"].endswith(".py")
    assert {c["kind"] for c in CASES} == {"conversion", "continuous", "cuped", "ratio"}


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_relative_lift_and_its_delta_method_se_match_gbstats(case: dict[str, Any]) -> None:
    est = compare(metric_of(case))
    assert est.decision_scale == "relative"
    assert est.relative_lift == pytest.approx(case["fixed"]["lift"], rel=1e-9, abs=1e-12)
    assert est.relative_standard_error == pytest.approx(case["fixed"]["se"], rel=1e-9)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_fixed_horizon_p_value_and_interval_match_gbstats(case: dict[str, Any]) -> None:
    est = compare(metric_of(case))
    assert est.decision_p_value == pytest.approx(case["fixed"]["p_value"], rel=tolerance(case))
    assert est.relative_ci == pytest.approx(tuple(case["fixed"]["ci"]), rel=tolerance(case))
    if case["kind"] != "conversion":
        assert est.df == pytest.approx(case["fixed"]["dof"], rel=1e-9)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_sequential_p_value_and_confidence_sequence_match_gbstats(case: dict[str, Any]) -> None:
    seq = always_valid_test(compare(metric_of(case)), tuning=5000)
    assert seq.p_value == pytest.approx(case["sequential"]["p_value"], rel=1e-9)
    assert seq.relative_cs == pytest.approx(tuple(case["sequential"]["ci"]), rel=1e-9)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "cuped"], ids=ids)
def test_cuped_theta_matches_gbstats(case: dict[str, Any]) -> None:
    est = compare(metric_of(case))
    assert est.cuped is not None and est.cuped.theta == pytest.approx(case["theta"], rel=1e-9)
    assert 0 < est.cuped.variance_reduction < 1


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_normal_bayesian_readout_matches_gbstats(case: dict[str, Any]) -> None:
    est = compare(metric_of(case))
    assert est.relative_lift is not None and est.relative_standard_error is not None
    readout = normal_readout(est.relative_lift, est.relative_standard_error)
    assert readout.chance_to_beat_control == pytest.approx(case["bayesian"]["chance_to_win"], rel=1e-9)
    assert readout.expected_loss == pytest.approx(case["bayesian"]["risk_treatment"], rel=1e-6, abs=1e-12)
    assert readout.expected_loss_control == pytest.approx(case["bayesian"]["risk_control"], rel=1e-6, abs=1e-12)
    assert readout.credible_interval == pytest.approx(tuple(case["bayesian"]["ci"]), rel=1e-9)


@pytest.mark.parametrize("case", VECTORS["srm"], ids=lambda c: str(c["users"]))
def test_chi_square_srm_matches_gbstats(case: dict[str, Any]) -> None:
    assert check_srm(case["users"], case["weights"]).p_value == pytest.approx(case["p_value"], rel=1e-9, abs=1e-300)
