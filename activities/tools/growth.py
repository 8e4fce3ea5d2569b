"""The growth-experimentation tools (Iterstack's deterministic steps).

Numbers come from here, never from a model: agents call these through `tools:` and tool nodes
through `call:`. Each tool reads its connector / flag provider from its arguments (name and
settings, no secrets: credentials are read from the worker's environment by the connector), so a
run's configuration is visible in its history and every call can be replayed by hand.

Those two arguments are *bound*: a model neither sees nor sets them. When a model calls a tool,
the workflow fills them from the run vars `connector` and `flag_provider`; a `call:` node passes
them in `with` (left out, they default to the mock connector and the local flag store).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio.exceptions import ApplicationError

from activities import stats
from activities.connectors.base import ExperimentResults, FunnelData, HistoricalExperiment
from activities.connectors.registry import connector_from_config
from activities.flags.base import Flag, FlagSpec
from activities.flags.registry import flag_provider_from_config
from activities.stats.defaults import SEQUENTIAL_TUNING
from activities.stats.errors import StatsInputError
from activities.tools.registry import tool
from workflows.contract.messages import ERR_BAD_REQUEST

#: The infrastructure arguments a model never sets (activities/tools/registry.py, "Bound
#: arguments"): the connector comes from the run var `connector`, the flag provider from the run
#: var `flag_provider` (the growth loop's names for them).
CONNECTOR_BOUND = {"connector": "connector"}
FLAG_PROVIDER_BOUND = {"provider": "flag_provider"}


class ConnectorChoice(BaseModel):
    name: str = Field("mock", description="mock, ga4, mixpanel, amplitude or warehouse")
    settings: dict[str, Any] = Field(default_factory=dict)


class FlagProviderChoice(BaseModel):
    name: str = Field("local", description="local, growthbook or unleash")
    settings: dict[str, Any] = Field(default_factory=dict)


def _yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def _window(end: date | None, days: int) -> tuple[date, date]:
    last = end or _yesterday()
    return last - timedelta(days=days - 1), last


# -- data ----------------------------------------------------------------------------------------


class FunnelQuery(BaseModel):
    funnel: str = Field("checkout", description="funnel name, e.g. checkout")
    lookback_days: int = Field(28, ge=1, le=366)
    end: date | None = Field(None, description="last day (default: yesterday, UTC)")
    segment: dict[str, str] | None = Field(None, description="e.g. {\"platform\": \"ios\"}")
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


@tool("get_funnel_data", bound=CONNECTOR_BOUND)
async def get_funnel_data(args: FunnelQuery) -> FunnelData:
    """Users at each step of a funnel over a window, with step-to-step conversion."""
    start, end = _window(args.end, args.lookback_days)
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        return await conn.funnel(args.funnel, start, end, args.segment)


class AnomalyQuery(BaseModel):
    funnel: str = "checkout"
    from_step: str = Field("checkout_start", description="conversion is measured from this step")
    to_step: str = Field("purchase", description="... to this step")
    dimension: str = Field("platform", description="segment dimension to compare")
    values: list[str] = Field(default_factory=lambda: ["web", "ios", "android"])
    recent_days: int = Field(10, ge=1)
    baseline_days: int = Field(28, ge=1)
    end: date | None = None
    alpha: float = Field(0.001, gt=0, lt=1, description="significance needed to call a change an anomaly")
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


class Anomaly(BaseModel):
    segment: str
    segment_filter: dict[str, str] = Field(description="the segment as a filter, e.g. {\"platform\": \"ios\"}")
    metric: str
    baseline_rate: float
    current_rate: float
    relative_change: float
    p_value: float
    severity: Literal["low", "medium", "high", "critical"]
    recent_daily_users: int = Field(description="users reaching from_step per day in the recent window (sizing)")


class AnomalyReport(BaseModel):
    found: bool = Field(description="whether any segment changed significantly (workflows route on it)")
    anomalies: list[Anomaly]
    top: Anomaly | None
    summary: str


def _severity(change: float) -> Literal["low", "medium", "high", "critical"]:
    size = abs(change)
    return "critical" if size >= 0.3 else "high" if size >= 0.15 else "medium" if size >= 0.05 else "low"


def _step_users(data: FunnelData, step: str) -> int:
    for s in data.steps:
        if s.name == step:
            return s.users
    raise ValueError(f"funnel '{data.funnel}' has no step '{step}'; steps: {', '.join(s.name for s in data.steps)}")


@tool("detect_anomalies", bound=CONNECTOR_BOUND)
async def detect_anomalies(args: AnomalyQuery) -> AnomalyReport:
    """Compare a step-to-step conversion in the recent window with the window before, per segment."""
    last = args.end or _yesterday()
    recent = (last - timedelta(days=args.recent_days - 1), last)
    base_end = recent[0] - timedelta(days=1)
    baseline = (base_end - timedelta(days=args.baseline_days - 1), base_end)
    metric = f"{args.funnel}:{args.from_step}->{args.to_step}"
    found: list[Anomaly] = []
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        for value in args.values:
            seg = {args.dimension: value}
            before = await conn.funnel(args.funnel, baseline[0], baseline[1], seg)
            after = await conn.funnel(args.funnel, recent[0], recent[1], seg)
            control = stats.ProportionArm(users=_step_users(before, args.from_step),
                                          conversions=_step_users(before, args.to_step))
            current = stats.ProportionArm(users=_step_users(after, args.from_step),
                                          conversions=_step_users(after, args.to_step))
            test = stats.two_proportion_test(control, current, alpha=args.alpha)
            if test.p_value < args.alpha:
                found.append(Anomaly(
                    segment=f"{args.dimension}={value}", segment_filter=dict(after.segment or seg), metric=metric,
                    baseline_rate=round(control.conversions / control.users, 6),
                    current_rate=round(current.conversions / current.users, 6),
                    relative_change=round(test.relative_lift or 0.0, 6), p_value=test.p_value,
                    severity=_severity(test.relative_lift or 0.0),
                    recent_daily_users=round(current.users / args.recent_days)))
    found.sort(key=lambda a: (a.relative_change, a.segment))  # biggest drop first
    top = found[0] if found else None
    summary = (f"{len(found)} segment(s) changed significantly; worst: {top.segment} {top.metric} "
               f"{top.baseline_rate:.2%} -> {top.current_rate:.2%} ({top.relative_change:+.1%})"
               if top else f"no significant change in {metric}")
    return AnomalyReport(found=bool(found), anomalies=found, top=top, summary=summary)


class HistoryQuery(BaseModel):
    limit: int = Field(20, ge=1, le=200)
    metric: str | None = None
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


class HistoryList(BaseModel):
    experiments: list[HistoricalExperiment]


@tool("get_historical_experiments", bound=CONNECTOR_BOUND)
async def get_historical_experiments(args: HistoryQuery) -> HistoryList:
    """Past experiments (hypothesis, lift, verdict) so a plan does not repeat a failed test."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        return HistoryList(experiments=await conn.historical_experiments(args.limit, args.metric))


# -- planning and launching ----------------------------------------------------------------------


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


@tool("calculate_sample_size")
async def calculate_sample_size(args: SampleSizeQuery) -> SampleSizePlan:
    """Users per arm to detect the MDE at the given alpha and power (two arms, equal split)."""
    plan = stats.sample_size_proportions(args.baseline_rate, args.mde, mde_type=args.mde_type,
                                         alpha=args.alpha, power=args.power)
    days = -(-plan.n_total // args.daily_users) if args.daily_users else None
    return SampleSizePlan(n_per_arm=max(plan.n_control, plan.n_treatment), total=plan.n_total, days_needed=days,
                          analysis=plan.model_dump(mode="json"))


class FlagRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    flag_key: str = Field(min_length=1)
    description: str = ""
    variants: list[str] = Field(default_factory=lambda: ["control", "treatment"], min_length=2)
    traffic_split: dict[str, float] | None = Field(None, description="variant -> weight (sums to 100)")
    targeting: dict[str, Any] = Field(default_factory=dict)
    experiment_key: str | None = None
    provider: FlagProviderChoice = Field(default_factory=FlagProviderChoice)


class FlagCreated(BaseModel):
    flag_key: str
    experiment_id: str
    status: str
    enabled: bool
    created: bool
    provider: str
    flag: Flag
    created_at: datetime = Field(description="when the flag was created (UTC), as the flag provider recorded it; "
                                             "a repeated call returns the first creation's time: the experiment's "
                                             "start for days_running")


@tool("create_feature_flag", mutating=True, bound=FLAG_PROVIDER_BOUND)
async def create_feature_flag(args: FlagRequest) -> FlagCreated:
    """Create the experiment's flag, always disabled; calling it again returns the same flag."""
    split = args.traffic_split or {v: 100 / len(args.variants) for v in args.variants}
    try:
        spec = FlagSpec(key=args.flag_key, description=args.description,
                        variants=[{"key": v, "weight": split.get(v, 0)} for v in args.variants],  # type: ignore[misc]
                        targeting=args.targeting, experiment_key=args.experiment_key or args.flag_key)
    except ValidationError as exc:  # a bad key or split: retrying the same request cannot help
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'flag'}: {e['msg']}" for e in exc.errors())
        raise _bad_request(f"create_feature_flag: the flag '{args.flag_key}' cannot be created: {problems}") from None
    async with flag_provider_from_config(args.provider.name, args.provider.settings) as provider:
        flag = await provider.create_flag(spec)
    return FlagCreated(flag_key=flag.key, experiment_id=spec.experiment_key or flag.key,
                       status="enabled" if flag.enabled else "created_disabled", enabled=flag.enabled,
                       created=flag.created, provider=flag.provider, flag=flag,
                       # A retry (or a second approval) finds the flag already there: its start is the
                       # first creation's, or days_running would start again from zero. Only a provider
                       # that records no time gets this call's.
                       created_at=flag.created_at or datetime.now(timezone.utc))


# -- reading results -----------------------------------------------------------------------------


class GuardrailMetric(BaseModel):
    """A guardrail to read with the primary metric. A bare name means a metric that must not rise
    (error rates, refunds, latency); revenue-like guardrails set ``higher_is_better``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    higher_is_better: bool = False
    max_drop: float | None = Field(None, ge=0, description="tolerated relative worsening; default: the check's margin")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class GuardrailResults(ExperimentResults):
    """One guardrail metric's results, with the direction and margin it is judged by."""

    higher_is_better: bool = False
    max_drop: float | None = None


class ExperimentReadout(ExperimentResults):
    """The primary metric's results plus, when asked for, each guardrail metric's: one look."""

    guardrails: list[GuardrailResults] = Field(default_factory=list)


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    experiment_id: str
    metric: str = "checkout_conversion"
    guardrails: list[GuardrailMetric] = Field(default_factory=list, description="guardrail metrics to read too")
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


@tool("get_experiment_results", bound=CONNECTOR_BOUND)
async def get_experiment_results(args: ResultsQuery) -> ExperimentReadout:
    """Users and conversions per variant of a running experiment (primary metric and guardrails)."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        primary = await conn.experiment_results(args.experiment_id, args.metric)
        guardrails = [GuardrailResults(**(await conn.experiment_results(args.experiment_id, g.name)).model_dump(),
                                       higher_is_better=g.higher_is_better, max_drop=g.max_drop)
                      for g in args.guardrails]
    return ExperimentReadout(**primary.model_dump(), guardrails=guardrails)


def _bad_request(message: str) -> ApplicationError:
    """A permanent failure: retrying the same arguments cannot help, the message says what to fix."""
    return ApplicationError(message, type=ERR_BAD_REQUEST, non_retryable=True)


def _stats_metric(results: ExperimentResults, *, higher_is_better: bool = True) -> stats.Metric:
    """The control (first) and treatment (second) arms of ``results`` as a statistics metric."""
    if len(results.variants) < 2:
        raise _bad_request(f"experiment '{results.experiment_key}' has {len(results.variants)} variant(s) with data "
                         f"for '{results.metric}'; a comparison needs control and treatment")
    control, treatment = results.variants[0], results.variants[1]
    if results.metric_kind == "conversion":
        return stats.ConversionMetric(
            name=results.metric, higher_is_better=higher_is_better,
            control=stats.ProportionArm(users=control.users, conversions=control.conversions),
            treatment=stats.ProportionArm(users=treatment.users, conversions=treatment.conversions))
    for v in (control, treatment):
        if v.value_mean is None or v.value_sd is None:
            raise _bad_request(f"continuous metric '{results.metric}' of '{results.experiment_key}': variant "
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
        raise _bad_request(f"traffic split {split} has no weight for variant(s) {', '.join(missing)} of "
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


@tool("calculate_significance")
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
        raise _bad_request(f"calculate_significance: {exc}") from None
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


@tool("check_srm")
async def check_srm(args: SrmQuery) -> stats.SrmResult:
    """Sample-ratio mismatch gate: a broken split invalidates every other number."""
    if args.results is not None:
        observed = [v.users for v in args.results.variants]
        weights = _weights(args.expected_weights, args.results)
    else:
        observed = args.observed or []
        if isinstance(args.expected_weights, dict):
            raise _bad_request("expected_weights as {variant: weight} needs results; with observed give a list")
        weights = args.expected_weights
    try:
        return stats.check_srm(observed, weights, threshold=args.threshold)
    except StatsInputError as exc:
        raise _bad_request(f"check_srm: {exc}") from None


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


@tool("check_guardrails")
async def check_guardrails(args: GuardrailQuery) -> GuardrailReport:
    """Non-inferiority of each guardrail metric within the margin."""
    guardrails = [stats.Guardrail(metric=m, margin=args.margin) for m in args.metrics]
    if args.results is not None:
        guardrails += _guardrails(args.results, args.margin)
    tuning = SEQUENTIAL_TUNING if args.method == "sequential" else None
    try:
        results = [stats.check_guardrail(g, alpha=args.alpha, sequential_tuning=tuning) for g in guardrails]
    except StatsInputError as exc:
        raise _bad_request(f"check_guardrails: {exc}") from None
    return GuardrailReport(passed=all(r.status != "regressed" for r in results), results=results,
                           messages=[r.message for r in results])


# -- learning ------------------------------------------------------------------------------------


class LearningDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    body: str = Field(description="markdown")
    verdict: SignificanceReadout | None = Field(
        None, description="calculate_significance's output: appended as a Result section, numbers as computed")
    directory: str = Field(".iterloop/learnings", description="where documents are written on the worker")


class LearningDocWritten(BaseModel):
    path: str
    bytes: int
    # The document itself travels with the result, so a tool node can `publish:` it as a run
    # artifact (inspect, report, the dashboard) even when the worker's file is out of reach.
    title: str
    markdown: str


@tool("write_learning_doc", mutating=True)
async def write_learning_doc(args: LearningDoc) -> LearningDocWritten:
    """Write the stakeholder learning document as a Markdown file (idempotent per title)."""
    slug = "".join(c if c.isalnum() else "-" for c in args.title.lower()).strip("-")[:80] or "learning"
    path = Path(args.directory) / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {args.title}\n\n{args.body.strip()}\n"
    if args.verdict is not None:
        text += "\n" + _result_section(args.verdict)
    path.write_text(text, encoding="utf-8")
    return LearningDocWritten(path=str(path), bytes=len(text.encode("utf-8")), title=args.title, markdown=text)


def _result_section(v: SignificanceReadout) -> str:
    """The verdict's numbers in Markdown, exactly as the statistics computed them."""
    lines = ["## Result (computed by calculate_significance)", "", f"- **{v.headline}**", f"- Why: {v.reason}",
             f"- Sample ratio: {v.srm.message}"]
    lines += [f"- Guardrail: {g.message}" for g in v.guardrails]
    if v.days_running is not None:
        lines.append(f"- Days running: {v.days_running:.2f}")
    lines += [f"- Warning: {w}" for w in v.warnings]
    return "\n".join(lines) + "\n"
