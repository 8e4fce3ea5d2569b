"""Funnel tools: what the Analyst reads from the connector to find where conversion dropped.

`get_funnel_data` returns a funnel over a window; `detect_anomalies` compares a step-to-step
conversion in the recent window with the window before, per segment, and reports the changes a
two-proportion test calls significant (numbers from the statistics, never from a model).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, Field

from activities import stats
from activities.connectors.models import FunnelData
from activities.connectors.registry import connector_from_config
from activities.tools.choices import ConnectorChoice
from activities.tools.spec import ToolSet

TOOLS = ToolSet()


def _yesterday() -> date:
    """The last complete day (UTC): today's numbers are still coming in."""
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def _window(end: date | None, days: int) -> tuple[date, date]:
    last = end or _yesterday()
    return last - timedelta(days=days - 1), last


class FunnelQuery(BaseModel):
    funnel: str = Field("checkout", description="funnel name, e.g. checkout")
    lookback_days: int = Field(28, ge=1, le=366)
    end: date | None = Field(None, description="last day (default: yesterday, UTC)")
    segment: dict[str, str] | None = Field(None, description="e.g. {\"platform\": \"ios\"}")
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


@TOOLS.tool("get_funnel_data")
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


@TOOLS.tool("detect_anomalies")
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
