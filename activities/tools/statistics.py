"""Statistics tools: sizing an experiment and judging its results, with `activities.stats`.

`calculate_sample_size` plans a test; `calculate_significance` gives the verdict (SRM gate, sample
guards, guardrails, the test itself) on `get_experiment_results`' readout; `check_srm` and
`check_guardrails` run one of those gates alone. A statistics input that cannot be judged (an arm
without users, a split without a weight for a variant) is a `BadRequestError`: retrying the same
numbers cannot help, and the message says what is wrong.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities import stats
from activities.connectors.models import ExperimentResults
from activities.errors import BadRequestError
from activities.stats.defaults import SEQUENTIAL_TUNING
from activities.stats.errors import StatsInputError
from activities.tools.experiments import ExperimentReadout
from activities.tools.spec import ToolSet

TOOLS = ToolSet()


class SampleSizeQuery(BaseModel):
    baseline_rate: float = Field(gt=0, lt=1, description="current conversion rate of the primary metric")
    mde: float = Field(0.05, gt=0, description="minimum detectable effect (relative by default)")
    mde_type: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    daily_users: int | None = Field(None, ge=1, description="eligible users per day, to estimate the duration")


class SampleSizePlan(BaseModel):
    n_per_arm: int
    total: int
    days_needed: int | None
    analysis: dict[str, Any]


@TOOLS.tool("calculate_sample_size")
async def calculate_sample_size(args: SampleSizeQuery) -> SampleSizePlan:
    """Users per arm to detect the MDE at the given alpha and power (two arms, equal split)."""
    plan = stats.sample_size_proportions(args.baseline_rate, args.mde, mde_type=args.mde_type,
                                         alpha=args.alpha, power=args.power)
    days = -(-plan.n_total // args.daily_users) if args.daily_users else None
    return SampleSizePlan(n_per_arm=max(plan.n_control, plan.n_treatment), total=plan.n_total, days_needed=days,
                          analysis=plan.model_dump(mode="json"))


def _stats_metric(results: ExperimentResults, *, higher_is_better: bool = True) -> stats.Metric:
    """The control (first) and treatment (second) arms of ``results`` as a statistics metric."""
    if len(results.variants) < 2:
        raise BadRequestError(f"experiment '{results.experiment_key}' has {len(results.variants)} variant(s) with data "
                              f"for '{results.metric}'; a comparison needs control and treatment")
    control, treatment = results.variants[0], results.variants[1]
    if results.metric_kind == "conversion":
        return stats.ConversionMetric(
            name=results.metric, higher_is_better=higher_is_better,
            control=stats.ProportionArm(users=control.users, conversions=control.conversions),
            treatment=stats.ProportionArm(users=treatment.users, conversions=treatment.conversions))
    for v in (control, treatment):
        if v.value_mean is None or v.value_sd is None:
            raise BadRequestError(f"continuous metric '{results.metric}' of '{results.experiment_key}': variant "
                                  f"'{v.variant}' has no value_mean/value_sd")
    return stats.ContinuousMetric(
        name=results.metric, higher_is_better=higher_is_better,
        control=stats.MeanArm(n=control.users, mean=control.value_mean, sd=control.value_sd),
        treatment=stats.MeanArm(n=treatment.users, mean=treatment.value_mean, sd=treatment.value_sd))


def _weights(split: list[float] | dict[str, float] | None, results: ExperimentResults) -> list[float] | None:
    """Expected weights in variant order; a ``{variant: weight}`` split is read by variant name."""
    if split is None or isinstance(split, list):
        return split
    missing = [v.variant for v in results.variants if v.variant not in split]
    if missing:
        raise BadRequestError(f"traffic split {split} has no weight for variant(s) {', '.join(missing)} of "
                              f"experiment '{results.experiment_key}'")
    return [float(split[v.variant]) for v in results.variants]


def _guardrails(results: ExperimentReadout, margin: float) -> list[stats.Guardrail]:
    return [stats.Guardrail(metric=_stats_metric(g, higher_is_better=g.higher_is_better),
                            margin=margin if g.max_drop is None else g.max_drop)
            for g in results.guardrails]


class SignificanceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    results: ExperimentReadout
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = "sequential"
    expected_split: list[float] | dict[str, float] | None = Field(
        None, description="configured weights, as a list in variant order or {variant: weight}")
    days_running: float | None = Field(None, ge=0, description="days since the experiment started")
    started_at: datetime | None = Field(None, description="when it started; gives days_running when that is not set")
    planned_n_per_arm: int | None = Field(None, ge=1)
    min_days: float | None = Field(None, ge=0, description="days before a winner may ship (default 3)")
    target_mde: float | None = Field(None, gt=0, description="relative lift the test is powered for (default 0.10)")
    power: float | None = Field(None, gt=0, lt=1)
    guardrail_margin: float = Field(0.02, ge=0, description="tolerated relative worsening of a guardrail")


class SignificanceReadout(stats.Verdict):
    """The verdict, plus the few numbers a workflow routes on and a report quotes."""

    conclusive: bool = Field(description="a decision was reached (anything but CONTINUE)")
    ship: bool
    kill: bool
    metric: str
    lift: float | None = Field(description="relative lift of the primary metric, treatment vs control")
    lift_ci_low: float | None = Field(description="interval of the lift matching the p-value's method")
    lift_ci_high: float | None
    p_value: float | None = Field(description="the p-value the decision was made on")
    days_running: float | None
    headline: str = Field(description="one line: decision, lift, interval and p-value")


def _readout(verdict: stats.Verdict, metric: str, days_running: float | None, alpha: float) -> SignificanceReadout:
    est, seq = verdict.primary, verdict.primary_sequential
    lift = est.relative_lift if est else None
    interval = (seq.relative_cs if seq else None) if verdict.method == "sequential" else (est.relative_ci if est else None)
    low, high = interval if interval else (None, None)
    p = verdict.primary_p_value
    if lift is None or p is None:
        headline = f"{verdict.decision.value}: {verdict.reason}"
    else:
        kind = "always-valid " if verdict.method == "sequential" else ""
        ci = f", {1 - alpha:.0%} {kind}CI {low:+.1%} to {high:+.1%}" if low is not None and high is not None else ""
        headline = f"{verdict.decision.value}: {metric} {lift:+.1%} vs control{ci}, p = {p:.2g}"
    return SignificanceReadout(
        **verdict.model_dump(), conclusive=verdict.decision != stats.Decision.CONTINUE,
        ship=verdict.decision == stats.Decision.SHIP_WINNER, kill=verdict.decision == stats.Decision.KILL_LOSER,
        metric=metric, lift=lift, lift_ci_low=low, lift_ci_high=high, p_value=p, days_running=days_running,
        headline=headline)


@TOOLS.tool("calculate_significance")
async def calculate_significance(args: SignificanceQuery) -> SignificanceReadout:
    """The verdict on the primary metric: SRM gate, sample guards, guardrails, test, and the numbers behind it."""
    results = args.results
    days = args.days_running
    if days is None and args.started_at is not None:
        started = args.started_at if args.started_at.tzinfo else args.started_at.replace(tzinfo=timezone.utc)
        days = max(0.0, (datetime.now(timezone.utc) - started).total_seconds() / 86400)
    snapshot = stats.ExperimentSnapshot(primary=_stats_metric(results), guardrails=_guardrails(results, args.guardrail_margin),
                                        expected_split=_weights(args.expected_split, results), days_running=days)
    chosen = {k: v for k, v in (("min_days", args.min_days), ("target_mde", args.target_mde), ("power", args.power))
              if v is not None}
    settings = stats.DecisionSettings(alpha=args.alpha, method=args.method, planned_n_per_arm=args.planned_n_per_arm,
                                      **chosen)
    try:
        verdict = stats.decide(snapshot, settings)
    except StatsInputError as exc:
        raise BadRequestError(f"calculate_significance: {exc}") from None
    return _readout(verdict, results.metric, days, args.alpha)


class SrmQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    observed: list[int] | None = Field(None, min_length=2, description="units assigned to each variant")
    results: ExperimentReadout | None = Field(None, description="or: experiment results, whose arm sizes are used")
    expected_weights: list[float] | dict[str, float] | None = None
    threshold: float = Field(0.001, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_source(self) -> SrmQuery:
        if (self.observed is None) == (self.results is None):
            raise ValueError("give either observed (units per variant) or results (from get_experiment_results)")
        return self


@TOOLS.tool("check_srm")
async def check_srm(args: SrmQuery) -> stats.SrmResult:
    """Sample-ratio mismatch gate: a broken split invalidates every other number."""
    if args.results is not None:
        observed = [v.users for v in args.results.variants]
        weights = _weights(args.expected_weights, args.results)
    else:
        observed = args.observed or []
        if isinstance(args.expected_weights, dict):
            raise BadRequestError("expected_weights as {variant: weight} needs results; with observed give a list")
        weights = args.expected_weights
    try:
        return stats.check_srm(observed, weights, threshold=args.threshold)
    except StatsInputError as exc:
        raise BadRequestError(f"check_srm: {exc}") from None


class GuardrailQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metrics: list[stats.ConversionMetric | stats.ContinuousMetric] = Field(default_factory=list,
                                        description="guardrail metrics with control and treatment arms")
    results: ExperimentReadout | None = Field(
        None, description="or: get_experiment_results output read with guardrails (directions and margins included)")
    margin: float = Field(0.02, ge=0, description="largest tolerated relative degradation")
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = Field(
        "fixed_horizon", description="sequential: valid at every look, as calculate_significance reads guardrails")

    @model_validator(mode="after")
    def _some_metrics(self) -> GuardrailQuery:
        if not self.metrics and (self.results is None or not self.results.guardrails):
            raise ValueError("no guardrail metrics: give metrics, or results read with guardrails")
        return self


class GuardrailReport(BaseModel):
    passed: bool
    results: list[stats.GuardrailResult]
    messages: list[str] = Field(default_factory=list, description="one sentence per guardrail, for people and prompts")


@TOOLS.tool("check_guardrails")
async def check_guardrails(args: GuardrailQuery) -> GuardrailReport:
    """Non-inferiority of each guardrail metric within the margin."""
    guardrails = [stats.Guardrail(metric=m, margin=args.margin) for m in args.metrics]
    if args.results is not None:
        guardrails += _guardrails(args.results, args.margin)
    tuning = SEQUENTIAL_TUNING if args.method == "sequential" else None
    try:
        results = [stats.check_guardrail(g, alpha=args.alpha, sequential_tuning=tuning) for g in guardrails]
    except StatsInputError as exc:
        raise BadRequestError(f"check_guardrails: {exc}") from None
    return GuardrailReport(passed=all(r.status != "regressed" for r in results), results=results,
                           messages=[r.message for r in results])
