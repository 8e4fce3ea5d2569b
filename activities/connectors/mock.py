"""The mock connector: a deterministic e-commerce dataset, no service and no credentials.

It answers from `data/mock_dataset.json` (its story is at the top of that file and in
docs/connectors.md): 56 days of a shop's checkout funnel per platform and country, in which mobile
checkout conversion drops by 25 % in the last ten days, six finished experiments, and results for
any experiment key the loop launches, generated from the key.

Dates: by default the dataset is shifted so that its last day is yesterday (UTC), so "the last
28 days" works whenever the demo runs. Setting ``end_date`` pins the last day instead (tests pin
it to the file's own calendar, 2025-04-27). Numbers never change, only their dates.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from activities.connectors.base import BaseConnector
from activities.connectors.history import select_history
from activities.connectors.models import (
    ExperimentResults,
    FunnelData,
    Granularity,
    HistoricalExperiment,
    MetricSeries,
    VariantResult,
    variant_result,
)
from activities.connectors.series import check_query, series_from_daily
from activities.errors import InvalidQueryError, UnknownFunnelError, UnknownMetricError

DATASET = Path(__file__).with_name("data") / "mock_dataset.json"


class MockConnector(BaseConnector):
    name = "mock"

    class Settings(BaseConnector.Settings):
        dataset_path: str | None = Field(None, description="another dataset file with the same layout")
        end_date: date | None = Field(
            None, description="the dataset's last day; default: yesterday (UTC). 2025-04-27 = no shift")
        variants: list[str] = Field(["control", "treatment"], min_length=2, max_length=2,
                                    description="names of the control and treatment arms of generated results")

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        self.data = load_dataset(self.settings.dataset_path or str(DATASET))
        last = self.settings.end_date or (datetime.now(timezone.utc).date() - timedelta(days=1))
        self.shift = last - self.data.end  # added to every date in the dataset

    # -- the interface -------------------------------------------------------------------------

    async def funnel(self, name: str, start: date, end: date, segment: dict[str, str] | None = None) -> FunnelData:
        check_query(self.name, start, end)
        steps = self.data.funnels.get(name)
        if steps is None:
            raise UnknownFunnelError(self.name, name, self.data.funnels)
        match, canonical = self._segment_filter(segment)
        totals = dict.fromkeys(steps, 0)
        for row in self._rows(start, end, match):
            for step in steps:
                totals[step] += row[self.data.col[step]]
        return FunnelData.from_counts(name, totals.items(), start=start, end=end, segment=canonical)

    async def metric_series(self, metric: str, start: date, end: date, segment: dict[str, str] | None = None,
                            granularity: Granularity = "day") -> MetricSeries:
        check_query(self.name, start, end, granularity)
        spec = self.data.metrics.get(metric)
        if spec is None:
            raise UnknownMetricError(self.name, metric, self.data.metrics)
        match, canonical = self._segment_filter(segment)
        rows = list(self._rows(start, end, match))
        if "column" in spec:
            return series_from_daily(metric, self._daily(rows, spec["column"]), granularity=granularity,
                                     segment=canonical)
        num, den = (self.data.metrics[spec[k]]["column"] for k in ("numerator", "denominator"))
        return series_from_daily(metric, self._daily(rows, num), denominators=self._daily(rows, den),
                                 granularity=granularity, segment=canonical)

    async def experiment_results(self, experiment_key: str, metric: str) -> ExperimentResults:
        recorded = self.data.recorded_results.get(experiment_key)
        if recorded is not None:  # a finished experiment from the history
            if metric != recorded["metric"]:
                raise UnknownMetricError(f"{self.name} experiment '{experiment_key}'", metric, [recorded["metric"]])
            as_of = datetime.fromisoformat(recorded["as_of"].replace("Z", "+00:00")) + self.shift
            return ExperimentResults(experiment_key=experiment_key, metric=metric, as_of=as_of,
                                     metric_kind=recorded["metric_kind"],
                                     variants=[variant_result(**v) for v in recorded["variants"]])
        model = self.data.experiment_model
        if metric not in model["metrics"]:
            raise UnknownMetricError(f"{self.name} experiments", metric, model["metrics"])
        return generated_results(experiment_key, metric, model, self.settings.variants,
                                 as_of=datetime.combine(self.data.end + self.shift + timedelta(days=1), time(0),
                                                        tzinfo=timezone.utc))

    async def historical_experiments(self, limit: int = 20, metric: str | None = None) -> list[HistoricalExperiment]:
        if self.settings.history_file:
            return await super().historical_experiments(limit, metric)
        shifted = [h.model_copy(update={"started": h.started + self.shift, "ended": h.ended + self.shift})
                   for h in self.data.history]
        return select_history(shifted, limit=limit, metric=metric)

    # -- internals -----------------------------------------------------------------------------

    def _rows(self, start: date, end: date, match: Callable[[tuple], bool]):
        lo, hi = (start - self.shift).isoformat(), (end - self.shift).isoformat()
        i_date = self.data.col["date"]
        return (r for r in self.data.rows if lo <= r[i_date] <= hi and match(r))

    def _daily(self, rows: list[tuple], column: str) -> dict[date, float]:
        i_date, i_col = self.data.col["date"], self.data.col[column]
        out: dict[date, float] = {}
        for r in rows:
            day = date.fromisoformat(r[i_date]) + self.shift
            out[day] = out.get(day, 0.0) + r[i_col]
        return out

    def _segment_filter(self, segment: Mapping[str, str] | None) -> tuple[Callable[[tuple], bool], dict[str, str]]:
        """A row predicate for ``segment`` and the segment with canonical values (`iOS` → `ios`)."""
        allowed: dict[int, set[str]] = {}
        canonical: dict[str, str] = {}
        for key, value in sorted((segment or {}).items()):
            if key in self.data.dimensions:
                column, values = key, {v: [v] for v in self.data.dimensions[key]}
            elif key in self.data.derived:
                column, values = self.data.derived[key]["from"], self.data.derived[key]["values"]
            else:
                raise InvalidQueryError(
                    f"{self.name}: unknown segment dimension '{key}'; use one of "
                    f"{', '.join(sorted([*self.data.dimensions, *self.data.derived]))}")
            chosen = next((v for v in values if v.lower() == str(value).lower()), None)
            if chosen is None:
                raise InvalidQueryError(f"{self.name}: unknown {key} '{value}'; known values: {', '.join(values)}")
            canonical[key] = chosen
            i = self.data.col[column]
            allowed[i] = allowed.get(i, set(values[chosen])) & set(values[chosen])
        return (lambda r: all(r[i] in vs for i, vs in allowed.items())), canonical


def generated_results(key: str, metric: str, model: Mapping[str, Any], variants: list[str], *,
                      as_of: datetime) -> ExperimentResults:
    """Results for an experiment the loop launched, a pure function of its key.

    Arms of ~20,000 users split evenly (no sample-ratio mismatch); each metric's control value
    and lift vary a little with the key, within the bounds in the dataset's ``experiment_model``
    (for checkout_conversion: control 29.7–30.3 %, lift +9–11 %, always significant; guardrails
    flat). Every variant carries its revenue per user.
    """
    draw = _draws(key, "arms")
    total = 2 * model["users_per_arm"] + round((2 * draw(0) - 1) * model["users_jitter"])
    n_t = round(total * (0.5 + (2 * draw(1) - 1) * model["split_jitter"]))
    users = {variants[0]: total - n_t, variants[1]: n_t}

    def arm_values(name: str) -> dict[str, float]:
        spec, d = model["metrics"][name], _draws(key, name)
        control = spec["control"] + (2 * d(0) - 1) * spec["jitter"] * (1 if spec["kind"] == "conversion"
                                                                         else spec["control"])
        lift = spec["lift"] + (2 * d(1) - 1) * spec["lift_jitter"]
        return {variants[0]: control, variants[1]: control * (1 + lift)}

    primary = arm_values(model["primary_metric"])
    aov, aov_sd = model["aov"], model["aov_sd"]
    revenue = {}
    for arm, p in primary.items():
        mean = p * aov
        revenue[arm] = (round(mean, 2), round(math.sqrt(p * (aov_sd**2 + aov**2) - mean**2), 2))

    spec = model["metrics"][metric]
    results: list[VariantResult] = []
    if spec["kind"] == "conversion":
        rates = arm_values(metric)
        for arm in variants:
            results.append(variant_result(arm, users[arm], round(users[arm] * rates[arm]),
                                          revenue_mean=revenue[arm][0], revenue_sd=revenue[arm][1]))
    else:
        if spec.get("derived_from"):  # revenue per user
            means = {arm: revenue[arm][0] for arm in variants}
            sds = {arm: revenue[arm][1] for arm in variants}
        else:
            means = arm_values(metric)
            sds = dict.fromkeys(variants, spec["sd"])
        for arm in variants:
            results.append(variant_result(arm, users[arm], users[arm], revenue_mean=revenue[arm][0],
                                          revenue_sd=revenue[arm][1], value_mean=round(means[arm], 4),
                                          value_sd=round(sds[arm], 4)))
    return ExperimentResults(experiment_key=key, metric=metric, metric_kind=spec["kind"], variants=results,
                             as_of=as_of)


def _draws(key: str, salt: str) -> Callable[[int], float]:
    """Uniform numbers in [0, 1) that depend only on ``key`` and ``salt`` (sha256, not `hash()`,
    which changes between processes)."""
    digest = hashlib.sha256(f"{key}|{salt}".encode()).digest()
    return lambda i: int.from_bytes(digest[4 * i: 4 * i + 4], "big") / 2**32


class _Dataset:
    """The parsed dataset, indexed once per file and shared (read-only) by all connectors."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.col = {name: i for i, name in enumerate(raw["daily"]["columns"])}
        self.rows: list[tuple] = [tuple(r) for r in raw["daily"]["rows"]]
        self.end = date.fromisoformat(raw["calendar"]["end"])
        self.dimensions: dict[str, list[str]] = raw["dimensions"]
        self.derived: dict[str, Any] = raw.get("derived_dimensions", {})
        self.funnels: dict[str, list[str]] = raw["funnels"]
        self.metrics: dict[str, dict[str, str]] = raw["metrics"]
        self.history = [HistoricalExperiment.model_validate(h) for h in raw["historical_experiments"]]
        self.recorded_results: dict[str, Any] = raw.get("experiment_results", {})
        self.experiment_model: dict[str, Any] = raw["experiment_model"]


@lru_cache(maxsize=4)
def load_dataset(path: str) -> _Dataset:
    return _Dataset(json.loads(Path(path).read_text(encoding="utf-8")))
