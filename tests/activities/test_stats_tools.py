"""The statistics tools of issue 13 through the tool registry (`call_tool`, as a workflow calls them):
the control by name, plans for the test that is run, every arm reported, CUPED, ratio metrics,
capping, the Bayesian read-out, and every input error a non-retryable BadRequest naming its field.
Numbers are checked against activities.stats' own tested functions or against scipy/statsmodels."""

from __future__ import annotations

import math
from typing import Any

import pytest
from statsmodels.stats.multitest import multipletests
from temporalio.exceptions import ApplicationError

from activities.stats import sample_size_means, sample_size_proportions
from activities.tools.registry import call_tool


def variant(name: str, users: int, conversions: int, **extra: float) -> dict[str, Any]:
    return {"variant": name, "users": users, "conversions": conversions,
            "conversion_rate": conversions / users if users else 0.0, **extra}


def readout(*variants: dict[str, Any], kind: str = "conversion", **extra: Any) -> dict[str, Any]:
    return {"experiment_key": "exp", "metric": "checkout_conversion", "metric_kind": kind,
            "variants": list(variants), "as_of": "2026-01-01T00:00:00Z", **extra}


async def bad_request(tool: str, arguments: dict[str, Any]) -> str:
    with pytest.raises(ApplicationError) as err:
        await call_tool(tool, arguments)
    assert err.value.type == "BadRequest" and err.value.non_retryable, err.value
    return str(err.value)


# Alphabetical, as GA4, Mixpanel and the warehouse return them: blue_button sorts first.
BLUE_WINS = readout(variant("blue_button", 60_000, 6402), variant("control", 60_000, 6000))


# -- finding 1 ------------------------------------------------------------------------------------


async def test_finding_1_the_control_is_chosen_by_name_not_position() -> None:
    verdict = await call_tool("calculate_significance", {"results": BLUE_WINS, "days_running": 14})
    assert (verdict["decision"], verdict["winner"], verdict["control"]) == ("SHIP_WINNER", "blue_button", "control")
    assert verdict["lift"] == pytest.approx(0.067) and verdict["ship"] and not verdict["kill"]
    assert "(blue_button)" in verdict["headline"] and " vs control" in verdict["headline"]


async def test_results_without_the_named_control_are_refused_with_the_variants_present() -> None:
    message = await bad_request("calculate_significance", {"results": BLUE_WINS, "control": "baseline"})
    assert "'blue_button', 'control'" in message and "Set `control:`" in message
    renamed = readout(variant("baseline", 60_000, 6000), variant("blue_button", 60_000, 6402))
    verdict = await call_tool("calculate_significance", {"results": renamed, "control": "baseline", "days_running": 14})
    assert verdict["winner"] == "blue_button" and verdict["control"] == "baseline"


# -- finding 2 ------------------------------------------------------------------------------------


async def test_finding_2_the_plan_is_for_the_sequential_test_and_the_verdict_reads_it_there() -> None:
    plan = await call_tool("calculate_sample_size", {"baseline_rate": 0.12, "mde": 0.05, "daily_users": 4000})
    expected = sample_size_proportions(0.12, 0.05, sequential_tuning=5000, relative_test=True)
    assert (plan["method"], plan["n_per_arm"], plan["total"]) == ("sequential", expected.n_control,
                                                                  2 * expected.n_control)
    fixed = await call_tool("calculate_sample_size", {"baseline_rate": 0.12, "mde": 0.05, "method": "fixed_horizon"})
    assert fixed["n_per_arm"] < plan["n_per_arm"]
    flat = readout(variant("control", 20_000, 2400), variant("treatment", 20_000, 2410))
    verdict = await call_tool("calculate_significance", {"results": flat, "days_running": 10,
                                                         "planned_n_per_arm": plan["n_per_arm"]})
    assert verdict["horizon_n_per_arm"] == plan["n_per_arm"] and verdict["decision"] == "CONTINUE"


async def test_a_multi_arm_plan_splits_alpha_and_counts_every_arm() -> None:
    plan = await call_tool("calculate_sample_size", {"baseline_rate": 0.1, "mde": 0.1, "treatments": 2,
                                                     "method": "fixed_horizon"})
    expected = sample_size_proportions(0.1, 0.1, alpha=0.025, relative_test=True)
    assert plan["alpha_per_comparison"] == 0.025 and plan["n_per_arm"] == expected.n_control
    assert plan["total"] == 3 * plan["n_per_arm"]


async def test_a_continuous_metric_is_planned_from_its_mean_and_sd() -> None:
    plan = await call_tool("calculate_sample_size", {"baseline_mean": 40.0, "sd": 25.0, "mde": 0.05,
                                                     "method": "fixed_horizon"})
    assert plan["n_per_arm"] == sample_size_means(25.0, 0.05, mde_type="relative", baseline_mean=40.0,
                                                  relative_test=True).n_control


async def test_sample_size_fixed_horizon_matches_the_relative_test_formula() -> None:
    plan = await call_tool("calculate_sample_size", {"baseline_rate": 0.12, "mde": 0.1, "method": "fixed_horizon"})
    # n = (z_{0.975} + z_{0.8})^2 (p2 q2 + (p2/p1)^2 p1 q1) / (p2 - p1)^2: the delta-method test of the lift
    p1, p2 = 0.12, 0.132
    n = (1.959964 + 0.841621) ** 2 * (p2 * (1 - p2) + (p2 / p1) ** 2 * p1 * (1 - p1)) / (p2 - p1) ** 2
    assert plan["n_per_arm"] == pytest.approx(n, abs=2)


# -- finding 3 ------------------------------------------------------------------------------------


async def test_finding_3_fixed_horizon_guardrails_read_before_the_horizon_are_sequential() -> None:
    # refunds +25%: beyond the 2% margin at one-sided fixed p ~ 0.03, not yet for the always-valid test
    results = readout(variant("control", 10_000, 1000), variant("treatment", 10_000, 1010),
                      guardrails=[readout(variant("control", 10_000, 200), variant("treatment", 10_000, 250),
                                          higher_is_better=False) | {"metric": "refund_rate"}])
    early = await call_tool("calculate_significance", {"results": results, "method": "fixed_horizon",
                                                       "planned_n_per_arm": 20_000, "days_running": 7})
    final = await call_tool("calculate_significance", {"results": results, "method": "fixed_horizon",
                                                       "planned_n_per_arm": 10_000, "days_running": 14})
    assert early["guardrails"][0]["sequential"] and early["decision"] == "CONTINUE"
    assert not final["guardrails"][0]["sequential"] and final["decision"] == "KILL_LOSER"


async def test_check_guardrails_reads_sequentially_by_default() -> None:
    results = readout(variant("control", 10_000, 1000), variant("treatment", 10_000, 1010),
                      guardrails=[readout(variant("control", 10_000, 200), variant("treatment", 10_000, 240),
                                          higher_is_better=False) | {"metric": "refund_rate"}])
    report = await call_tool("check_guardrails", {"results": results})
    assert report["results"][0]["sequential"] and report["passed"]


# -- finding 4 ------------------------------------------------------------------------------------


async def test_finding_4_a_treatment_that_gets_nobody_stops_the_verdict() -> None:
    empty = readout(variant("control", 10_000, 1000), variant("treatment", 0, 0))
    verdict = await call_tool("calculate_significance", {"results": empty, "days_running": 14})
    assert verdict["srm"]["srm_detected"] and verdict["srm"]["method"] == "sequential"
    assert verdict["decision"] == "INCONCLUSIVE" and "do not interpret" in verdict["reason"]
    assert (await call_tool("check_srm", {"observed": [10_000, 0]}))["srm_detected"]


async def test_check_srm_offers_the_sequential_test() -> None:
    fixed = await call_tool("check_srm", {"observed": [50_500, 49_500], "threshold": 0.01})
    daily = await call_tool("check_srm", {"observed": [50_500, 49_500], "threshold": 0.01, "method": "sequential"})
    assert fixed["srm_detected"] and not daily["srm_detected"]  # p 0.0016 read once; not evidence on a daily read
    assert daily["method"] == "sequential" and daily["bayes_factor"] < 100


# -- finding 5 ------------------------------------------------------------------------------------


async def test_finding_5_an_infinite_mean_is_refused_as_a_bad_request() -> None:
    infinite = readout(variant("control", 5000, 5000, value_mean=20.0, value_sd=8.0),
                       variant("treatment", 5000, 5000, value_mean=math.inf, value_sd=8.0), kind="continuous")
    message = await bad_request("calculate_significance", {"results": infinite, "days_running": 14})
    assert "value_mean" in message


@pytest.mark.parametrize(("tool", "arguments", "field"), [
    ("calculate_significance", {"results": BLUE_WINS, "days_running": math.inf}, "days_running"),
    ("calculate_significance", {"results": BLUE_WINS, "expected_split": [1.0, math.nan]}, "expected_split"),
    ("check_srm", {"observed": [10, 10], "expected_weights": [math.nan, 1.0]}, "expected_weights"),
    ("calculate_sample_size", {"baseline_rate": 0.1, "mde": math.inf}, "mde"),
])
async def test_non_finite_arguments_are_refused_by_field(tool: str, arguments: dict[str, Any], field: str) -> None:
    assert field in await bad_request(tool, arguments)


# -- finding 6 ------------------------------------------------------------------------------------


THREE = readout(variant("control", 20_000, 2000), variant("green", 20_000, 2030), variant("red", 20_000, 2260))


async def test_finding_6_a_third_arm_is_reported_and_corrected() -> None:
    verdict = await call_tool("calculate_significance", {"results": THREE, "days_running": 14})
    arms = {a["variant"]: a for a in verdict["arms"]}
    assert set(arms) == {"green", "red"} and verdict["winner"] == "red"
    raw = [arms["green"]["p_value"], arms["red"]["p_value"]]
    assert [arms["green"]["adjusted_p_value"], arms["red"]["adjusted_p_value"]] == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    assert verdict["p_value"] == arms["red"]["adjusted_p_value"]
    assert (verdict["lift_ci_low"], verdict["lift_ci_high"]) == (arms["red"]["lift_ci_low"], arms["red"]["lift_ci_high"])
    assert "holm-adjusted" in verdict["headline"] and "'green'" in verdict["reason"]


async def test_the_headline_interval_agrees_with_the_headline_p_value() -> None:
    for results in (THREE, BLUE_WINS, readout(variant("control", 20_000, 2000), variant("b", 20_000, 2085))):
        for method in ("sequential", "fixed_horizon"):
            v = await call_tool("calculate_significance", {"results": results, "days_running": 14, "method": method,
                                                           "planned_n_per_arm": 20_000})
            for arm in v["arms"]:
                assert (arm["lift_ci_low"] > 0 or arm["lift_ci_high"] < 0) == (arm["adjusted_p_value"] < 0.05)


# The seven kinds of input the audit found retried instead of refused.
SEVEN_KINDS = [
    ("calculate_sample_size", {"baseline_rate": 0.9, "mde": 0.5}, "MDE"),
    ("calculate_sample_size", {"baseline_rate": 0.1, "mde": 1e-12}, "mde"),
    ("calculate_significance", {"results": readout(variant("control", 100, 200), variant("t", 100, 10))},
     "conversions (200) exceed users (100)"),
    ("calculate_significance", {"results": readout(variant("control", -1, 0), variant("t", 100, 10))}, "users"),
    ("calculate_significance", {"results": readout(variant("control", 1000, 1000, value_mean=1.0, value_sd=-1.0),
                                                   variant("t", 1000, 1000, value_mean=1.0, value_sd=1.0),
                                                   kind="continuous")}, "sd"),
    ("calculate_significance", {"results": readout(variant("control", 1000, 100), variant("t", 1000, 100),
                                                   guardrails=[readout(variant("control", 1000, 2000),
                                                                       variant("t", 1000, 100))])},
     "conversions (2000) exceed users (1000)"),
    ("check_guardrails", {"results": readout(variant("control", 1000, 100), variant("t", 1000, 100),
                                             guardrails=[readout(variant("control", 1000, 2000),
                                                                 variant("t", 1000, 100))])},
     "conversions (2000) exceed users (1000)"),
]


@pytest.mark.parametrize(("tool", "arguments", "says"), SEVEN_KINDS,
                         ids=["impossible-mde", "power-out-of-reach", "conversions-above-users", "negative-users",
                              "negative-sd", "guardrail-arm", "check-guardrails-arm"])
async def test_finding_6_input_errors_are_bad_requests_that_name_the_field(tool: str, arguments: dict[str, Any],
                                                                           says: str) -> None:
    assert says in await bad_request(tool, arguments)


async def test_a_missing_field_of_a_metric_kind_is_named() -> None:
    ratio = readout(variant("control", 1000, 1000, numerator_mean=5.0), variant("t", 1000, 1000), kind="ratio")
    message = await bad_request("calculate_significance", {"results": ratio})
    assert "numerator_sd" in message and "'control'" in message


# -- CUPED, ratio, capping, minimum meaningful change, Bayesian -----------------------------------


def cuped_variant(name: str, mean: float, pre_mean: float) -> dict[str, Any]:
    return variant(name, 8000, 8000, value_mean=mean, value_sd=4.0, pre_mean=pre_mean, pre_sd=3.8, pre_covariance=11.0)


async def test_cuped_is_applied_when_every_arm_has_pre_period_statistics() -> None:
    results = readout(cuped_variant("control", 10.0, 9.5), cuped_variant("treatment", 10.2, 9.5), kind="continuous")
    adjusted = await call_tool("calculate_significance", {"results": results, "days_running": 14})
    plain = await call_tool("calculate_significance", {"results": results, "days_running": 14, "cuped": False})
    assert adjusted["cuped_applied"] and not plain["cuped_applied"]
    rho2 = (11.0 / (4.0 * 3.8)) ** 2  # the variance shrinks by 1 - rho^2 (equal pre-means: theta is the pooled slope)
    assert adjusted["variance_reduction"] == pytest.approx(rho2, rel=1e-3)
    assert adjusted["p_value"] < plain["p_value"]


async def test_cuped_is_not_applied_when_an_arm_lacks_the_covariate() -> None:
    results = readout(cuped_variant("control", 10.0, 9.5),
                      variant("treatment", 8000, 8000, value_mean=10.2, value_sd=4.0), kind="continuous")
    verdict = await call_tool("calculate_significance", {"results": results, "days_running": 14})
    assert not verdict["cuped_applied"] and verdict["variance_reduction"] is None


async def test_a_ratio_metric_is_judged_with_the_delta_method() -> None:
    def arm(name: str, revenue: float) -> dict[str, Any]:
        return variant(name, 6000, 6000, numerator_mean=revenue, numerator_sd=20.0, denominator_mean=3.0,
                       denominator_sd=2.0, numerator_denominator_covariance=15.0)
    verdict = await call_tool("calculate_significance", {"results": readout(arm("control", 12.0), arm("treatment", 13.2),
                                                                            kind="ratio"), "days_running": 14})
    assert verdict["metric_kind"] == "ratio" and verdict["primary"]["test"] == "delta_method_ratio"
    assert verdict["lift"] == pytest.approx(0.1)


async def test_winsorised_values_are_taken_as_given_and_the_cap_is_reported() -> None:
    capped = readout(variant("control", 5000, 5000, value_mean=20.0, value_sd=8.0, capped_at=250.0),
                     variant("treatment", 5000, 5000, value_mean=20.6, value_sd=8.0, capped_at=250.0),
                     kind="continuous")
    verdict = await call_tool("calculate_significance", {"results": capped, "days_running": 14})
    assert verdict["capped_at"] == {"control": 250.0, "treatment": 250.0}
    assert verdict["lift"] == pytest.approx(0.03) and any("winsorised" in w for w in verdict["warnings"])


async def test_a_win_below_the_minimum_meaningful_change_is_not_shipped() -> None:
    small = readout(variant("control", 200_000, 20_000), variant("treatment", 200_000, 20_700))
    args = {"results": small, "days_running": 14, "method": "fixed_horizon", "planned_n_per_arm": 200_000}
    assert (await call_tool("calculate_significance", args))["decision"] == "SHIP_WINNER"
    held = await call_tool("calculate_significance", args | {"min_meaningful_change": 0.05})
    assert (held["decision"], held["ship"]) == ("INCONCLUSIVE", False)


async def test_the_bayesian_readout_is_an_option_of_the_verdict() -> None:
    verdict = await call_tool("calculate_significance", {"results": THREE, "days_running": 14, "bayesian": True})
    readouts = {a["variant"]: a["bayesian"] for a in verdict["arms"]}
    assert readouts["red"]["chance_to_beat_control"] > 0.99 and readouts["red"]["method"] == "beta_binomial"
    low, high = readouts["green"]["credible_interval"]
    assert low < 0.015 < high and readouts["green"]["expected_loss"] >= 0
    plain = await call_tool("calculate_significance", {"results": THREE, "days_running": 14})
    assert all(a["bayesian"] is None for a in plain["arms"])


async def test_check_guardrails_compares_every_treatment_with_the_named_control() -> None:
    results = readout(variant("baseline", 10_000, 1000), variant("a", 10_000, 1000), variant("b", 10_000, 1000),
                      guardrails=[readout(variant("a", 10_000, 200), variant("b", 10_000, 400),
                                          variant("baseline", 10_000, 200), higher_is_better=False)
                                  | {"metric": "refund_rate"}])
    report = await call_tool("check_guardrails", {"results": results, "control": "baseline"})
    status = {r["variant"]: r["status"] for r in report["results"]}
    assert status["b"] == "regressed" and status["a"] != "regressed" and report["passed"] is False
    assert "(b)" in " ".join(report["messages"])


async def test_the_verdicts_srm_can_be_the_fixed_chi_square_test() -> None:
    skewed = readout(variant("control", 50_500, 5050), variant("treatment", 49_500, 4950))
    fixed = await call_tool("calculate_significance", {"results": skewed, "srm_method": "fixed", "days_running": 14})
    daily = await call_tool("calculate_significance", {"results": skewed, "days_running": 14})
    assert fixed["srm"]["method"] == "fixed" and daily["srm"]["method"] == "sequential"
    assert fixed["srm"]["p_value"] < daily["srm"]["p_value"]
