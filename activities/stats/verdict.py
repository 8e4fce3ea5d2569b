"""The Critic's verdict: one function that turns an experiment snapshot into a decision.

An experiment is one control and one or more treatments; each treatment is compared with the
control *named* in the snapshot (connectors give the arms in the source's order, which says
nothing about which one is the control: a source listing `blue_button` before `control` is
common). The order follows the decision framework in the
reference notes (Statsig's and GrowthBook's):

1. SRM gate over all arms (chi-square, or the sequential test for daily reads), assessed once the
   total is large enough. If the split is broken, stop and interpret nothing: INCONCLUSIVE.
2. Minimum data on the primary metric in every arm (150 units; for conversions at least 6
   conversions and 6 non-conversions). Until then: CONTINUE.
3. Per treatment, guardrails: one-sided, outside the correction family. Any significant
   regression kills that arm. They are read with the always-valid test whenever they are read on
   every look, i.e. unless the test is fixed-horizon and this is its read at the planned sample.
4. Per treatment, the primary metric: fixed-horizon or always-valid (sequential) p-value on the
   decision scale (``EffectEstimate.decision_scale``), corrected over every treatment (and the
   secondary metrics) with Holm or Benjamini-Hochberg:
   * significant and better, above the minimum meaningful change, SRM clean, no guardrail
     regression, minimum duration met: SHIP_WINNER;
   * significant and better but below the minimum meaningful change: not worth shipping
     (INCONCLUSIVE at the horizon, CONTINUE before it);
   * significant and worse: KILL_LOSER;
   * a fixed-horizon test read before its planned sample, or fewer than the minimum days:
     CONTINUE (an interim fixed-horizon p-value is a peek; early days over-represent weekdays);
   * not significant before the horizon: CONTINUE; at or after it: INCONCLUSIVE, with the power
     the test had for the target MDE and the MDE this sample could detect.
5. The experiment: SHIP_WINNER naming the best shipping arm if any arm ships; else KILL_LOSER
   if an arm's guardrail regressed (users are being harmed) or every arm lost; else CONTINUE
   while any arm is still running; else INCONCLUSIVE. No arm is dropped: each has its entry in
   ``arms``, and the top-level numbers describe the winner (or the arm that decided, or the best).

**Interval and p-value agree.** Each arm's interval is drawn at the level its correction gives it,
alpha x p / p_adjusted, with the test's own distribution (or always-valid multiplier): it
excludes 0 exactly when the adjusted p-value is below alpha.

The horizon is ``planned_n_per_arm``; a sequential test without one uses the sample size that
gives the target power for the target MDE. A fixed-horizon test without one treats the snapshot
as the final read and says so in the warnings. With several treatments and a correction, each
comparison is planned and read at alpha / treatments (the always-valid mixture is tuned for it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.stats import defaults
from activities.stats.arms import ContinuousMetric, ConversionMetric, Metric, RatioMetric
from activities.stats.bayesian import BayesianReadout, beta_readout, normal_readout
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
from activities.stats.ratio import ratio_as_mean_arm
from activities.stats.sample_guard import SampleGuardResult, check_minimum_sample
from activities.stats.sequential import SequentialResult, always_valid_test, sequential_critical_value
from activities.stats.srm import SrmMethod, SrmResult, check_srm


class Decision(StrEnum):
    SHIP_WINNER = "SHIP_WINNER"
    KILL_LOSER = "KILL_LOSER"
    CONTINUE = "CONTINUE"
    INCONCLUSIVE = "INCONCLUSIVE"


class ExperimentSnapshot(BaseModel):
    """What the Critic knows about an experiment at one look: one primary metric per treatment,
    each against the same control (``Metric.variant`` names the treatment)."""

    model_config = ConfigDict(allow_inf_nan=False)

    primary: Metric | list[Metric]
    secondary: list[Metric] = Field(
        default_factory=list, description="Goal metrics corrected together with the primary (variant names the arm)"
    )
    guardrails: list[Guardrail] = Field(default_factory=list, description="Per arm: the metric's variant names it")
    assignment_counts: list[int] | None = Field(
        default=None, description="Units assigned to [control, each treatment in primary's order]; "
                                  "defaults to the primary metric's arm sizes"
    )
    expected_split: list[float] | None = Field(
        default=None, description="Configured weights in the same order, e.g. [50, 50]; equal by default"
    )
    days_running: float | None = Field(default=None, ge=0, description="Days since the experiment started")
    control: str = Field(default="control", description="The control arm's name, for messages")

    @model_validator(mode="after")
    def _distinct_treatments(self) -> ExperimentSnapshot:
        names = [m.variant for m in self.treatments]
        if not names:
            raise ValueError("primary needs at least one treatment's metric")
        if len(set(names)) != len(names):
            raise ValueError(f"each treatment needs its own name (Metric.variant), got {names}")
        if self.control in names:
            raise ValueError(f"'{self.control}' is the control; it cannot also be a treatment")
        return self

    @property
    def treatments(self) -> list[Metric]:
        return self.primary if isinstance(self.primary, list) else [self.primary]


class DecisionSettings(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    alpha: float = Field(default=defaults.ALPHA, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = "fixed_horizon"
    sequential_tuning: float = Field(default=defaults.SEQUENTIAL_TUNING, gt=0)
    correction: CorrectionMethod = "none"
    planned_n_per_arm: int | None = Field(default=None, ge=1)
    guardrail_alpha: float = Field(default=defaults.GUARDRAIL_ALPHA, gt=0, lt=1)
    require_non_inferiority: bool = False
    srm_threshold: float = Field(default=defaults.SRM_P_THRESHOLD, gt=0, lt=1)
    srm_min_count: int = Field(default=defaults.SRM_MIN_COUNT, ge=0)
    srm_method: SrmMethod = "fixed"
    min_units_per_arm: int = Field(default=defaults.MIN_UNITS_PER_ARM, ge=0)
    min_conversions_per_arm: int = Field(default=defaults.MIN_CONVERSIONS_PER_ARM, ge=0)
    min_days: float = Field(default=defaults.MIN_DAYS, ge=0)
    target_mde: float = Field(default=defaults.TARGET_MDE, gt=0, description="Relative lift the test should detect")
    power: float = Field(default=defaults.POWER, gt=0, lt=1)
    max_believable_lift: float = Field(default=defaults.MAX_BELIEVABLE_LIFT, gt=0)
    cuped: bool = Field(default=True, description="Adjust with pre-period covariates where every arm has them")
    min_meaningful_change: float | None = Field(
        default=None, gt=0, description="Relative improvement below which a significant win is not worth shipping")
    bayesian: bool = Field(default=False, description="Add chance to beat control, expected loss, credible interval")


class ArmVerdict(BaseModel):
    """One treatment against the control."""

    variant: str
    decision: Decision
    reason: str
    primary: EffectEstimate | None = None
    primary_sequential: SequentialResult | None = None
    #: The arm's p-value on the decision scale (always-valid when sequential), before correction.
    p_value: float | None = None
    #: After the correction over the family: what the decision compares with alpha.
    adjusted_p_value: float | None = None
    #: Change on the decision scale (relative lift when defined, else absolute difference).
    lift: float | None = None
    scale: Literal["relative", "absolute"] | None = None
    #: Interval of ``lift`` at ``interval_level``: excludes 0 exactly when adjusted_p_value < alpha.
    interval: tuple[float, float] | None = None
    interval_level: float | None = None
    secondary: list[EffectEstimate] = Field(default_factory=list)
    guardrails: list[GuardrailResult] = Field(default_factory=list)
    sample_guard: SampleGuardResult | None = None
    achieved_power: float | None = None
    mde_at_current_n: float | None = None
    bayesian: BayesianReadout | None = None


class Verdict(BaseModel):
    decision: Decision
    reason: str
    method: Literal["fixed_horizon", "sequential"]
    srm: SrmResult
    #: The control arm's name.
    control: str = "control"
    #: The arm that ships (None unless the decision is SHIP_WINNER).
    winner: str | None = None
    #: The arm the top-level numbers (primary, primary_p_value, ...) describe.
    variant: str | None = None
    arms: list[ArmVerdict] = Field(default_factory=list)
    sample_guard: SampleGuardResult | None = None
    primary: EffectEstimate | None = None
    primary_sequential: SequentialResult | None = None
    #: The p-value the call was made on: sequential if configured, after correction.
    primary_p_value: float | None = None
    correction: CorrectionResult | None = None
    secondary: list[EffectEstimate] = Field(default_factory=list)
    #: Every arm's guardrail results.
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
    treatments = snapshot.treatments
    k = len(treatments)
    sequential = s.method == "sequential"
    counts = snapshot.assignment_counts or [treatments[0].control.n, *(m.treatment.n for m in treatments)]
    if len(counts) != k + 1:
        raise StatsInputError(f"assignment_counts must be [control, {', '.join(m.variant for m in treatments)}], "
                              f"got {len(counts)} counts")

    srm = check_srm(counts, snapshot.expected_split, threshold=s.srm_threshold, min_count=s.srm_min_count,
                    method=s.srm_method)
    verdict = Verdict(decision=Decision.INCONCLUSIVE, reason="", method=s.method, srm=srm, control=snapshot.control)
    if srm.srm_detected:
        verdict.reason = f"{srm.message}. Stop the experiment and fix assignment before reading any metric."
        return verdict

    guards = [check_minimum_sample(m, min_units=s.min_units_per_arm, min_conversions=s.min_conversions_per_arm)
              for m in treatments]
    if not all(g.passed for g in guards):
        shortfalls = list(dict.fromkeys(x for g in guards for x in g.shortfalls))
        verdict.sample_guard = guards[0].model_copy(update={"passed": False, "shortfalls": shortfalls})
        verdict.decision = Decision.CONTINUE
        verdict.reason = f"Not enough data to call anything yet: {'; '.join(shortfalls)}."
        verdict.arms = [ArmVerdict(variant=m.variant, decision=Decision.CONTINUE, reason=verdict.reason, sample_guard=g)
                        for m, g in zip(treatments, guards)]
        return verdict

    # Each comparison's share of alpha when several treatments are corrected together: the
    # always-valid mixture, the horizon and the power are all computed for it.
    plan_alpha = s.alpha / k if s.correction != "none" and k > 1 else s.alpha
    estimates = [compare(m, alpha=s.alpha, cuped=s.cuped) for m in treatments]
    secondary = [[compare(m2, alpha=s.alpha, cuped=s.cuped) for m2 in _of_arm(snapshot.secondary, m.variant, k)]
                 for m in treatments]
    _check_assigned(snapshot, treatments, k)

    def p_of(est: EffectEstimate) -> tuple[float, SequentialResult | None]:
        if not sequential:
            return est.decision_p_value, None
        seq = always_valid_test(est, tuning=s.sequential_tuning, alpha=plan_alpha)
        return seq.p_value, seq

    primary_p = [p_of(e) for e in estimates]
    secondary_p = [[p_of(e)[0] for e in arm] for arm in secondary]
    family = [p for i in range(k) for p in (primary_p[i][0], *secondary_p[i])]
    correction = adjust_p_values(family, s.correction, alpha=s.alpha)
    verdict.correction = correction
    starts = [sum(1 + len(secondary_p[j]) for j in range(i)) for i in range(k)]
    corrected = s.correction != "none" and len(family) > 1

    horizon = s.planned_n_per_arm or (_sequential_horizon(treatments[0], s, plan_alpha) if sequential else None)
    verdict.horizon_n_per_arm = horizon
    arms: list[ArmVerdict] = []
    for i, (metric, est) in enumerate(zip(treatments, estimates)):
        raw, seq = primary_p[i]
        adjusted = correction.adjusted_p_values[starts[i]]
        level = min(s.alpha, s.alpha * raw / adjusted) if adjusted > 0 else plan_alpha
        value, se = est.decision_estimate
        if sequential:
            crit = sequential_critical_value(est.n_control + est.n_treatment, alpha=plan_alpha,
                                             tuning=s.sequential_tuning, level=level)
            interval = (value - crit * se, value + crit * se)
        else:
            interval = est.decision_interval(level)
        n_now = min(est.n_control, est.n_treatment)
        # Without a horizon a fixed-horizon snapshot is the final read; a sequential test keeps going.
        reached = n_now >= horizon if horizon is not None else not sequential
        # Guardrails read on every look need the always-valid test; only the fixed-horizon read at
        # the planned sample is a single read.
        guard_tuning = None if (not sequential and reached) else s.sequential_tuning
        guardrails = [check_guardrail(g, alpha=s.guardrail_alpha, sequential_tuning=guard_tuning,
                                      min_units=s.min_units_per_arm, min_conversions=s.min_conversions_per_arm,
                                      cuped=s.cuped)
                      for g in _of_arm(snapshot.guardrails, metric.variant, k, key=lambda g: g.metric.variant)]
        power, mde = _power_at_current_n(metric, s, plan_alpha, s.sequential_tuning if sequential else None)
        arm = ArmVerdict(
            variant=metric.variant, decision=Decision.INCONCLUSIVE, reason="", primary=est, primary_sequential=seq,
            p_value=raw, adjusted_p_value=adjusted, lift=value, scale=est.decision_scale, interval=interval,
            interval_level=level, secondary=secondary[i], guardrails=guardrails, sample_guard=guards[i],
            achieved_power=power, mde_at_current_n=mde,
            bayesian=_bayesian(metric, est, s) if s.bayesian else None,
        )
        arm.decision, arm.reason = _arm_decision(
            metric, arm, s, sequential=sequential, reached=reached, horizon=horizon, n_now=n_now,
            days=snapshot.days_running, corrected=corrected, multi=k > 1)
        arms.append(arm)

    verdict.arms = arms
    verdict.guardrails = [g for a in arms for g in a.guardrails]
    chosen = _experiment_decision(verdict, arms)
    verdict.variant = chosen.variant
    verdict.primary, verdict.primary_sequential = chosen.primary, chosen.primary_sequential
    verdict.primary_p_value, verdict.secondary = chosen.adjusted_p_value, chosen.secondary
    verdict.sample_guard = chosen.sample_guard
    verdict.achieved_power, verdict.mde_at_current_n = chosen.achieved_power, chosen.mde_at_current_n
    verdict.warnings = _warnings(snapshot, s, arms, horizon)
    return verdict


def _of_arm(items: list, variant: str, k: int, key=lambda m: m.variant) -> list:  # type: ignore[no-untyped-def]
    """The items (secondary metrics, guardrails) of one treatment; with one treatment, all of them."""
    return list(items) if k == 1 else [x for x in items if key(x) == variant]


def _check_assigned(snapshot: ExperimentSnapshot, treatments: list[Metric], k: int) -> None:
    """With several treatments every secondary metric and guardrail must name one of them."""
    if k == 1:
        return
    names = {m.variant for m in treatments}
    stray = [m.name for m in snapshot.secondary if m.variant not in names]
    stray += [g.metric.name for g in snapshot.guardrails if g.metric.variant not in names]
    if stray:
        raise StatsInputError(f"metrics {stray} name no treatment of this experiment ({sorted(names)}); "
                              "set each one's variant to the treatment it compares")


def _goodness(arm: ArmVerdict, metric_higher_is_better: bool) -> float:
    value = arm.lift if arm.lift is not None else 0.0
    return value if metric_higher_is_better else -value


def _arm_decision(
    metric: Metric, arm: ArmVerdict, s: DecisionSettings, *, sequential: bool, reached: bool,
    horizon: int | None, n_now: int, days: float | None, corrected: bool, multi: bool,
) -> tuple[Decision, str]:
    est = arm.primary
    assert est is not None and arm.adjusted_p_value is not None
    p = arm.adjusted_p_value
    name = metric.name
    who = f"'{arm.variant}': " if multi else ""
    change = _describe_change(est)
    p_text = ("always-valid " if sequential else "") + f"p={p:.3g}" + (f" after {s.correction} correction"
                                                                          if corrected else "")
    regressed = [g for g in arm.guardrails if g.status == "regressed"]
    if regressed:
        return Decision.KILL_LOSER, (who + "Guardrail regression, roll back: "
                                     + "; ".join(g.message for g in regressed) + ".")
    significant = p < s.alpha
    goodness = (est.relative_lift if est.relative_lift is not None else None)
    if goodness is not None and not metric.higher_is_better:
        goodness = -goodness
    if significant and not sequential and not reached:
        return Decision.CONTINUE, (
            f"{who}'{name}' moved {change} ({p_text}) at {n_now} of {horizon} planned units per arm, but a "
            "fixed-horizon test is only valid at its planned sample; keep running "
            "(or use sequential testing to read early).")
    if significant and not est.improved:
        return Decision.KILL_LOSER, f"{who}'{name}' got worse: {change} vs control ({p_text} < {s.alpha}). Stop the treatment."
    if significant and days is not None and days < s.min_days:
        return Decision.CONTINUE, (
            f"{who}'{name}' improved {change} ({p_text}) but the experiment has run "
            f"{days:g} of the minimum {s.min_days:g} days; keep it running to cover the weekly cycle.")
    if significant and s.min_meaningful_change is not None and goodness is not None \
            and goodness < s.min_meaningful_change:
        return (Decision.INCONCLUSIVE if reached else Decision.CONTINUE), (
            f"{who}'{name}' improved {change} ({p_text}), a real but smaller change than the "
            f"{s.min_meaningful_change:.1%} minimum meaningful change: not worth shipping"
            + ("." if reached else " yet; keep collecting data."))
    if significant:
        unproven = [g.metric for g in arm.guardrails if g.status != "non_inferior"]
        if s.require_non_inferiority and unproven:
            return (Decision.INCONCLUSIVE if reached else Decision.CONTINUE), (
                f"{who}'{name}' improved {change} ({p_text}), but guardrails {unproven} are not yet shown to stay "
                "within their margins" + ("." if reached else "; keep collecting data."))
        return Decision.SHIP_WINNER, (
            f"{who}'{name}' improved {change} vs control ({p_text} < {s.alpha}), the split is clean and no "
            "guardrail regressed. Ship the treatment.")
    if not reached:
        return Decision.CONTINUE, (
            f"{who}No significant difference on '{name}' yet ({change}, {p_text}); "
            + (f"{n_now} of {horizon} units per arm collected." if horizon else "keep collecting data."))
    return Decision.INCONCLUSIVE, (
        f"{who}No significant difference on '{name}' ({change}, {p_text}) at {n_now} units per arm."
        + _power_sentence(arm.achieved_power, arm.mde_at_current_n, s.target_mde))


def _experiment_decision(verdict: Verdict, arms: list[ArmVerdict]) -> ArmVerdict:
    """Set the experiment's decision and reason from its arms; return the arm its numbers describe."""
    higher = {a.variant: (a.primary.higher_is_better if a.primary else True) for a in arms}
    best = max(arms, key=lambda a: _goodness(a, higher[a.variant]))
    shipping = [a for a in arms if a.decision == Decision.SHIP_WINNER]
    harmed = [a for a in arms if any(g.status == "regressed" for g in a.guardrails)]
    losers = [a for a in arms if a.decision == Decision.KILL_LOSER]
    running = [a for a in arms if a.decision == Decision.CONTINUE]
    if shipping:
        chosen = max(shipping, key=lambda a: _goodness(a, higher[a.variant]))
        verdict.decision, verdict.winner = Decision.SHIP_WINNER, chosen.variant
    elif harmed:
        chosen, verdict.decision = harmed[0], Decision.KILL_LOSER
    elif running:
        chosen, verdict.decision = (best if best in running else running[0]), Decision.CONTINUE
    elif losers:
        chosen = min(losers, key=lambda a: a.adjusted_p_value if a.adjusted_p_value is not None else 1.0)
        verdict.decision = Decision.KILL_LOSER
    else:
        chosen, verdict.decision = best, Decision.INCONCLUSIVE
    verdict.reason = chosen.reason
    if len(arms) > 1:
        verdict.reason += " Arms vs control: " + "; ".join(
            f"'{a.variant}' {a.decision.value}" + (f" ({_describe_change(a.primary)}, p={a.adjusted_p_value:.3g})"
                                                   if a.primary and a.adjusted_p_value is not None else "")
            for a in arms) + "."
        if verdict.decision == Decision.SHIP_WINNER:
            verdict.reason += f" Winner: '{chosen.variant}'."
        elif verdict.decision != Decision.CONTINUE:
            verdict.reason += " No winner."
    return chosen


def _bayesian(metric: Metric, est: EffectEstimate, s: DecisionSettings) -> BayesianReadout | None:
    """Exact Beta read-out for a plain conversion metric, the normal approximation otherwise."""
    try:
        if isinstance(metric, ConversionMetric) and est.cuped is None:
            return beta_readout(metric.control, metric.treatment, higher_is_better=metric.higher_is_better,
                                alpha=s.alpha)
    except StatsInputError:
        pass  # e.g. no control conversions: the normal approximation below still answers
    value, se = est.decision_estimate
    if not se > 0:
        return None
    return normal_readout(value, se, higher_is_better=metric.higher_is_better, alpha=s.alpha,
                          scale=est.decision_scale)


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


def _as_means(metric: Metric) -> ContinuousMetric | ConversionMetric:
    """A ratio metric as the two means the delta method gives (for power and horizons)."""
    if isinstance(metric, RatioMetric):
        return ContinuousMetric(
            name=metric.name, variant=metric.variant, higher_is_better=metric.higher_is_better,
            control=ratio_as_mean_arm(metric.control, metric=metric.name, arm_name="control"),
            treatment=ratio_as_mean_arm(metric.treatment, metric=metric.name, arm_name=metric.variant))
    return metric


def _power_at_current_n(metric: Metric, s: DecisionSettings, alpha: float,
                        tuning: float | None) -> tuple[float | None, float | None]:
    """Power for the target MDE and the detectable relative MDE at the current arm sizes, if defined."""
    try:
        metric = _as_means(metric)
        n_c, n_t = metric.control.n, metric.treatment.n
        if isinstance(metric, ConversionMetric):
            rate = metric.control.rate
            power = power_proportions(rate, s.target_mde, n_c, n_t, alpha=alpha, sequential_tuning=tuning).power
            mde = mde_proportions(rate, n_c, n_t, alpha=alpha, power=s.power, sequential_tuning=tuning).mde_relative
            return power, mde
        c, t = metric.control, metric.treatment
        power = power_means(c.sd or 0.0, s.target_mde, n_c, n_t, mde_type="relative", baseline_mean=c.mean,
                            sd_treatment=t.sd, alpha=alpha, sequential_tuning=tuning).power
        mde = mde_means(c.sd or 0.0, n_c, n_t, baseline_mean=c.mean, sd_treatment=t.sd, alpha=alpha,
                        power=s.power, sequential_tuning=tuning).mde_relative
        return power, mde
    except StatsInputError:  # e.g. a 0% baseline or a non-positive mean: relative power is undefined
        return None, None


def _sequential_horizon(metric: Metric, s: DecisionSettings, alpha: float) -> int | None:
    """Per-arm sample that gives the sequential relative-lift test the target power for the target MDE."""
    try:
        metric = _as_means(metric)
        if isinstance(metric, ConversionMetric):
            plan = sample_size_proportions(metric.control.rate, s.target_mde, alpha=alpha, power=s.power,
                                           sequential_tuning=s.sequential_tuning, relative_test=True)
        else:
            plan = sample_size_means(metric.control.sd or 0.0, s.target_mde, mde_type="relative",
                                     baseline_mean=metric.control.mean, sd_treatment=metric.treatment.sd,
                                     alpha=alpha, power=s.power, sequential_tuning=s.sequential_tuning,
                                     relative_test=True)
    except StatsInputError:
        return None
    return max(plan.n_control, plan.n_treatment)


def _warnings(snapshot: ExperimentSnapshot, s: DecisionSettings, arms: list[ArmVerdict], horizon: int | None) -> list[str]:
    out = []
    for arm in arms:
        est = arm.primary
        if est and est.relative_lift is not None and abs(est.relative_lift) > s.max_believable_lift:
            out.append(
                f"suspicious change: '{est.metric}' moved {est.relative_lift:+.1%} in '{arm.variant}', more than the "
                f"{s.max_believable_lift:.0%} believable maximum; check instrumentation before acting"
            )
        if est and s.min_meaningful_change is not None and est.relative_lift is None:
            out.append(f"'{arm.variant}': min_meaningful_change not checked: the relative lift is undefined "
                       f"(control mean {est.control_mean:g})")
    if len(arms) > 1:
        out += [f"'{a.variant}' is losing against control ({a.reason}); consider stopping that arm"
                for a in arms if a.decision == Decision.KILL_LOSER and not any(g.status == "regressed" for g in a.guardrails)
                and any(b.decision != Decision.KILL_LOSER for b in arms)]
    if snapshot.days_running is None:
        out.append(f"days_running not given: the {s.min_days:g}-day minimum duration was not checked")
    if horizon is None:
        out.append(
            "no planned sample size: this look is treated as the final read"
            if s.method == "fixed_horizon" else
            "no horizon could be derived (relative MDE undefined for this metric): the test continues until significant"
        )
    out.extend(g.message for a in arms for g in a.guardrails if g.status == "insufficient_data")
    return out
