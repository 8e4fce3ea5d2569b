"""The connector interface: what the growth loop asks of an analytics source.

Every connector answers four questions with the same models (`activities.connectors.models`),
whatever the source:

- `funnel(name, start, end, segment)` → `FunnelData`: users at each step, conversions.
- `metric_series(metric, start, end, segment, granularity)` → `MetricSeries`: one value per
  day, week (starting Monday) or month. Week and month values are sums of daily values (for a
  user count: user-days); a ratio metric is the ratio of those sums.
- `experiment_results(experiment_key, metric, cap_percentile=None)` → `ExperimentResults`: users
  and conversions per variant, every arm the source has, **in the source's order** (position means
  nothing: the statistics tools find the control by name). Sources with per-unit data add
  continuous means/sds, CUPED pre-period statistics, ratio-metric parts and, with
  ``cap_percentile``, winsorised means (`capped_at`). An experiment without data yet has no
  variants (not an error: it just launched). Every number is checked finite on the way in
  (`activities.connectors.checked`).
- `historical_experiments(limit, metric)` → finished experiments, most recent first.

Segments are `{dimension: value}` filters such as `{"platform": "ios"}`; dates are inclusive.

Failures are `ConnectorError`s (`activities.errors`), which *are* Temporal `ApplicationError`s,
so an activity can let them propagate: wrong credentials and unknown names are non-retryable
(retrying cannot help and the message says what to fix), rate limits are retried after the
server's own delay (`next_retry_delay`), outages are retried with the activity's backoff.

Connectors read credentials from the worker's environment (never from settings that travel
through workflow history), through the ``env`` mapping they are given (`ExternalService`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from typing import ClassVar

from pydantic import Field

from activities.connectors.history import load_history_file, select_history
from activities.connectors.models import ExperimentResults, FunnelData, Granularity, HistoricalExperiment, MetricSeries
from activities.errors import ActivityError, ConnectorConfigError
from activities.external_service import ExternalService, ServiceSettings


class BaseConnector(ExternalService, ABC):
    """An analytics source. Subclasses set ``name``, a pydantic ``Settings`` model, and implement
    `funnel`, `metric_series` and `experiment_results`.

    ``settings`` come from the workflow's configuration (no secrets: they are in history);
    ``env`` is the worker's environment (default ``os.environ``), where credentials live.
    """

    name: ClassVar[str] = "connector"
    service_kind: ClassVar[str] = "connector"
    config_error: ClassVar[type[ActivityError]] = ConnectorConfigError
    detail_key: ClassVar[str] = "connector"

    class Settings(ServiceSettings):
        history_file: str | None = Field(
            None, description="JSON file with a list of HistoricalExperiment objects (the learning history)")

    @abstractmethod
    async def funnel(self, name: str, start: date, end: date,
                     segment: dict[str, str] | None = None) -> FunnelData: ...

    @abstractmethod
    async def metric_series(self, metric: str, start: date, end: date, segment: dict[str, str] | None = None,
                            granularity: Granularity = "day") -> MetricSeries: ...

    @abstractmethod
    async def experiment_results(self, experiment_key: str, metric: str, *,
                                 cap_percentile: float | None = None) -> ExperimentResults:
        """``cap_percentile`` (e.g. 0.99) winsorises a continuous metric at that percentile of all
        units (pooled over the arms, as GrowthBook caps); sources that only count conversions,
        where capping a 0/1 value changes nothing, ignore it."""

    async def historical_experiments(self, limit: int = 20, metric: str | None = None) -> list[HistoricalExperiment]:
        """Finished experiments, most recent first. Analytics tools do not store verdicts, so by
        default they come from the ``history_file`` setting (none: an empty history)."""
        path = getattr(self.settings, "history_file", None)
        if not path:
            return []
        return select_history(load_history_file(path), limit=limit, metric=metric)
