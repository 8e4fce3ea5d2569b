"""The decision-grade statistics of issue 13, each checked against an independent computation
(scipy/statsmodels on the same data, raw-data recomputation, or a closed form written out here).

The issue's audit findings each have a test named for them (``test_finding_N_...``); the tool-level
counterparts are in tests/activities/test_stats_tools.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from statsmodels.stats.multitest import multipletests

from activities.stats import (
    ContinuousMetric,
    ConversionMetric,
    Covariate,
    Decision,
    DecisionSettings,
    ExperimentSnapshot,
    Guardrail,
    MeanArm,
    ProportionArm,
    RatioArm,
    RatioMetric,
    StatsInputError,
    beta_readout,
    check_srm,
    compare,
    decide,
    sample_size_proportions,
)


def conversion(control: tuple[int, int], treatment: tuple[int, int], variant: str = "treatment",
               name: str = "checkout", **kw: object) -> ConversionMetric:
    return ConversionMetric(name=name, variant=variant, control=ProportionArm(users=control[0], conversions=control[1]),
                            treatment=ProportionArm(users=treatment[0], conversions=treatment[1]), **kw)


def howard_critical_value(n_total: float, alpha: float, tuning: float, level: float | None = None) -> float:
    """The normal-mixture boundary in standard errors, written out independently of the module."""
    level = alpha if level is None else level
    rho2 = (2 * math.log(1 / alpha) + math.log(1 + 2 * math.log(1 / alpha))) / tuning
    a = n_total * rho2
    return math.sqrt(2 * (a + 1) / a * math.log(math.sqrt(a + 1) / level))


# -- finding 1: arms by name --------------------------------------------------------------------


def test_finding_1_each_treatment_names_its_arm_in_the_verdict() -> None:
    blue = conversion((10_000, 1000), (10_000, 1067), variant="blue_button")
    verdict = decide(ExperimentSnapshot(primary=[blue], days_running=14), DecisionSettings(method="sequential",
                                                                                          planned_n_per_arm=10_000))
    assert verdict.variant == "blue_button" and [a.variant for a in verdict.arms] == ["blue_button"]
    assert verdict.primary is not None and verdict.primary.relative_lift == pytest.approx(0.067)


def test_a_treatment_cannot_share_the_controls_name() -> None:
    with pytest.raises(ValidationError, match="cannot also be a treatment"):
        ExperimentSnapshot(primary=conversion((1000, 100), (1000, 110), variant="control"))


# -- finding 2: plan what you test ----------------------------------------------------------------


def test_finding_2_the_sequential_plan_has_the_promised_power_under_the_sequential_test() -> None:
    p, mde, alpha, tuning = 0.12, 0.05, 0.05, 5000.0
    plan = sample_size_proportions(p, mde, sequential_tuning=tuning, relative_test=True)

    def power(n: int) -> float:  # the relative-lift test at the final look, written out
        p_t = p * (1 + mde)
        se = math.sqrt(p_t * (1 - p_t) / (n * p**2) + p_t**2 * p * (1 - p) / (n * p**4))
        shift = mde / se
        crit = howard_critical_value(2 * n, alpha, tuning)
        return float(stats.norm.cdf(shift - crit) + stats.norm.cdf(-shift - crit))

    assert power(plan.n_control) >= 0.8 > power(plan.n_control - 1)
    fixed = sample_size_proportions(p, mde)
    assert plan.n_control > 1.5 * fixed.n_control  # the fixed-horizon plan the audit found: ~45% realised power


def test_the_verdicts_own_horizon_is_the_sequential_plan() -> None:
    flat = conversion((10_000, 1000), (10_000, 1010))
    verdict = decide(ExperimentSnapshot(primary=flat, days_running=7), DecisionSettings(method="sequential"))
    plan = sample_size_proportions(0.1, 0.1, sequential_tuning=5000, relative_test=True)
    assert verdict.horizon_n_per_arm == plan.n_control


# -- finding 3: guardrails read on every look are sequential --------------------------------------


def test_finding_3_fixed_horizon_guardrails_are_sequential_before_the_planned_sample() -> None:
    refunds = Guardrail(metric=conversion((10_000, 200), (10_000, 240), name="refund_rate", higher_is_better=False))
    primary = conversion((10_000, 1000), (10_000, 1010))
    early = decide(ExperimentSnapshot(primary=primary, guardrails=[refunds], days_running=7),
                   DecisionSettings(planned_n_per_arm=20_000))
    final = decide(ExperimentSnapshot(primary=primary, guardrails=[refunds], days_running=14),
                   DecisionSettings(planned_n_per_arm=10_000))
    assert early.guardrails[0].sequential and not final.guardrails[0].sequential
    # +20% refunds: a one-sided fixed test calls it (p ~ 0.03), the always-valid one does not yet.
    assert early.guardrails[0].status != "regressed" and early.decision == Decision.CONTINUE
    assert final.guardrails[0].status == "regressed" and final.decision == Decision.KILL_LOSER


# -- finding 4: SRM on totals, and the sequential SRM ---------------------------------------------


def test_finding_4_an_arm_that_receives_nobody_is_a_sample_ratio_mismatch() -> None:
    for method in ("fixed", "sequential"):
        result = check_srm([10_000, 0], method=method)  # type: ignore[arg-type]
        assert result.enough_data and result.srm_detected, method


def test_srm_is_assessed_once_the_total_reaches_the_minimum_per_expected_arm() -> None:
    assert check_srm([20, 0], [1, 1]).min_total == 16 and check_srm([20, 0]).srm_detected
    assert not check_srm([10, 0]).enough_data  # 10 < 16
    assert check_srm([5, 50], [10, 90]).min_total == 80  # the 10% arm is expected to hold 8 at 80 units


@pytest.mark.parametrize("counts", [[5000, 4700], [1000, 1100, 950], [3, 9], [40_000, 40_400]])
def test_sequential_srm_is_the_dirichlet_multinomial_bayes_factor(counts: list[int]) -> None:
    shares = np.full(len(counts), 1 / len(counts))
    concentration = 10_000.0
    log_bf = (stats.dirichlet_multinomial.logpmf(counts, concentration * shares, sum(counts))
              - stats.multinomial.logpmf(counts, sum(counts), shares))
    result = check_srm(counts, method="sequential")
    assert result.p_value == pytest.approx(min(1.0, math.exp(-log_bf)), rel=1e-9)


def test_daily_sequential_srm_keeps_false_alarms_below_its_threshold() -> None:
    """400 A/A splits read on 30 days: the chi-square gate at 1% fires far more often than 1% of
    experiments, the sequential one stays below."""
    rng = np.random.default_rng(13)
    experiments, days, daily, threshold = 400, 30, 400, 0.01
    daily_counts = rng.binomial(daily, 0.5, size=(experiments, days))
    fixed = sequential = 0
    for e in range(experiments):
        treatment = daily_counts[e].cumsum()
        control = daily * np.arange(1, days + 1) - treatment
        looks = [[int(c), int(t)] for c, t in zip(control, treatment)]
        fixed += any(check_srm(x, threshold=threshold).srm_detected for x in looks)
        sequential += any(check_srm(x, threshold=threshold, method="sequential").srm_detected for x in looks)
    assert sequential / experiments <= threshold
    assert fixed / experiments > 2 * threshold


# -- finding 5: non-finite numbers are refused ------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: MeanArm(n=100, mean=math.inf, sd=1.0),
    lambda: MeanArm(n=100, mean=1.0, sd=math.nan),
    lambda: MeanArm(n=100, mean=1.0, sd=1e200),  # squares to inf
    lambda: Covariate(mean=1.0, sd=1.0, covariance=math.nan),
    lambda: RatioArm(n=10, numerator_mean=1, numerator_sd=1, denominator_mean=math.inf, denominator_sd=1, covariance=0),
    lambda: DecisionSettings(min_meaningful_change=math.inf),
], ids=["inf-mean", "nan-sd", "huge-sd", "nan-covariance", "inf-denominator", "inf-setting"])
def test_finding_5_non_finite_numbers_are_refused(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


# -- finding 6: every arm, corrected, interval and p-value agreeing ---------------------------------


THREE_ARMS = [conversion((20_000, 2000), (20_000, 2150), variant="a"),
              conversion((20_000, 2000), (20_000, 2030), variant="b"),
              conversion((20_000, 2000), (20_000, 2260), variant="c")]


def test_finding_6_every_treatment_is_compared_and_corrected_with_holm() -> None:
    verdict = decide(ExperimentSnapshot(primary=THREE_ARMS, days_running=14),
                     DecisionSettings(correction="holm", planned_n_per_arm=20_000))
    raw = [compare(m).decision_p_value for m in THREE_ARMS]
    assert [a.variant for a in verdict.arms] == ["a", "b", "c"]
    assert [a.p_value for a in verdict.arms] == pytest.approx(raw)
    assert [a.adjusted_p_value for a in verdict.arms] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert verdict.decision == Decision.SHIP_WINNER and verdict.winner == "c"  # the largest of the shipping arms
    assert {a.variant: a.decision for a in verdict.arms}["b"] == Decision.INCONCLUSIVE


def test_benjamini_hochberg_is_the_other_correction() -> None:
    verdict = decide(ExperimentSnapshot(primary=THREE_ARMS, days_running=14),
                     DecisionSettings(correction="bh", planned_n_per_arm=20_000))
    raw = [compare(m).decision_p_value for m in THREE_ARMS]
    assert [a.adjusted_p_value for a in verdict.arms] == pytest.approx(list(multipletests(raw, method="fdr_bh")[1]))


@pytest.mark.parametrize("method", ["fixed_horizon", "sequential"])
@pytest.mark.parametrize("correction", ["none", "holm", "bh"])
def test_each_arms_interval_excludes_zero_exactly_when_its_adjusted_p_is_below_alpha(method: str,
                                                                                    correction: str) -> None:
    rng = np.random.default_rng(6)
    checked = 0
    for _ in range(150):
        n = int(rng.integers(2000, 30_000))
        rate = float(rng.uniform(0.05, 0.3))
        arms = [conversion((n, int(rng.binomial(n, rate))), (n, int(rng.binomial(n, rate * (1 + lift)))), variant=v)
                for v, lift in zip("xyz", rng.normal(0, 0.05, 3))]
        verdict = decide(ExperimentSnapshot(primary=arms, days_running=14),
                         DecisionSettings(method=method, correction=correction, planned_n_per_arm=n))  # type: ignore[arg-type]
        for arm in verdict.arms:
            assert arm.interval is not None and arm.adjusted_p_value is not None
            excludes_zero = arm.interval[0] > 0 or arm.interval[1] < 0
            if abs(arm.adjusted_p_value - 0.05) > 1e-9:
                assert excludes_zero == (arm.adjusted_p_value < 0.05)
                checked += 1
    assert checked > 400


def test_a_guardrail_regression_in_any_arm_kills_unless_another_arm_ships() -> None:
    harm = Guardrail(metric=conversion((20_000, 400), (20_000, 600), variant="b", name="refunds",
                                       higher_is_better=False))
    flat = [conversion((20_000, 2000), (20_000, 2010), variant="a"), conversion((20_000, 2000), (20_000, 2020),
                                                                                   variant="b")]
    verdict = decide(ExperimentSnapshot(primary=flat, guardrails=[harm], days_running=14),
                     DecisionSettings(correction="holm", method="sequential"))
    assert verdict.decision == Decision.KILL_LOSER and verdict.variant == "b" and verdict.winner is None
    assert {a.variant: a.decision for a in verdict.arms} == {"a": Decision.CONTINUE, "b": Decision.KILL_LOSER}


def test_with_several_treatments_a_guardrail_must_name_its_arm() -> None:
    stray = Guardrail(metric=conversion((20_000, 400), (20_000, 410), variant="nobody", name="refunds"))
    with pytest.raises(StatsInputError, match="name no treatment"):
        decide(ExperimentSnapshot(primary=THREE_ARMS, guardrails=[stray], days_running=14))


# -- CUPED, ratio metrics, minimum meaningful change, Bayesian ------------------------------------


def raw_cuped_data(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.gamma(2.0, 5.0, 3000), rng.gamma(2.0, 5.0, 3200)
    y_c = 0.8 * x_c + rng.normal(2.0, 3.0, x_c.size)
    y_t = 0.8 * x_t + rng.normal(2.4, 3.0, x_t.size)
    return x_c, y_c, x_t, y_t


def mean_arm(x: np.ndarray, y: np.ndarray) -> MeanArm:
    return MeanArm(n=y.size, mean=float(y.mean()), sd=float(y.std(ddof=1)),
                   pre=Covariate(mean=float(x.mean()), sd=float(x.std(ddof=1)), covariance=float(np.cov(x, y)[0, 1])))


def test_cuped_from_summary_statistics_matches_the_adjustment_on_raw_data() -> None:
    x_c, y_c, x_t, y_t = raw_cuped_data()
    x, y = np.concatenate([x_c, x_t]), np.concatenate([y_c, y_t])
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)
    adj_c, adj_t = y_c - theta * (x_c - x.mean()), y_t - theta * (x_t - x.mean())
    expected = stats.ttest_ind(adj_t, adj_c, equal_var=False)
    est = compare(ContinuousMetric(control=mean_arm(x_c, y_c), treatment=mean_arm(x_t, y_t)))
    assert est.test == "cuped_welch_t" and est.cuped is not None
    assert est.cuped.theta == pytest.approx(theta, rel=1e-9)
    assert est.absolute_diff == pytest.approx(adj_t.mean() - adj_c.mean(), rel=1e-9)
    assert est.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert est.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    unadjusted = stats.ttest_ind(y_t, y_c, equal_var=False)
    assert est.standard_error < (y_t.mean() - y_c.mean()) / unadjusted.statistic
    assert est.cuped.variance_reduction == pytest.approx(
        1 - (adj_c.var(ddof=1) / adj_c.size + adj_t.var(ddof=1) / adj_t.size)
        / (y_c.var(ddof=1) / y_c.size + y_t.var(ddof=1) / y_t.size), rel=1e-9)


def test_cuped_can_be_turned_off() -> None:
    x_c, y_c, x_t, y_t = raw_cuped_data()
    metric = ContinuousMetric(control=mean_arm(x_c, y_c), treatment=mean_arm(x_t, y_t))
    plain = compare(metric, cuped=False)
    assert plain.test == "welch_t" and plain.cuped is None
    assert plain.p_value == pytest.approx(stats.ttest_ind(y_t, y_c, equal_var=False).pvalue, rel=1e-6)


def test_ratio_metric_uses_the_delta_method_variance() -> None:
    rng = np.random.default_rng(11)

    def arm(sessions_mean: float, revenue_per_session: float, n: int) -> tuple[RatioArm, np.ndarray, np.ndarray]:
        sessions = rng.poisson(sessions_mean, n) + 1.0
        revenue = sessions * revenue_per_session * rng.gamma(2.0, 0.5, n)
        cov = float(np.cov(revenue, sessions)[0, 1])
        return RatioArm(n=n, numerator_mean=float(revenue.mean()), numerator_sd=float(revenue.std(ddof=1)),
                        denominator_mean=float(sessions.mean()), denominator_sd=float(sessions.std(ddof=1)),
                        covariance=cov), revenue, sessions

    (c, rev_c, ses_c), (t, rev_t, ses_t) = arm(3.0, 10.0, 4000), arm(3.0, 10.6, 4000)
    est = compare(RatioMetric(name="revenue_per_session", control=c, treatment=t))

    def ratio_se(rev: np.ndarray, ses: np.ndarray) -> float:  # gradient' Cov gradient, per arm
        gradient = np.array([1 / ses.mean(), -rev.mean() / ses.mean() ** 2])
        return float(math.sqrt(gradient @ np.cov(rev, ses) @ gradient / rev.size))

    assert est.test == "delta_method_ratio"
    assert est.control_mean == pytest.approx(rev_c.sum() / ses_c.sum(), rel=1e-12)
    assert est.standard_error == pytest.approx(math.hypot(ratio_se(rev_c, ses_c), ratio_se(rev_t, ses_t)), rel=1e-9)


def test_a_ratio_with_a_zero_denominator_is_refused_by_name() -> None:
    zero = RatioArm(n=100, numerator_mean=1, numerator_sd=1, denominator_mean=0, denominator_sd=1, covariance=0)
    ok = RatioArm(n=100, numerator_mean=1, numerator_sd=1, denominator_mean=1, denominator_sd=1, covariance=0)
    with pytest.raises(StatsInputError, match="denominator_mean 0"):
        compare(RatioMetric(control=zero, treatment=ok))


def test_a_significant_lift_below_the_minimum_meaningful_change_does_not_ship() -> None:
    small = conversion((200_000, 20_000), (200_000, 20_600))  # +3%, p ~ 1e-5
    settings = DecisionSettings(planned_n_per_arm=200_000, min_meaningful_change=0.05)
    verdict = decide(ExperimentSnapshot(primary=small, days_running=14), settings)
    assert verdict.primary_p_value is not None and verdict.primary_p_value < 0.01
    assert verdict.decision == Decision.INCONCLUSIVE and "minimum meaningful change" in verdict.reason
    assert decide(ExperimentSnapshot(primary=small, days_running=14),
                  settings.model_copy(update={"min_meaningful_change": 0.02})).decision == Decision.SHIP_WINNER


def test_the_exact_bayesian_credible_interval_matches_monte_carlo() -> None:
    control, treatment = ProportionArm(users=3000, conversions=300), ProportionArm(users=3000, conversions=345)
    readout = beta_readout(control, treatment)
    rng = np.random.default_rng(3)
    p_c, p_t = rng.beta(301, 2701, 400_000), rng.beta(346, 2656, 400_000)
    lift = p_t / p_c - 1
    assert readout.credible_interval == pytest.approx(tuple(np.quantile(lift, [0.025, 0.975])), abs=2e-3)
    assert readout.chance_to_beat_control == pytest.approx(float((lift > 0).mean()), abs=2e-3)
    assert readout.expected_loss == pytest.approx(float(np.maximum(0, -lift).mean()), rel=0.05)


def test_a_lower_is_better_metric_beats_control_by_dropping() -> None:
    readout = beta_readout(ProportionArm(users=3000, conversions=300), ProportionArm(users=3000, conversions=250),
                           higher_is_better=False)
    assert readout.chance_to_beat_control > 0.98 and readout.credible_interval[1] < 0


def test_the_verdict_adds_the_bayesian_readout_per_arm_when_asked() -> None:
    x_c, y_c, x_t, y_t = raw_cuped_data()
    arms = [conversion((20_000, 2000), (20_000, 2150), variant="a"),
            conversion((20_000, 2000), (20_000, 2010), variant="b")]
    verdict = decide(ExperimentSnapshot(primary=arms, days_running=14), DecisionSettings(bayesian=True))
    assert [a.bayesian.method for a in verdict.arms if a.bayesian] == ["beta_binomial", "beta_binomial"]
    continuous = decide(ExperimentSnapshot(primary=ContinuousMetric(control=mean_arm(x_c, y_c),
                                                                    treatment=mean_arm(x_t, y_t)), days_running=14),
                        DecisionSettings(bayesian=True))
    assert continuous.arms[0].bayesian is not None
    assert continuous.arms[0].bayesian.method == "normal_approximation"
    assert decide(ExperimentSnapshot(primary=arms, days_running=14)).arms[0].bayesian is None
