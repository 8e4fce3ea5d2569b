"""The Critic's verdict: one function that turns an experiment snapshot into a decision.

The order follows the decision framework in the reference notes (Statsig's and GrowthBook's):

1. SRM gate. If the split is broken, stop and interpret nothing: INCONCLUSIVE.
2. Minimum data on the primary metric (150 units per arm; for conversions at least 6
   conversions and 6 non-conversions per arm). Until then: CONTINUE.
3. Guardrails, one-sided, outside the correction family. Any significant regression: KILL_LOSER
   (roll back). Checked on every look, because a safety stop should not wait for the horizon.
4. Primary metric, fixed-horizon or always-valid (sequential) p-value, corrected together with
   the secondary metrics (Holm or Benjamini-Hochberg; none by default, like GrowthBook):
   * significant and better, SRM clean, no guardrail regression, minimum duration met: SHIP_WINNER;
   * significant and worse: KILL_LOSER;
   * a fixed-horizon test read before its planned sample, or fewer than the minimum days: CONTINUE
     (an interim fixed-horizon p-value is a peek, and early days over-represent some weekdays);
   * not significant before the horizon: CONTINUE; at or after it: INCONCLUSIVE, with the power
     the test had for the target MDE and the MDE this sample could detect, to plan the next round.

The horizon is ``planned_n_per_arm``; a sequential test without one uses the sample size that
gives the target power for the target MDE. A fixed-horizon test without one treats the snapshot
as the final read and says so in the warnings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from activities.stats import defaults
from activities.stats.arms import ContinuousMetric, ConversionMetric, Metric
from activities.stats.corrections import CorrectionMethod, CorrectionResult, adjust_p_values
from activities.stats.effects import EffectEstimate, compare, format_change
from activities.stats.errors import StatsInputError
from activities.stats.guardrails import Guardrail, GuardrailResult, check_guardrail
from activities.stats.power import (
    mde_means,
    mde_proportions,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from activities.stats.sample_guard import SampleGuardResult, check_minimum_sample
from activities.stats.sequential import SequentialResult, always_valid_test
from activities.stats.srm import SrmResult, check_srm


class Decision(StrEnum):
    SHIP_WINNER = "SHIP_WINNER"
    KILL_LOSER = "KILL_LOSER"
    CONTINUE = "CONTINUE"
    INCONCLUSIVE = "INCONCLUSIVE"


class ExperimentSnapshot(BaseModel):
    """What the Critic knows about a two-arm experiment at one look."""

    primary: Metric
    secondary: list[Metric] = Field(
        default_factory=list, description="Goal metrics corrected together with the primary"
    )
    guardrails: list[Guardrail] = Field(default_factory=list)
    assignment_counts: list[int] | None = Field(
        default=None, description="Units assigned to [control, treatment]; defaults to the primary metric's arm sizes"
    )
    expected_split: list[float] | None = Field(
        default=None, description="Configured weights, e.g. [50, 50]; equal by default"
    )
    days_running: float | None = Field(default=None, ge=0, description="Days since the experiment started")


class DecisionSettings(BaseModel):
    alpha: float = Field(default=defaults.ALPHA, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = "fixed_horizon"
    sequential_tuning: float = Field(default=defaults.SEQUENTIAL_TUNING, gt=0)
    correction: CorrectionMethod = "none"
    planned_n_per_arm: int | None = Field(default=None, ge=1)
    guardrail_alpha: float = Field(default=defaults.GUARDRAIL_ALPHA, gt=0, lt=1)
    require_non_inferiority: bool = False
    srm_threshold: float = Field(default=defaults.SRM_P_THRESHOLD, gt=0, lt=1)
    srm_min_count: int = Field(default=defaults.SRM_MIN_COUNT, ge=0)
    min_units_per_arm: int = Field(default=defaults.MIN_UNITS_PER_ARM, ge=0)
    min_conversions_per_arm: int = Field(default=defaults.MIN_CONVERSIONS_PER_ARM, ge=0)
    min_days: float = Field(default=defaults.MIN_DAYS, ge=0)
    target_mde: float = Field(default=defaults.TARGET_MDE, gt=0, description="Relative lift the test should detect")
    power: float = Field(default=defaults.POWER, gt=0, lt=1)
    max_believable_lift: float = Field(default=defaults.MAX_BELIEVABLE_LIFT, gt=0)


class Verdict(BaseModel):
    decision: Decision
    reason: str
    method: Literal["fixed_horizon", "sequential"]
    srm: SrmResult
    sample_guard: SampleGuardResult | None = None
    primary: EffectEstimate | None = None
    primary_sequential: SequentialResult | None = None
    #: The p-value the call was made on: sequential if configured, after correction.
    primary_p_value: float | None = None
    correction: CorrectionResult | None = None
    secondary: list[EffectEstimate] = Field(default_factory=list)
    guardrails: list[GuardrailResult] = Field(default_factory=list)
    horizon_n_per_arm: int | None = None
    #: Power the test has, at the current sample, for a lift of settings.target_mde.
    achieved_power: float | None = None
    #: Smallest relative lift the current sample detects with settings.power.
    mde_at_current_n: float | None = None
    warnings: list[str] = Field(default_factory=list)


def decide(snapshot: ExperimentSnapshot, settings: DecisionSettings | None = None) -> Verdict:
    """Decide SHIP_WINNER / KILL_LOSER / CONTINUE / INCONCLUSIVE for one look at an experiment."""
    s = settings or DecisionSettings()
    primary = snapshot.primary
    sequential = s.method == "sequential"
    tuning = s.sequential_tuning if sequential else None
    counts = snapshot.assignment_counts or [primary.control.n, primary.treatment.n]
    if len(counts) != 2:
        raise StatsInputError(f"assignment_counts must be [control, treatment], got {len(counts)} counts")

    srm = check_srm(counts, snapshot.expected_split, threshold=s.srm_threshold, min_count=s.srm_min_count)
    verdict = Verdict(decision=Decision.INCONCLUSIVE, reason="", method=s.method, srm=srm)
    if srm.srm_detected:
        verdict.reason = f"{srm.message}. Stop the experiment and fix assignment before reading any metric."
        return verdict

    guard = check_minimum_sample(primary, min_units=s.min_units_per_arm, min_conversions=s.min_conversions_per_arm)
    verdict.sample_guard = guard
    if not guard.passed:
        verdict.decision = Decision.CONTINUE
        verdict.reason = f"Not enough data to call anything yet: {'; '.join(guard.shortfalls)}."
        return verdict

    # Primary and secondary metrics form the correction family; guardrails stay out of it.
    family = [primary, *snapshot.secondary]
    estimates = [compare(m, alpha=s.alpha) for m in family]
    if sequential:
        seq = [always_valid_test(e, tuning=s.sequential_tuning) for e in estimates]
        family_p = [r.p_value for r in seq]
        verdict.primary_sequential = seq[0]
    else:
        family_p = [e.p_value for e in estimates]
    correction = adjust_p_values(family_p, s.correction, alpha=s.alpha)
    est = estimates[0]
    verdict.primary, verdict.secondary, verdict.correction = est, estimates[1:], correction
    p = correction.adjusted_p_values[0]
    verdict.primary_p_value = p

    verdict.guardrails = [
        check_guardrail(g, alpha=s.guardrail_alpha, sequential_tuning=tuning,
                        min_units=s.min_units_per_arm, min_conversions=s.min_conversions_per_arm)
        for g in snapshot.guardrails
    ]
    verdict.achieved_power, verdict.mde_at_current_n = _power_at_current_n(primary, s, tuning)
    horizon = s.planned_n_per_arm or (_sequential_horizon(primary, s) if sequential else None)
    verdict.horizon_n_per_arm = horizon
    verdict.warnings = _warnings(snapshot, s, est, verdict.guardrails, horizon)

    n_now = min(est.n_control, est.n_treatment)
    # Without a horizon a fixed-horizon snapshot is the final read; a sequential test keeps going.
    reached = n_now >= horizon if horizon is not None else not sequential
    change = _describe_change(est)
    p_text = f"p={p:.3g}" + ("" if s.correction == "none" or len(family) == 1 else f" after {s.correction} correction")
    if sequential:
        p_text = "always-valid " + p_text

    regressed = [g for g in verdict.guardrails if g.status == "regressed"]
    if regressed:
        verdict.decision = Decision.KILL_LOSER
        verdict.reason = "Guardrail regression, roll back: " + "; ".join(g.message for g in regressed) + "."
        return verdict

    significant = p < s.alpha
    if significant and not sequential and not reached:
        verdict.decision = Decision.CONTINUE
        verdict.reason = (
            f"'{primary.name}' moved {change} ({p_text}) at {n_now} of {horizon} planned units per arm, but a "
            "fixed-horizon test is only valid at its planned sample; keep running "
            "(or use sequential testing to read early)."
        )
    elif significant and not est.improved:
        verdict.decision = Decision.KILL_LOSER
        verdict.reason = f"'{primary.name}' got worse: {change} vs control ({p_text} < {s.alpha}). Stop the treatment."
    elif significant and snapshot.days_running is not None and snapshot.days_running < s.min_days:
        verdict.decision = Decision.CONTINUE
        verdict.reason = (
            f"'{primary.name}' improved {change} ({p_text}) but the experiment has run "
            f"{snapshot.days_running:g} of the minimum {s.min_days:g} days; keep it running to cover the weekly cycle."
        )
    elif significant:
        unproven = [g.metric for g in verdict.guardrails if g.status != "non_inferior"]
        if s.require_non_inferiority and unproven:
            verdict.decision = Decision.INCONCLUSIVE if reached else Decision.CONTINUE
            verdict.reason = (
                f"'{primary.name}' improved {change} ({p_text}), but guardrails {unproven} are not yet shown to stay "
                "within their margins" + ("." if reached else "; keep collecting data.")
            )
        else:
            verdict.decision = Decision.SHIP_WINNER
            verdict.reason = (
                f"'{primary.name}' improved {change} vs control ({p_text} < {s.alpha}), the split is clean and no "
                "guardrail regressed. Ship the treatment."
            )
    elif not reached:
        verdict.decision = Decision.CONTINUE
        verdict.reason = (
            f"No significant difference on '{primary.name}' yet ({change}, {p_text}); "
            + (f"{n_now} of {horizon} units per arm collected." if horizon else "keep collecting data.")
        )
    else:
        verdict.decision = Decision.INCONCLUSIVE
        verdict.reason = (
            f"No significant difference on '{primary.name}' ({change}, {p_text}) at {n_now} units per arm."
            + _power_sentence(verdict.achieved_power, verdict.mde_at_current_n, s.target_mde)
        )
    return verdict


def _describe_change(est: EffectEstimate) -> str:
    if est.relative_lift is not None:
        return format_change(est.relative_lift, relative=True)
    return format_change(est.absolute_diff, relative=False) + " (absolute)"


def _power_sentence(power: float | None, mde: float | None, target: float) -> str:
    sentences = []
    if power is not None:
        sentences.append(f"The test had {power:.0%} power to detect a {target:.0%} lift.")
    if mde is not None:
        sentences.append(f"This sample detects lifts of {mde:.1%} or more: test a bolder change or plan more units.")
    return "".join(" " + x for x in sentences)


def _power_at_current_n(metric: Metric, s: DecisionSettings, tuning: float | None) -> tuple[float | None, float | None]:
    """Power for the target MDE and the detectable relative MDE at the current arm sizes, if defined."""
    n_c, n_t = metric.control.n, metric.treatment.n
    try:
        if isinstance(metric, ConversionMetric):
            rate = metric.control.rate
            power = power_proportions(rate, s.target_mde, n_c, n_t, alpha=s.alpha, sequential_tuning=tuning).power
            mde = mde_proportions(rate, n_c, n_t, alpha=s.alpha, power=s.power, sequential_tuning=tuning).mde_relative
            return power, mde
        c, t = metric.control, metric.treatment
        power = power_means(c.sd or 0.0, s.target_mde, n_c, n_t, mde_type="relative", baseline_mean=c.mean,
                            sd_treatment=t.sd, alpha=s.alpha, sequential_tuning=tuning).power
        mde = mde_means(c.sd or 0.0, n_c, n_t, baseline_mean=c.mean, sd_treatment=t.sd, alpha=s.alpha,
                        power=s.power, sequential_tuning=tuning).mde_relative
        return power, mde
    except StatsInputError:  # e.g. a 0% baseline or a non-positive mean: relative power is undefined
        return None, None


def _sequential_horizon(metric: Metric, s: DecisionSettings) -> int | None:
    """Per-arm sample that gives a sequential test the target power for the target MDE."""
    try:
        if isinstance(metric, ConversionMetric):
            plan = sample_size_proportions(metric.control.rate, s.target_mde, alpha=s.alpha, power=s.power,
                                           sequential_tuning=s.sequential_tuning)
        else:
            assert isinstance(metric, ContinuousMetric)
            plan = sample_size_means(metric.control.sd or 0.0, s.target_mde, mde_type="relative",
                                     baseline_mean=metric.control.mean, sd_treatment=metric.treatment.sd,
                                     alpha=s.alpha, power=s.power, sequential_tuning=s.sequential_tuning)
    except StatsInputError:
        return None
    return max(plan.n_control, plan.n_treatment)


def _warnings(
    snapshot: ExperimentSnapshot, s: DecisionSettings, est: EffectEstimate, guardrails: list[GuardrailResult],
    horizon: int | None,
) -> list[str]:
    out = []
    if est.relative_lift is not None and abs(est.relative_lift) > s.max_believable_lift:
        out.append(
            f"suspicious change: '{est.metric}' moved {est.relative_lift:+.1%}, more than the "
            f"{s.max_believable_lift:.0%} believable maximum; check instrumentation before acting"
        )
    if snapshot.days_running is None:
        out.append(f"days_running not given: the {s.min_days:g}-day minimum duration was not checked")
    if horizon is None:
        out.append(
            "no planned sample size: this look is treated as the final read"
            if s.method == "fixed_horizon" else
            "no horizon could be derived (relative MDE undefined for this metric): the test continues until significant"
        )
    out.extend(g.message for g in guardrails if g.status == "insufficient_data")
    return out
