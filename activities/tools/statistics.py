"""Statistics tools: sizing an experiment and judging its results, with `activities.stats`.

`calculate_sample_size` plans a test for the method it will be read with (the always-valid
sequential test by default, with the tuning the verdict uses; several treatments at a corrected
alpha); `calculate_significance` gives the verdict (SRM gate, sample guards, guardrails, the test
itself, every treatment against the control *named* by ``control``) on `get_experiment_results`'
readout; `check_srm` and `check_guardrails` run one of those gates alone.

Every input error is a `BadRequestError` naming the field: retrying the same numbers cannot help.
That covers the argument models (non-finite numbers are refused: ``allow_inf_nan=False``), the
statistics models built from a readout (conversions above users, a negative sd) and the
statistics' own refusals (`StatsInputError`: an MDE that leaves (0, 1), power out of reach).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from activities import stats
from activities.connectors.models import ExperimentResults, VariantResult
from activities.errors import BadRequestError
from activities.stats.defaults import SEQUENTIAL_TUNING
from activities.stats.errors import StatsInputError
from activities.tools.experiments import ExperimentReadout
from activities.tools.spec import ToolSet

TOOLS = ToolSet()

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


def refuses_bad_input(tool: str) -> Callable[[Callable[[In], Awaitable[Out]]], Callable[[In], Awaitable[Out]]]:
    """Turn the statistics' input errors into a non-retryable `BadRequestError` naming the tool.

    A pydantic error inside a tool comes from a statistics model built from the arguments (an
    arm with more conversions than users); its text names the model and the field."""

    def wrap(fn: Callable[[In], Awaitable[Out]]) -> Callable[[In], Awaitable[Out]]:
        @wraps(fn)
        async def run(args: In) -> Out:
            try:
                return await fn(args)
            except (StatsInputError, ValidationError) as exc:
                raise BadRequestError(f"{tool}: {exc}") from None
        return run

    return wrap


class _Query(BaseModel):
    """Tool arguments: unknown keys ignored (a workflow may hand a whole output over), numbers finite."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


# -- calculate_sample_size ----------------------------------------------------------------------


class SampleSizeQuery(_Query):
    baseline_rate: float | None = Field(None, gt=0, lt=1, description="current conversion rate of the primary "
                                                                      "metric (or give baseline_mean and sd)")
    baseline_mean: float | None = Field(None, description="continuous metric: current mean per unit")
    sd: float | None = Field(None, gt=0, description="continuous metric: standard deviation per unit")
    mde: float = Field(0.05, gt=0, description="minimum detectable effect (relative by default)")
    mde_type: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    daily_users: int | None = Field(None, ge=1, description="eligible users per day, to estimate the duration")
    method: Literal["sequential", "fixed_horizon"] = Field(
        "sequential", description="the test the results will be read with: sequential (always-valid, read at every "
                                  "look) or fixed_horizon (pre-registered, read once at the planned sample)")
    treatments: int = Field(1, ge=1, le=20, description="treatment arms, each compared with the control")

    @model_validator(mode="after")
    def _one_metric_shape(self) -> SampleSizeQuery:
        continuous = self.baseline_mean is not None or self.sd is not None
        if (self.baseline_rate is None) == (not continuous):
            raise ValueError("give either baseline_rate (a conversion metric) or baseline_mean and sd "
                             "(a continuous metric)")
        if continuous and self.sd is None:
            raise ValueError("sd: a continuous metric's plan needs its standard deviation per unit")
        return self


class SampleSizePlan(BaseModel):
    n_per_arm: int
    total: int = Field(description="n_per_arm times the number of arms (control and every treatment)")
    days_needed: int | None
    method: Literal["sequential", "fixed_horizon"]
    treatments: int
    alpha_per_comparison: float = Field(description="alpha / treatments: each comparison's share of alpha")
    analysis: dict[str, Any]


@TOOLS.tool("calculate_sample_size", local=True)
@refuses_bad_input("calculate_sample_size")
async def calculate_sample_size(args: SampleSizeQuery) -> SampleSizePlan:
    """Users per arm to detect the MDE at the given alpha and power, planned for the test that will read it
    (sequential by default) and for every treatment against the control."""
    alpha = args.alpha / args.treatments
    tuning = SEQUENTIAL_TUNING if args.method == "sequential" else None
    if args.baseline_rate is not None:
        plan = stats.sample_size_proportions(args.baseline_rate, args.mde, mde_type=args.mde_type, alpha=alpha,
                                             power=args.power, sequential_tuning=tuning,
                                             relative_test=True)
    else:
        assert args.sd is not None
        relative = args.baseline_mean is not None and args.baseline_mean > 0
        plan = stats.sample_size_means(args.sd, args.mde, mde_type=args.mde_type, baseline_mean=args.baseline_mean,
                                       alpha=alpha, power=args.power, sequential_tuning=tuning,
                                       relative_test=relative)
    n = max(plan.n_control, plan.n_treatment)
    total = n * (args.treatments + 1)
    days = -(-total // args.daily_users) if args.daily_users else None
    return SampleSizePlan(n_per_arm=n, total=total, days_needed=days, method=args.method, treatments=args.treatments,
                          alpha_per_comparison=alpha, analysis=plan.model_dump(mode="json"))


# -- from a readout to the statistics' metrics --------------------------------------------------


def _control_and_treatments(results: ExperimentResults, control: str) -> tuple[VariantResult, list[VariantResult]]:
    """The control arm chosen by name and every other arm as a treatment (none dropped)."""
    names = [v.variant for v in results.variants]
    if control not in names:
        raise BadRequestError(
            f"experiment '{results.experiment_key}', metric '{results.metric}': no variant named '{control}' to use "
            f"as the control; the variants are {', '.join(repr(n) for n in names) or 'none yet'}. Set `control:` to "
            "the control arm's name (connectors list variants alphabetically, so position says nothing)")
    treatments = [v for v in results.variants if v.variant != control]
    if not treatments:
        raise BadRequestError(f"experiment '{results.experiment_key}' has only the control '{control}' with data for "
                              f"'{results.metric}'; a comparison needs at least one treatment")
    return next(v for v in results.variants if v.variant == control), treatments


def _covariate(v: VariantResult) -> stats.Covariate | None:
    if v.pre_mean is None or v.pre_sd is None or v.pre_covariance is None:
        return None
    return stats.Covariate(mean=v.pre_mean, sd=v.pre_sd, covariance=v.pre_covariance)


def _require(results: ExperimentResults, v: VariantResult, fields: tuple[str, ...]) -> None:
    missing = [f for f in fields if getattr(v, f) is None]
    if missing:
        raise BadRequestError(f"{results.metric_kind} metric '{results.metric}' of '{results.experiment_key}': variant "
                              f"'{v.variant}' has no {', '.join(missing)}; the connector must supply "
                              f"{', '.join(fields)} for a {results.metric_kind} metric")


def _arm(results: ExperimentResults, v: VariantResult, cuped: bool) -> Any:
    try:
        return _build_arm(results, v, cuped)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'arm'}: {e['msg']}" for e in exc.errors())
        raise BadRequestError(f"{results.metric_kind} metric '{results.metric}' of '{results.experiment_key}', variant "
                              f"'{v.variant}': {problems}") from None


def _build_arm(results: ExperimentResults, v: VariantResult, cuped: bool) -> Any:
    pre = _covariate(v) if cuped else None
    if results.metric_kind == "conversion":
        return stats.ProportionArm(users=v.users, conversions=v.conversions, pre=pre)
    if results.metric_kind == "continuous":
        _require(results, v, ("value_mean", "value_sd"))
        return stats.MeanArm(n=v.users, mean=v.value_mean, sd=v.value_sd, pre=pre)
    _require(results, v, ("numerator_mean", "numerator_sd", "denominator_mean", "denominator_sd",
                          "numerator_denominator_covariance"))
    return stats.RatioArm(n=v.users, numerator_mean=v.numerator_mean, numerator_sd=v.numerator_sd,
                          denominator_mean=v.denominator_mean, denominator_sd=v.denominator_sd,
                          covariance=v.numerator_denominator_covariance)


_METRIC_CLASS = {"conversion": stats.ConversionMetric, "continuous": stats.ContinuousMetric, "ratio": stats.RatioMetric}


def _metrics(results: ExperimentResults, control: str, *, higher_is_better: bool = True,
             cuped: bool = True) -> list[stats.Metric]:
    """One statistics metric per treatment, each against the named control. CUPED covariates are
    attached only when every arm has them (a partial adjustment would compare unlike estimates)."""
    control_v, treatments = _control_and_treatments(results, control)
    use_cuped = cuped and results.metric_kind != "ratio" and all(
        _covariate(v) is not None for v in (control_v, *treatments))
    cls = _METRIC_CLASS[results.metric_kind]
    control_arm = _arm(results, control_v, use_cuped)
    return [cls(name=results.metric, variant=t.variant, higher_is_better=higher_is_better, control=control_arm,
                treatment=_arm(results, t, use_cuped)) for t in treatments]


def _weights(split: list[float] | dict[str, float] | None, results: ExperimentResults,
             order: list[str] | None = None) -> list[float] | None:
    """Expected weights in ``order`` (default: the readout's); a ``{variant: weight}`` split is read by name,
    a list is in the readout's variant order."""
    names = [v.variant for v in results.variants]
    order = order or names
    if split is None:
        return None
    if isinstance(split, list):
        if len(split) != len(names):
            raise BadRequestError(f"expected_split has {len(split)} weights but experiment '{results.experiment_key}' "
                                  f"has {len(names)} variants ({', '.join(names)}); give one weight per variant, or "
                                  "{variant: weight}")
        by_name = dict(zip(names, split))
        return [float(by_name[n]) for n in order]
    missing = [n for n in order if n not in split]
    if missing:
        raise BadRequestError(f"traffic split {split} has no weight for variant(s) {', '.join(missing)} of "
                              f"experiment '{results.experiment_key}'")
    return [float(split[n]) for n in order]


def _guardrails(results: ExperimentReadout, control: str, margin: float, cuped: bool) -> list[stats.Guardrail]:
    return [stats.Guardrail(metric=m, margin=margin if g.max_drop is None else g.max_drop)
            for g in results.guardrails
            for m in _metrics(g, control, higher_is_better=g.higher_is_better, cuped=cuped)]


# -- calculate_significance ----------------------------------------------------------------------


class SignificanceQuery(_Query):
    results: ExperimentReadout
    control: str = Field("control", min_length=1, description="the control arm's variant name; every other "
                                                              "variant is a treatment compared with it")
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = Field(
        "sequential", description="sequential: valid at every look; fixed_horizon: pre-registered, read once at "
                                  "planned_n_per_arm")
    correction: Literal["holm", "bh"] = Field("holm", description="across treatments: Holm (family-wise) or "
                                                                  "Benjamini-Hochberg (false discovery rate)")
    cuped: bool = Field(True, description="adjust with pre-period statistics when every arm has them")
    min_meaningful_change: float | None = Field(
        None, gt=0, description="relative improvement below which a significant win is not shipped, e.g. 0.02")
    bayesian: bool = Field(False, description="add chance to beat control, expected loss and a credible interval "
                                              "per treatment")
    srm_method: Literal["sequential", "fixed"] = Field(
        "sequential", description="sample-ratio test: sequential (valid when read daily) or fixed (chi-square)")
    expected_split: list[float] | dict[str, float] | None = Field(
        None, description="configured weights, as a list in variant order or {variant: weight}")
    days_running: float | None = Field(None, ge=0, description="days since the experiment started")
    started_at: datetime | None = Field(None, description="when it started; gives days_running when that is not set")
    planned_n_per_arm: int | None = Field(None, ge=1, description="calculate_sample_size's n_per_arm")
    min_days: float | None = Field(None, ge=0, description="days before a winner may ship (default 3)")
    target_mde: float | None = Field(None, gt=0, description="relative lift the test is powered for (default 0.10)")
    power: float | None = Field(None, gt=0, lt=1)
    guardrail_margin: float = Field(0.02, ge=0, description="tolerated relative worsening of a guardrail")


class ArmReadout(BaseModel):
    """One treatment against the control, as the readout reports it."""

    variant: str
    decision: stats.Decision
    reason: str
    lift: float | None = Field(description="relative lift vs control (absolute difference when undefined)")
    lift_ci_low: float | None
    lift_ci_high: float | None
    p_value: float | None = Field(description="before correction (always-valid when sequential)")
    adjusted_p_value: float | None = Field(description="after the correction: what the decision compares with alpha")
    scale: Literal["relative", "absolute"] | None = Field(description="the scale of lift and its interval")
    interval_level: float | None = Field(description="the error rate the interval is drawn at: alpha x raw / "
                                                     "adjusted p, so it excludes 0 exactly when adjusted p < alpha")
    n_control: int | None
    n_treatment: int | None
    control_mean: float | None = Field(description="per-unit mean (CUPED-adjusted when applied; the ratio itself "
                                                   "for a ratio metric)")
    treatment_mean: float | None
    bayesian: stats.BayesianReadout | None = None


class SignificanceReadout(stats.Verdict):
    """The verdict, plus the few numbers a workflow routes on and a report quotes (of the winner, or
    with no winner of the arm that decided, else the best arm; every arm is in ``arms``)."""

    conclusive: bool = Field(description="a decision was reached (anything but CONTINUE)")
    ship: bool
    kill: bool
    metric: str
    metric_kind: Literal["conversion", "continuous", "ratio"] = "conversion"
    lift: float | None = Field(description="relative lift of the primary metric, treatment vs control (the absolute "
                                           "difference when the control mean is not positive: arms[].scale)")
    lift_ci_low: float | None = Field(description="interval of the lift matching the p-value's method and level")
    lift_ci_high: float | None
    p_value: float | None = Field(description="the p-value the decision was made on (after correction)")
    days_running: float | None
    cuped_applied: bool = False
    variance_reduction: float | None = Field(None, description="CUPED: share of the variance removed (chosen arm)")
    capped_at: dict[str, float] | None = Field(None, description="winsorisation cap per variant, as the connector "
                                                                 "applied it (None: uncapped)")
    arms: list[ArmReadout] = Field(default_factory=list, description="one entry per treatment, none dropped")  # type: ignore[assignment]
    headline: str = Field(description="one line: decision, lift, interval and p-value")


def _arm_readout(arm: stats.ArmVerdict) -> ArmReadout:
    est = arm.primary
    low, high = arm.interval if arm.interval else (None, None)
    return ArmReadout(variant=arm.variant, decision=arm.decision, reason=arm.reason, lift=arm.lift, lift_ci_low=low,
                      lift_ci_high=high, p_value=arm.p_value, adjusted_p_value=arm.adjusted_p_value,
                      scale=arm.scale, interval_level=arm.interval_level,
                      n_control=est.n_control if est else None, n_treatment=est.n_treatment if est else None,
                      control_mean=est.control_mean if est else None,
                      treatment_mean=est.treatment_mean if est else None, bayesian=arm.bayesian)


def _readout(verdict: stats.Verdict, results: ExperimentResults, days_running: float | None,
             args: SignificanceQuery) -> SignificanceReadout:
    chosen = next((a for a in verdict.arms if a.variant == verdict.variant), None)
    est = verdict.primary
    lift = chosen.lift if chosen else None
    low, high = chosen.interval if chosen and chosen.interval else (None, None)
    p = verdict.primary_p_value
    relative = chosen is not None and chosen.scale == "relative"
    if lift is None or p is None or chosen is None:
        headline = f"{verdict.decision.value}: {verdict.reason}"
    else:
        kind = "always-valid " if verdict.method == "sequential" else ""
        adjusted = f" ({args.correction}-adjusted)" if len(verdict.arms) > 1 else ""
        shown = (lambda x: f"{x:+.1%}") if relative else (lambda x: f"{x:+.4g}")
        ci = f", {1 - args.alpha:.0%} {kind}CI{adjusted} {shown(low)} to {shown(high)}" if low is not None else ""
        who = "" if len(verdict.arms) == 1 and chosen.variant == "treatment" else f" ({chosen.variant})"
        headline = (f"{verdict.decision.value}: {results.metric} {shown(lift)}"
                    f"{'' if relative else ' (absolute)'} vs {verdict.control}{who}{ci}, p = {p:.2g}")
    caps = {v.variant: v.capped_at for v in results.variants if v.capped_at is not None} or None
    warnings = list(verdict.warnings)
    if caps:
        warnings.append(f"values winsorised by the connector (cap per unit: {caps}); lifts are of the capped metric")
    cuped = est.cuped if est else None
    return SignificanceReadout(
        **verdict.model_dump(exclude={"warnings", "arms"}), warnings=warnings,
        conclusive=verdict.decision != stats.Decision.CONTINUE,
        ship=verdict.decision == stats.Decision.SHIP_WINNER, kill=verdict.decision == stats.Decision.KILL_LOSER,
        metric=results.metric, metric_kind=results.metric_kind, lift=lift, lift_ci_low=low, lift_ci_high=high,
        p_value=p, days_running=days_running, cuped_applied=cuped is not None,
        variance_reduction=cuped.variance_reduction if cuped else None, capped_at=caps,
        arms=[_arm_readout(a) for a in verdict.arms], headline=headline)


@TOOLS.tool("calculate_significance", local=True)
@refuses_bad_input("calculate_significance")
async def calculate_significance(args: SignificanceQuery) -> SignificanceReadout:
    """The verdict: SRM gate, sample guards, guardrails, then every treatment against the named control
    (corrected), naming the winning arm or none, with the numbers behind it."""
    results = args.results
    days = args.days_running
    if days is None and args.started_at is not None:
        started = args.started_at if args.started_at.tzinfo else args.started_at.replace(tzinfo=UTC)
        days = max(0.0, (datetime.now(UTC) - started).total_seconds() / 86400)
    primaries = _metrics(results, args.control, cuped=args.cuped)
    order = [args.control, *(m.variant for m in primaries)]
    counts = {v.variant: v.users for v in results.variants}
    snapshot = stats.ExperimentSnapshot(
        primary=primaries, guardrails=_guardrails(results, args.control, args.guardrail_margin, args.cuped),
        assignment_counts=[counts[n] for n in order], expected_split=_weights(args.expected_split, results, order),
        days_running=days, control=args.control)
    chosen = {k: v for k, v in (("min_days", args.min_days), ("target_mde", args.target_mde), ("power", args.power))
              if v is not None}
    settings = stats.DecisionSettings(
        alpha=args.alpha, method=args.method, planned_n_per_arm=args.planned_n_per_arm, correction=args.correction,
        cuped=args.cuped, min_meaningful_change=args.min_meaningful_change, bayesian=args.bayesian,
        srm_method=args.srm_method, **chosen)
    return _readout(stats.decide(snapshot, settings), results, days, args)


# -- check_srm ------------------------------------------------------------------------------------


class SrmQuery(_Query):
    observed: list[int] | None = Field(None, min_length=2, description="units assigned to each variant")
    results: ExperimentReadout | None = Field(None, description="or: experiment results, whose arm sizes are used")
    expected_weights: list[float] | dict[str, float] | None = None
    threshold: float = Field(0.001, gt=0, lt=1)
    method: Literal["fixed", "sequential"] = Field(
        "fixed", description="fixed: chi-square, for one read; sequential: always-valid, for a check read every day")

    @model_validator(mode="after")
    def _one_source(self) -> SrmQuery:
        if (self.observed is None) == (self.results is None):
            raise ValueError("give either observed (units per variant) or results (from get_experiment_results)")
        return self


@TOOLS.tool("check_srm", local=True)
@refuses_bad_input("check_srm")
async def check_srm(args: SrmQuery) -> stats.SrmResult:
    """Sample-ratio mismatch gate: a broken split invalidates every other number."""
    if args.results is not None:
        observed = [v.users for v in args.results.variants]
        weights = _weights(args.expected_weights, args.results)
    else:
        observed = args.observed or []
        if isinstance(args.expected_weights, dict):
            raise BadRequestError("check_srm: expected_weights as {variant: weight} needs results; with observed "
                                  "give a list")
        weights = args.expected_weights
    return stats.check_srm(observed, weights, threshold=args.threshold, method=args.method)


# -- check_guardrails -----------------------------------------------------------------------------


class GuardrailQuery(_Query):
    metrics: list[stats.ConversionMetric | stats.ContinuousMetric | stats.RatioMetric] = Field(
        default_factory=list, description="guardrail metrics with control and treatment arms")
    results: ExperimentReadout | None = Field(
        None, description="or: get_experiment_results output read with guardrails (directions and margins included)")
    control: str = Field("control", min_length=1, description="the control arm's variant name in results")
    margin: float = Field(0.02, ge=0, description="largest tolerated relative degradation")
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = Field(
        "sequential", description="sequential: valid at every look, as calculate_significance reads guardrails; "
                                  "fixed_horizon only for the one read at the planned sample")
    cuped: bool = Field(True, description="adjust with pre-period statistics when every arm has them")

    @model_validator(mode="after")
    def _some_metrics(self) -> GuardrailQuery:
        if not self.metrics and (self.results is None or not self.results.guardrails):
            raise ValueError("no guardrail metrics: give metrics, or results read with guardrails")
        return self


class GuardrailReport(BaseModel):
    passed: bool
    results: list[stats.GuardrailResult]
    messages: list[str] = Field(default_factory=list, description="one sentence per guardrail, for people and prompts")


@TOOLS.tool("check_guardrails", local=True)
@refuses_bad_input("check_guardrails")
async def check_guardrails(args: GuardrailQuery) -> GuardrailReport:
    """Non-inferiority of each guardrail metric within the margin, for every treatment against the control."""
    guardrails = [stats.Guardrail(metric=m, margin=args.margin) for m in args.metrics]
    if args.results is not None:
        guardrails += _guardrails(args.results, args.control, args.margin, args.cuped)
    tuning = SEQUENTIAL_TUNING if args.method == "sequential" else None
    results = [stats.check_guardrail(g, alpha=args.alpha, sequential_tuning=tuning, cuped=args.cuped)
               for g in guardrails]
    return GuardrailReport(passed=all(r.status != "regressed" for r in results), results=results,
                           messages=[r.message for r in results])
