"""Experiment statistics: each result checked against an independent computation.

Independent means scipy/statsmodels called directly on the same data, a closed form from the
literature, or a seeded simulation; never the module's own helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from activities.stats import (
    ContinuousMetric,
    ConversionMetric,
    Decision,
    DecisionSettings,
    ExperimentSnapshot,
    Guardrail,
    MeanArm,
    ProportionArm,
    StatsInputError,
    Verdict,
    adjust_p_values,
    always_valid_p_value,
    always_valid_test,
    beta_binomial,
    check_guardrail,
    check_minimum_sample,
    check_srm,
    decide,
    mde_means,
    mde_proportions,
    mixing_rho,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
    sequential_critical_value,
    two_proportion_test,
    welch_t_test,
)


def conversion(control: tuple[int, int], treatment: tuple[int, int], name: str = "checkout", **kw: object) -> ConversionMetric:
    return ConversionMetric(
        name=name,
        control=ProportionArm(users=control[0], conversions=control[1]),
        treatment=ProportionArm(users=treatment[0], conversions=treatment[1]),
        **kw,
    )


# -- SRM -----------------------------------------------------------------------------------------


def test_srm_flags_an_obviously_skewed_split() -> None:
    result = check_srm([5000, 4500])
    expected = stats.chisquare([5000, 4500], f_exp=[4750, 4750])
    assert result.srm_detected
    assert result.expected_counts == [4750, 4750]
    assert result.chi2 == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.df == 1


def test_srm_passes_a_fair_split() -> None:
    result = check_srm([5012, 4988])
    assert not result.srm_detected
    assert result.p_value > 0.5


def test_srm_compares_against_the_configured_weights() -> None:
    assert not check_srm([2010, 7990], [20, 80]).srm_detected
    assert check_srm([2010, 7990]).srm_detected


def test_srm_three_arm_chi_square_matches_hand_computation() -> None:
    # (16.67^2 + 3.33^2 + 13.33^2) / 33.33 = 14.0 with 2 degrees of freedom.
    result = check_srm([50, 30, 20])
    assert result.chi2 == pytest.approx(14.0)
    assert result.p_value == pytest.approx(math.exp(-7.0))  # chi2(2) survival is exp(-x/2)


def test_srm_is_not_assessed_below_the_minimum_count() -> None:
    result = check_srm([2, 7])
    assert not result.enough_data
    assert not result.srm_detected


def test_srm_threshold_is_configurable() -> None:
    counts = [5100, 4900]  # p ~ 0.046
    assert not check_srm(counts).srm_detected
    assert check_srm(counts, threshold=0.05).srm_detected


def test_srm_rejects_mismatched_weights() -> None:
    with pytest.raises(StatsInputError, match="one weight per arm"):
        check_srm([10, 10], [1, 1, 1])


# -- two-proportion and Welch tests ----------------------------------------------------------


def test_two_proportion_test_matches_statsmodels() -> None:
    result = two_proportion_test(ProportionArm(users=1000, conversions=200), ProportionArm(users=1000, conversions=250))
    z, p = proportions_ztest([250, 200], [1000, 1000])
    lo, hi = confint_proportions_2indep(250, 1000, 200, 1000, method="wald", compare="diff")
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(p)
    assert result.absolute_diff == pytest.approx(0.05)
    assert result.absolute_ci == pytest.approx((lo, hi))
    assert result.relative_lift == pytest.approx(0.25)
    assert result.significant and result.improved


def test_relative_lift_interval_uses_the_delta_method() -> None:
    p_c, p_t, n = 0.10, 0.12, 5000
    result = two_proportion_test(ProportionArm(users=n, conversions=500), ProportionArm(users=n, conversions=600))
    gradient = np.array([-p_t / p_c**2, 1 / p_c])  # d(p_t/p_c)/d(p_c, p_t)
    covariance = np.diag([p_c * (1 - p_c) / n, p_t * (1 - p_t) / n])
    se = math.sqrt(gradient @ covariance @ gradient)
    z = stats.norm.ppf(0.975)
    assert result.relative_standard_error == pytest.approx(se)
    assert result.relative_ci == pytest.approx((0.2 - z * se, 0.2 + z * se))


def test_welch_t_test_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(10, 2, 400), rng.normal(10.4, 3, 300)
    control = MeanArm(n=a.size, mean=a.mean(), sd=a.std(ddof=1))
    treatment = MeanArm(n=b.size, mean=b.mean(), variance=b.var(ddof=1))
    result = welch_t_test(control, treatment, alpha=0.1)
    expected = stats.ttest_ind(b, a, equal_var=False)
    ci = expected.confidence_interval(confidence_level=0.9)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.df == pytest.approx(expected.df)
    assert result.absolute_ci == pytest.approx((ci.low, ci.high))


def test_welch_t_test_from_stats_matches_scipy() -> None:
    control, treatment = MeanArm(n=50, mean=20.0, sd=5.0), MeanArm(n=60, mean=22.5, sd=7.0)
    result = welch_t_test(control, treatment)
    t, p = stats.ttest_ind_from_stats(22.5, 7.0, 60, 20.0, 5.0, 50, equal_var=False)
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(p)
    assert result.relative_lift == pytest.approx(0.125)


def test_lower_is_better_metric_improves_when_it_drops() -> None:
    result = welch_t_test(MeanArm(n=500, mean=3.0, sd=1.0), MeanArm(n=500, mean=2.7, sd=1.0), higher_is_better=False)
    assert result.improved and result.absolute_diff < 0


def test_welch_t_test_rejects_zero_variance() -> None:
    with pytest.raises(StatsInputError, match="zero variance"):
        welch_t_test(MeanArm(n=10, mean=1.0, sd=0.0), MeanArm(n=10, mean=2.0, sd=0.0))


def test_mean_arm_rejects_inconsistent_spread() -> None:
    with pytest.raises(ValueError, match="disagree"):
        MeanArm(n=10, mean=1.0, sd=2.0, variance=9.0)


def test_proportion_arm_rejects_more_conversions_than_users() -> None:
    with pytest.raises(ValueError, match="exceed users"):
        ProportionArm(users=10, conversions=11)


# -- power and sample size -----------------------------------------------------------------------


def test_sample_size_for_means_matches_statsmodels() -> None:
    plan = sample_size_means(sd=10.0, mde=2.0)
    expected = NormalIndPower().solve_power(effect_size=0.2, alpha=0.05, power=0.8, ratio=1.0)
    assert plan.n_control == math.ceil(expected)
    assert plan.n_total == 2 * plan.n_control
    assert plan.power >= 0.8


def test_sample_size_for_means_is_near_the_16_sigma_squared_rule() -> None:
    plan = sample_size_means(sd=1.0, mde=0.1)
    assert plan.n_control == pytest.approx(16 / 0.1**2, rel=0.02)


def test_sample_size_with_unequal_allocation_matches_statsmodels() -> None:
    plan = sample_size_means(sd=4.0, mde=1.0, ratio=2.0)
    expected = NormalIndPower().solve_power(effect_size=0.25, alpha=0.05, power=0.8, ratio=2.0)
    assert plan.n_control == math.ceil(expected)
    assert plan.n_treatment == math.ceil(2 * expected)


def test_sample_size_for_proportions_matches_statsmodels_with_average_variance() -> None:
    p_c, p_t = 0.10, 0.11
    sigma = math.sqrt((p_c * (1 - p_c) + p_t * (1 - p_t)) / 2)
    plan = sample_size_proportions(0.10, 0.10)  # 10% relative lift
    expected = NormalIndPower().solve_power(effect_size=(p_t - p_c) / sigma, alpha=0.05, power=0.8)
    assert plan.effect_absolute == pytest.approx(0.01)
    assert plan.n_control == math.ceil(expected)


def test_absolute_and_relative_mde_give_the_same_plan() -> None:
    assert sample_size_proportions(0.2, 0.02, mde_type="absolute").n_control == sample_size_proportions(0.2, 0.1).n_control


def test_achieved_power_matches_statsmodels() -> None:
    result = power_means(sd=10.0, mde=2.0, n_control=300, n_treatment=450, alpha=0.01)
    expected = NormalIndPower().power(effect_size=0.2, nobs1=300, alpha=0.01, ratio=1.5)
    assert result.power == pytest.approx(expected)


def test_achieved_power_for_proportions_matches_statsmodels() -> None:
    p_c, p_t = 0.05, 0.06
    sigma = math.sqrt((p_c * (1 - p_c) + p_t * (1 - p_t)) / 2)
    result = power_proportions(0.05, 0.01, 8000, mde_type="absolute")
    assert result.power == pytest.approx(NormalIndPower().power(effect_size=0.01 / sigma, nobs1=8000, alpha=0.05))


def test_mde_for_means_matches_statsmodels() -> None:
    result = mde_means(sd=10.0, n_control=500, baseline_mean=50.0)
    effect_size = NormalIndPower().solve_power(nobs1=500, alpha=0.05, power=0.8)
    assert result.mde_absolute == pytest.approx(effect_size * 10.0, rel=1e-5)
    assert result.mde_relative == pytest.approx(effect_size * 10.0 / 50.0, rel=1e-5)


def test_mde_for_proportions_is_where_power_reaches_the_target() -> None:
    result = mde_proportions(0.1, 10_000)
    assert result.mde_absolute is not None
    assert power_proportions(0.1, result.mde_absolute, 10_000, mde_type="absolute").power == pytest.approx(0.8, abs=1e-6)


def test_sequential_plans_need_more_units_than_fixed_horizon_ones() -> None:
    fixed = sample_size_proportions(0.1, 0.1)
    sequential = sample_size_proportions(0.1, 0.1, sequential_tuning=5000)
    assert sequential.n_control > fixed.n_control
    assert sequential.power >= 0.8


def test_impossible_mde_is_rejected_with_a_fix() -> None:
    with pytest.raises(StatsInputError, match="choose a smaller MDE"):
        sample_size_proportions(0.9, 0.2)


# -- sequential testing --------------------------------------------------------------------------


def test_sequential_halfwidth_is_howards_normal_mixture_boundary() -> None:
    alpha, tuning, n, sigma2 = 0.05, 5000.0, 12_000, 0.09  # sigma2: per-unit variance of the estimate
    rho = math.sqrt((2 * math.log(1 / alpha) + math.log(1 + 2 * math.log(1 / alpha))) / tuning)
    assert mixing_rho(alpha, tuning) == pytest.approx(rho)
    r = sigma2 / rho**2  # Howard's mixture precision
    v = sigma2 * n
    boundary = math.sqrt((v + r) * math.log((v + r) / (r * alpha**2))) / n
    se = math.sqrt(sigma2 / n)
    assert sequential_critical_value(n, alpha=alpha, tuning=tuning) * se == pytest.approx(boundary)


def test_always_valid_p_value_crosses_alpha_exactly_at_the_boundary() -> None:
    crit = sequential_critical_value(8000, alpha=0.05, tuning=5000)
    assert always_valid_p_value(crit, 8000, alpha=0.05, tuning=5000) == pytest.approx(0.05)
    assert always_valid_p_value(crit * 1.01, 8000) < 0.05 < always_valid_p_value(crit * 0.99, 8000)
    assert crit > stats.norm.ppf(0.975)


def test_always_valid_test_is_stricter_than_the_fixed_horizon_test() -> None:
    estimate = two_proportion_test(ProportionArm(users=10_000, conversions=1000), ProportionArm(users=10_000, conversions=1100))
    result = always_valid_test(estimate)
    assert estimate.significant and not result.significant
    assert result.absolute_cs[0] < estimate.absolute_ci[0] and result.absolute_cs[1] > estimate.absolute_ci[1]
    assert result.p_value > estimate.p_value


def test_always_valid_test_keeps_the_running_minimum() -> None:
    estimate = two_proportion_test(ProportionArm(users=5000, conversions=500), ProportionArm(users=5000, conversions=505))
    result = always_valid_test(estimate, previous_p_value=0.03)
    assert result.p_value_this_look == 1.0
    assert result.p_value == 0.03 and result.significant


def test_repeated_looks_under_the_null_keep_false_positives_below_alpha() -> None:
    """500 A/A experiments, 20 looks each: stopping at the first always-valid p < 0.05 stays below 5%,
    while stopping at the first fixed-horizon p < 0.05 does not."""
    rng = np.random.default_rng(20240501)
    experiments, looks, batch, rate = 500, 20, 500, 0.1
    conversions = rng.binomial(batch, rate, size=(experiments, looks, 2)).cumsum(axis=1)
    sequential_hits = peeking_hits = 0
    for e in range(experiments):
        seq_hit = peek_hit = False
        previous = None
        for look in range(looks):
            users = batch * (look + 1)
            estimate = two_proportion_test(
                ProportionArm(users=users, conversions=int(conversions[e, look, 0])),
                ProportionArm(users=users, conversions=int(conversions[e, look, 1])),
            )
            sequential = always_valid_test(estimate, previous_p_value=previous)
            previous = sequential.p_value
            seq_hit |= sequential.significant
            peek_hit |= estimate.significant
        sequential_hits += seq_hit
        peeking_hits += peek_hit
    assert sequential_hits / experiments <= 0.05
    assert peeking_hits / experiments > 0.10  # the inflation the sequential test exists to prevent


# -- Bayesian ------------------------------------------------------------------------------------


def test_identical_arms_have_an_even_chance_to_win() -> None:
    arm = ProportionArm(users=2000, conversions=150)
    result = beta_binomial(arm, arm)
    assert result.chance_to_win == pytest.approx(0.5, abs=1e-9)
    assert result.expected_loss_treatment == pytest.approx(result.expected_loss_control, rel=1e-7)


def test_chance_to_win_matches_the_closed_form_for_integer_posteriors() -> None:
    a_c, b_c, a_t, b_t = 1 + 30, 1 + 170, 1 + 45, 1 + 155  # 30/200 vs 45/200, uniform prior
    # Evan Miller: P(p_T > p_C) = sum_{i<a_T} B(a_C+i, b_C+b_T) / ((b_T+i) B(1+i, b_T) B(a_C, b_C)).
    closed = sum(
        math.exp(special.betaln(a_c + i, b_c + b_t) - math.log(b_t + i) - special.betaln(1 + i, b_t) - special.betaln(a_c, b_c))
        for i in range(a_t)
    )
    result = beta_binomial(ProportionArm(users=200, conversions=30), ProportionArm(users=200, conversions=45))
    assert result.chance_to_win == pytest.approx(closed, abs=1e-9)


def test_expected_losses_agree_with_a_seeded_monte_carlo() -> None:
    control, treatment = ProportionArm(users=3000, conversions=300), ProportionArm(users=3000, conversions=320)
    result = beta_binomial(control, treatment)
    rng = np.random.default_rng(11)
    p_c = rng.beta(301, 2701, 2_000_000)
    p_t = rng.beta(321, 2681, 2_000_000)
    assert result.chance_to_win == pytest.approx(np.mean(p_t > p_c), abs=2e-3)
    assert result.expected_loss_treatment == pytest.approx(np.mean(np.maximum(0, p_c - p_t)), rel=0.02)
    assert result.expected_loss_control == pytest.approx(np.mean(np.maximum(0, p_t - p_c)), rel=0.02)
    assert result.relative_loss_treatment == pytest.approx(np.mean(np.maximum(0, 1 - p_t / p_c)), rel=0.02)
    assert result.relative_loss_control == pytest.approx(np.mean(np.maximum(0, p_t / p_c - 1)), rel=0.02)


def test_clear_winner_meets_the_ship_bar() -> None:
    result = beta_binomial(ProportionArm(users=20_000, conversions=2000), ProportionArm(users=20_000, conversions=2300))
    assert result.chance_to_win > 0.99
    assert result.treatment_risk_level == "low" and result.meets_ship_bar


def test_relative_loss_of_control_is_undefined_without_control_conversions() -> None:
    result = beta_binomial(ProportionArm(users=100, conversions=0), ProportionArm(users=100, conversions=3))
    assert result.relative_loss_control is None
    assert result.chance_to_win > 0.9


# -- guardrails ----------------------------------------------------------------------------------


def test_guardrail_regression_p_value_matches_a_one_sided_welch_test() -> None:
    metric = ContinuousMetric(name="revenue", control=MeanArm(n=800, mean=10.0, sd=4.0), treatment=MeanArm(n=800, mean=9.5, sd=4.2))
    result = check_guardrail(Guardrail(metric=metric, margin_type="absolute"))
    expected = stats.ttest_ind_from_stats(9.5, 4.2, 800, 10.0, 4.0, 800, equal_var=False, alternative="less")
    assert result.p_regression == pytest.approx(expected.pvalue)
    assert result.status == "regressed"


def test_guardrail_non_inferiority_matches_a_shifted_one_sided_welch_test() -> None:
    metric = ContinuousMetric(name="revenue", control=MeanArm(n=2000, mean=10.0, sd=4.0), treatment=MeanArm(n=2000, mean=9.9, sd=4.0))
    result = check_guardrail(Guardrail(metric=metric, margin=0.5, margin_type="absolute"))
    expected = stats.ttest_ind_from_stats(9.9 + 0.5, 4.0, 2000, 10.0, 4.0, 2000, equal_var=False, alternative="greater")
    assert result.p_non_inferiority == pytest.approx(expected.pvalue)
    assert result.status == "non_inferior"


def test_guardrail_drop_within_margin_is_not_a_regression() -> None:
    metric = conversion((200_000, 40_000), (200_000, 39_400), name="signup")  # -1.5% relative, significant vs 0
    assert check_guardrail(Guardrail(metric=metric)).status == "regressed"
    assert check_guardrail(Guardrail(metric=metric, margin=0.05)).status == "non_inferior"


def test_lower_is_better_guardrail_regresses_when_it_rises() -> None:
    metric = conversion((10_000, 200), (10_000, 300), name="refund_rate", higher_is_better=False)
    result = check_guardrail(Guardrail(metric=metric, margin=0.1))
    assert result.status == "regressed"
    assert result.effect == pytest.approx(0.5)
    assert result.worst_plausible_effect is not None and result.worst_plausible_effect > 0.5


def test_guardrail_without_enough_data_is_not_tested() -> None:
    result = check_guardrail(Guardrail(metric=conversion((100, 3), (100, 9))))
    assert result.status == "insufficient_data" and result.p_regression is None


def test_sequential_guardrail_is_more_conservative() -> None:
    metric = conversion((20_000, 2000), (20_000, 1880), name="signup")
    fixed = check_guardrail(Guardrail(metric=metric))
    sequential = check_guardrail(Guardrail(metric=metric), sequential_tuning=5000)
    assert fixed.status == "regressed" and sequential.status == "not_established"
    assert sequential.p_regression > fixed.p_regression


def test_relative_margin_needs_a_positive_control_mean() -> None:
    metric = ContinuousMetric(name="net", control=MeanArm(n=500, mean=0.0, sd=1.0), treatment=MeanArm(n=500, mean=0.1, sd=1.0))
    with pytest.raises(StatsInputError, match="margin_type='absolute'"):
        check_guardrail(Guardrail(metric=metric, margin=0.01))


# -- corrections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "statsmodels_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_corrections_match_statsmodels(method: str, statsmodels_method: str) -> None:
    ps = [0.001, 0.012, 0.03, 0.04, 0.2, 0.5]
    reject, adjusted, _, _ = multipletests(ps, alpha=0.05, method=statsmodels_method)
    result = adjust_p_values(ps, method, alpha=0.05)  # type: ignore[arg-type]
    assert result.adjusted_p_values == pytest.approx(list(adjusted))
    assert result.rejected == list(reject)


def test_no_correction_passes_p_values_through() -> None:
    result = adjust_p_values([0.01, 0.07], "none")
    assert result.adjusted_p_values == [0.01, 0.07] and result.rejected == [True, False]


def test_corrections_reject_p_values_outside_0_1() -> None:
    with pytest.raises(StatsInputError, match=r"\[0, 1\]"):
        adjust_p_values([0.5, 1.2])


# -- minimum sample ------------------------------------------------------------------------------


def test_minimum_sample_needs_150_units_per_arm() -> None:
    result = check_minimum_sample(conversion((149, 20), (150, 20)))
    assert not result.passed and result.shortfalls == ["control has 149 units (needs 150)"]
    assert check_minimum_sample(conversion((150, 20), (150, 20))).passed


def test_minimum_sample_needs_more_than_5_conversions_and_non_conversions() -> None:
    assert not check_minimum_sample(conversion((1000, 5), (1000, 40))).passed
    assert not check_minimum_sample(conversion((1000, 995), (1000, 990))).passed
    assert check_minimum_sample(conversion((1000, 6), (1000, 994))).passed


def test_minimum_sample_for_continuous_metrics_counts_units() -> None:
    metric = ContinuousMetric(control=MeanArm(n=150, mean=1.0, sd=1.0), treatment=MeanArm(n=149, mean=1.0, sd=1.0))
    assert check_minimum_sample(metric).shortfalls == ["treatment has 149 units (needs 150)"]


# -- verdict -------------------------------------------------------------------------------------

WIN = conversion((10_000, 1000), (10_000, 1100))  # +10%, p ~ 0.021
BIG_WIN = conversion((10_000, 1000), (10_000, 1200))  # +20%, p ~ 1e-5
LOSS = conversion((10_000, 1000), (10_000, 900))
FLAT = conversion((10_000, 1000), (10_000, 1020))


def test_verdict_srm_blocks_interpretation() -> None:
    verdict = decide(ExperimentSnapshot(primary=BIG_WIN, assignment_counts=[10_000, 9_000], days_running=7))
    assert verdict.decision == Decision.INCONCLUSIVE
    assert verdict.srm.srm_detected and verdict.primary is None
    assert "do not interpret" in verdict.reason


def test_verdict_continues_below_the_minimum_sample() -> None:
    verdict = decide(ExperimentSnapshot(primary=conversion((120, 30), (120, 60)), days_running=7))
    assert verdict.decision == Decision.CONTINUE
    assert verdict.primary is None and "120 units (needs 150)" in verdict.reason


def relative_wald_p(x_c: int, n_c: int, x_t: int, n_t: int) -> float:
    """Two-sided p of the relative lift over its delta-method SE (the scale the verdict's interval is on)."""
    p_c, p_t = x_c / n_c, x_t / n_t
    se = math.sqrt(p_t * (1 - p_t) / (n_t * p_c**2) + p_t**2 * p_c * (1 - p_c) / (n_c * p_c**4))
    return float(2 * stats.norm.sf(abs(p_t / p_c - 1) / se))


def test_verdict_ships_a_significant_improvement() -> None:
    verdict = decide(ExperimentSnapshot(primary=WIN, days_running=14))
    assert verdict.decision == Decision.SHIP_WINNER and verdict.winner == "treatment"
    assert verdict.primary is not None and verdict.primary.relative_lift == pytest.approx(0.1)
    assert verdict.primary.p_value == pytest.approx(proportions_ztest([1100, 1000], [10_000, 10_000])[1])
    assert verdict.primary_p_value == pytest.approx(relative_wald_p(1000, 10_000, 1100, 10_000))


def test_verdict_kills_a_significant_loser() -> None:
    assert decide(ExperimentSnapshot(primary=LOSS, days_running=14)).decision == Decision.KILL_LOSER


def test_verdict_kills_on_guardrail_regression_even_when_the_primary_wins() -> None:
    refunds = conversion((10_000, 200), (10_000, 300), name="refund_rate", higher_is_better=False)
    verdict = decide(ExperimentSnapshot(primary=BIG_WIN, guardrails=[Guardrail(metric=refunds)], days_running=14))
    assert verdict.decision == Decision.KILL_LOSER
    assert "refund_rate" in verdict.reason and verdict.guardrails[0].status == "regressed"


def test_verdict_continues_when_not_significant_before_the_horizon() -> None:
    verdict = decide(ExperimentSnapshot(primary=FLAT, days_running=7), DecisionSettings(planned_n_per_arm=30_000))
    assert verdict.decision == Decision.CONTINUE
    assert "10000 of 30000" in verdict.reason


def test_verdict_is_inconclusive_at_the_horizon_with_power_and_mde() -> None:
    verdict = decide(ExperimentSnapshot(primary=FLAT, days_running=14), DecisionSettings(planned_n_per_arm=10_000))
    assert verdict.decision == Decision.INCONCLUSIVE
    assert verdict.achieved_power == pytest.approx(power_proportions(0.1, 0.1, 10_000).power)
    assert verdict.mde_at_current_n == pytest.approx(mde_proportions(0.1, 10_000).mde_relative)
    assert "power" in verdict.reason


def test_verdict_does_not_act_on_an_interim_fixed_horizon_peek() -> None:
    verdict = decide(ExperimentSnapshot(primary=WIN, days_running=14), DecisionSettings(planned_n_per_arm=20_000))
    assert verdict.decision == Decision.CONTINUE
    assert "only valid at its planned sample" in verdict.reason


def test_verdict_waits_for_the_minimum_duration_before_shipping() -> None:
    verdict = decide(ExperimentSnapshot(primary=BIG_WIN, days_running=1))
    assert verdict.decision == Decision.CONTINUE and "minimum 3 days" in verdict.reason


def test_verdict_correction_can_remove_a_marginal_win() -> None:
    marginal = conversion((10_000, 1000), (10_000, 1090))
    secondary = conversion((10_000, 500), (10_000, 500), name="add_to_cart")
    snapshot = ExperimentSnapshot(primary=marginal, secondary=[secondary], days_running=14)
    assert 0.025 < two_proportion_test(marginal.control, marginal.treatment).p_value < 0.05
    assert decide(snapshot).decision == Decision.SHIP_WINNER
    corrected = decide(snapshot, DecisionSettings(correction="holm"))
    assert corrected.decision == Decision.INCONCLUSIVE
    assert corrected.primary_p_value == pytest.approx(
        multipletests([relative_wald_p(1000, 10_000, 1090, 10_000), 1.0], method="holm")[1][0])


def test_verdict_sequential_continues_on_a_result_only_a_peek_would_call() -> None:
    verdict = decide(ExperimentSnapshot(primary=WIN, days_running=14), DecisionSettings(method="sequential"))
    assert verdict.decision == Decision.CONTINUE
    assert verdict.primary_sequential is not None and not verdict.primary_sequential.significant
    assert verdict.horizon_n_per_arm == sample_size_proportions(0.1, 0.1, sequential_tuning=5000, relative_test=True).n_control


def test_verdict_sequential_ships_a_strong_result_early() -> None:
    verdict = decide(ExperimentSnapshot(primary=BIG_WIN, days_running=7), DecisionSettings(method="sequential"))
    assert verdict.decision == Decision.SHIP_WINNER
    assert "always-valid" in verdict.reason


def test_verdict_requiring_non_inferiority_holds_back_an_unproven_guardrail() -> None:
    noisy = conversion((10_000, 100), (10_000, 104), name="support_tickets", higher_is_better=False)
    snapshot = ExperimentSnapshot(primary=BIG_WIN, guardrails=[Guardrail(metric=noisy, margin=0.02)], days_running=14)
    assert decide(snapshot).decision == Decision.SHIP_WINNER
    held = decide(snapshot, DecisionSettings(require_non_inferiority=True))
    assert held.decision == Decision.INCONCLUSIVE and "support_tickets" in held.reason


def test_verdict_ships_a_drop_in_a_lower_is_better_primary() -> None:
    latency = ContinuousMetric(
        name="load_time", higher_is_better=False,
        control=MeanArm(n=5000, mean=2.0, sd=0.8), treatment=MeanArm(n=5000, mean=1.9, sd=0.8),
    )
    assert decide(ExperimentSnapshot(primary=latency, days_running=7)).decision == Decision.SHIP_WINNER


def test_verdict_warns_about_a_suspicious_lift() -> None:
    verdict = decide(ExperimentSnapshot(primary=conversion((5000, 100), (5000, 200)), days_running=7))
    assert any("suspicious" in w for w in verdict.warnings)


def test_verdict_round_trips_as_json() -> None:
    refunds = conversion((10_000, 200), (10_000, 210), name="refund_rate", higher_is_better=False)
    verdict = decide(ExperimentSnapshot(primary=WIN, guardrails=[Guardrail(metric=refunds, margin=0.1)], days_running=7))
    assert Verdict.model_validate_json(verdict.model_dump_json()) == verdict
