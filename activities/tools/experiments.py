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


@TOOLS.tool("get_experiment_results")
async def get_experiment_results(args: ResultsQuery) -> ExperimentReadout:
    """Users and conversions per variant of a running experiment (primary metric and guardrails)."""
    async with connector_from_config(args.connector.name, args.connector.settings) as conn:
        primary = await conn.experiment_results(args.experiment_id, args.metric)
        guardrails = [GuardrailResults(**(await conn.experiment_results(args.experiment_id, g.name)).model_dump(),
                                       higher_is_better=g.higher_is_better, max_drop=g.max_drop)
                      for g in args.guardrails]
    return ExperimentReadout(**primary.model_dump(), guardrails=guardrails)
