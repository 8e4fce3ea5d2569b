"""Experiment data tools: what the connector knows about past and running experiments.

`get_historical_experiments` gives the Planner the learning history (so a plan does not repeat a
failed test); `get_experiment_results` reads a running experiment's arms, for the primary metric
and any guardrail metrics at one look. Its output, `ExperimentReadout`, is what the statistics
tools (`activities.tools.statistics`) judge.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.connectors.models import ExperimentResults, HistoricalExperiment
from activities.connectors.registry import connector_from_config
from activities.tools.choices import ConnectorChoice
from activities.tools.spec import ToolSet

TOOLS = ToolSet()


class HistoryQuery(BaseModel):
    limit: int = Field(20, ge=1, le=200)
    metric: str | None = None
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


class HistoryList(BaseModel):
    experiments: list[HistoricalExperiment]


@TOOLS.tool("get_historical_experiments")
async def get_historical_experiments(args: HistoryQuery) -> HistoryList:
    """Past experiments (hypothesis, lift, verdict) so a plan does not repeat a failed test."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        return HistoryList(experiments=await conn.historical_experiments(args.limit, args.metric))


class GuardrailMetric(BaseModel):
    """A guardrail to read with the primary metric. A bare name means a metric that must not rise
    (error rates, refunds, latency); revenue-like guardrails set ``higher_is_better``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    higher_is_better: bool = False
    max_drop: float | None = Field(None, ge=0, description="tolerated relative worsening; default: the check's margin")
    cap_percentile: float | None = Field(None, gt=0.5, lt=1, description="winsorise this metric; default: the query's")

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
    cap_percentile: float | None = Field(
        None, gt=0.5, lt=1, description="winsorise continuous metrics at this percentile of all units (e.g. 0.99); "
                                        "the connector reports the cap as capped_at")
    connector: ConnectorChoice = Field(default_factory=ConnectorChoice)


@TOOLS.tool("get_experiment_results")
async def get_experiment_results(args: ResultsQuery) -> ExperimentReadout:
    """Every arm of a running experiment, by name (primary metric and guardrails): users and
    conversions, and where the source has them continuous means, CUPED pre-period statistics, a
    ratio metric's parts and winsorised means (``cap_percentile``)."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        primary = await conn.experiment_results(args.experiment_id, args.metric, **_capping(args.cap_percentile))
        guardrails = []
        for g in args.guardrails:
            cap = g.cap_percentile if g.cap_percentile is not None else args.cap_percentile
            read = await conn.experiment_results(args.experiment_id, g.name, **_capping(cap))
            guardrails.append(GuardrailResults(**read.model_dump(), higher_is_better=g.higher_is_better,
                                               max_drop=g.max_drop))
    return ExperimentReadout(**primary.model_dump(), guardrails=guardrails)


def _capping(cap_percentile: float | None) -> dict[str, float]:
    """The keyword only when capping is asked for: a connector written before it (docs/connectors.md,
    section 5) keeps working as long as nobody asks it to cap."""
    return {} if cap_percentile is None else {"cap_percentile": cap_percentile}
