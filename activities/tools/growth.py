"""The growth-experimentation tools (Iterstack's deterministic steps).

Numbers come from here, never from a model: agents call these through `tools:` and tool nodes
through `call:`. Each tool reads its connector / flag provider from its arguments (name and
settings, no secrets: credentials are read from the worker's environment by the connector), so a
run's configuration is visible in its history and every call can be replayed by hand.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities import stats
from activities.connectors.base import ExperimentResults, FunnelData, HistoricalExperiment
from activities.connectors.registry import connector_from_config
from activities.flags.base import Flag, FlagSpec
from activities.flags.registry import flag_provider_from_config
from activities.tools.registry import tool


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


@tool("get_funnel_data")
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
    metric: str
    baseline_rate: float
    current_rate: float
    relative_change: float
    p_value: float
    severity: Literal["low", "medium", "high", "critical"]


class AnomalyReport(BaseModel):
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


@tool("detect_anomalies")
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
                    segment=f"{args.dimension}={value}", metric=metric,
                    baseline_rate=round(control.conversions / control.users, 6),
                    current_rate=round(current.conversions / current.users, 6),
                    relative_change=round(test.relative_lift or 0.0, 6), p_value=test.p_value,
                    severity=_severity(test.relative_lift or 0.0)))
    found.sort(key=lambda a: (a.relative_change, a.segment))  # biggest drop first
    top = found[0] if found else None
    summary = (f"{len(found)} segment(s) changed significantly; worst: {top.segment} {top.metric} "
               f"{top.baseline_rate:.2%} -> {top.current_rate:.2%} ({top.relative_change:+.1%})"
               if top else f"no significant change in {metric}")
    return AnomalyReport(anomalies=found, top=top, summary=summary)


class HistoryQuery(BaseModel):
    limit: int = Field(20, ge=1, le=200)
    metric: str | None = None
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


class HistoryList(BaseModel):
    experiments: list[HistoricalExperiment]


@tool("get_historical_experiments")
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


@tool("create_feature_flag", mutating=True)
async def create_feature_flag(args: FlagRequest) -> FlagCreated:
    """Create the experiment's flag, always disabled; calling it again returns the same flag."""
    split = args.traffic_split or {v: 100 / len(args.variants) for v in args.variants}
    spec = FlagSpec(key=args.flag_key, description=args.description,
                    variants=[{"key": v, "weight": split.get(v, 0)} for v in args.variants],  # type: ignore[misc]
                    targeting=args.targeting, experiment_key=args.experiment_key or args.flag_key)
    async with flag_provider_from_config(args.provider.name, args.provider.settings) as provider:
        flag = await provider.create_flag(spec)
    return FlagCreated(flag_key=flag.key, experiment_id=spec.experiment_key or flag.key,
                       status="enabled" if flag.enabled else "created_disabled", enabled=flag.enabled,
                       created=flag.created, provider=flag.provider, flag=flag)


# -- reading results -----------------------------------------------------------------------------


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    experiment_id: str
    metric: str = "checkout_conversion"
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


@tool("get_experiment_results")
async def get_experiment_results(args: ResultsQuery) -> ExperimentResults:
    """Users and conversions per variant of a running experiment."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        return await conn.experiment_results(args.experiment_id, args.metric)


class SignificanceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    results: ExperimentResults
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["fixed_horizon", "sequential"] = "sequential"
    expected_split: list[float] | None = None
    days_running: float | None = None
    planned_n_per_arm: int | None = None


@tool("calculate_significance")
async def calculate_significance(args: SignificanceQuery) -> stats.Verdict:
    """The verdict on the primary metric: SRM gate, sample guards, test, and the numbers behind it."""
    control, treatment = args.results.variants[0], args.results.variants[1]
    metric = stats.ConversionMetric(
        name=args.results.metric,
        control=stats.ProportionArm(users=control.users, conversions=control.conversions),
        treatment=stats.ProportionArm(users=treatment.users, conversions=treatment.conversions))
    snapshot = stats.ExperimentSnapshot(primary=metric, expected_split=args.expected_split,
                                        days_running=args.days_running)
    settings = stats.DecisionSettings(alpha=args.alpha, method=args.method, planned_n_per_arm=args.planned_n_per_arm)
    return stats.decide(snapshot, settings)


class SrmQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    observed: list[int] = Field(min_length=2, description="units assigned to each variant")
    expected_weights: list[float] | None = None
    threshold: float = Field(0.001, gt=0, lt=1)


@tool("check_srm")
async def check_srm(args: SrmQuery) -> stats.SrmResult:
    """Sample-ratio mismatch gate: a broken split invalidates every other number."""
    return stats.check_srm(args.observed, args.expected_weights, threshold=args.threshold)


class GuardrailQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metrics: list[stats.ConversionMetric] = Field(description="guardrail metrics with control and treatment arms")
    margin: float = Field(0.02, ge=0, description="largest tolerated relative degradation")
    alpha: float = Field(0.05, gt=0, lt=1)


class GuardrailReport(BaseModel):
    passed: bool
    results: list[stats.GuardrailResult]


@tool("check_guardrails")
async def check_guardrails(args: GuardrailQuery) -> GuardrailReport:
    """Non-inferiority of each guardrail metric within the margin."""
    results = [stats.check_guardrail(stats.Guardrail(metric=m, margin=args.margin), alpha=args.alpha)
               for m in args.metrics]
    return GuardrailReport(passed=all(r.status != "regressed" for r in results), results=results)


# -- learning ------------------------------------------------------------------------------------


class LearningDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    body: str = Field(description="markdown")
    directory: str = Field(".iterloop/learnings", description="where documents are written on the worker")


class LearningDocWritten(BaseModel):
    path: str
    bytes: int


@tool("write_learning_doc", mutating=True)
async def write_learning_doc(args: LearningDoc) -> LearningDocWritten:
    """Write the stakeholder learning document as a Markdown file (idempotent per title)."""
    slug = "".join(c if c.isalnum() else "-" for c in args.title.lower()).strip("-")[:80] or "learning"
    path = Path(args.directory) / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {args.title}\n\n{args.body.strip()}\n"
    path.write_text(text, encoding="utf-8")
    return LearningDocWritten(path=str(path), bytes=len(text.encode("utf-8")))
