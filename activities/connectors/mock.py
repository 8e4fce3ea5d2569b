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
from statistics import NormalDist
from typing import Any

from pydantic import Field

from activities.connectors.base import BaseConnector
from activities.connectors.checked import ArmContext, checked_arm
from activities.connectors.history import select_history
from activities.connectors.models import (
    ExperimentResults,
    FunnelData,
    Granularity,
    HistoricalExperiment,
    MetricSeries,
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
        variants: list[str] = Field(["control", "treatment"], min_length=2, max_length=8,
                                    description="arms of generated results: the first gets the baseline, the "
                                                "others the lift (the second half of it, …); 2 to 8 arms")

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
                                     segment=canonical, source=self.name)
        num, den = (self.data.metrics[spec[k]]["column"] for k in ("numerator", "denominator"))
        return series_from_daily(metric, self._daily(rows, num), denominators=self._daily(rows, den),
                                 granularity=granularity, segment=canonical, source=self.name)

    async def experiment_results(self, experiment_key: str, metric: str, *,
                                 cap_percentile: float | None = None) -> ExperimentResults:
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
                                                        tzinfo=timezone.utc), cap_percentile=cap_percentile)

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
                      as_of: datetime, cap_percentile: float | None = None) -> ExperimentResults:
    """Results for an experiment the loop launched, a pure function of its key.

    Arms of ~20,000 users split evenly (no sample-ratio mismatch); the first name in ``variants``
    gets the baseline, the first treatment the metric's lift, a second treatment half of it, a
    third a quarter (so a multi-arm test has one clear winner). Each metric's control value and
    lift vary a little with the key, within the bounds in the dataset's ``experiment_model`` (for
    checkout_conversion: control 29.7–30.3 %, lift +9–11 %, always significant; guardrails flat).
    Every variant carries its revenue per user; every metric but a ratio carries CUPED pre-period
    statistics (the same metric before the start: no treatment effect, correlation
    ``pre_correlation`` with the in-experiment value); ``aov`` is a ratio metric (revenue and
    orders per unit, for the delta method); a continuous metric is winsorised at
    ``cap_percentile`` of all units when asked (`capped_at`).
    """
    ctx = ArmContext("mock", key, metric)
    k = len(variants)
    draw = _draws(key, "arms")
    total = k * model["users_per_arm"] + round((2 * draw(0) - 1) * model["users_jitter"] * k / 2)
    treated = {arm: round(total * (1 / k + (2 * draw(i) - 1) * model["split_jitter"]))
               for i, arm in enumerate(variants[1:], start=1)}
    users = {variants[0]: total - sum(treated.values()), **treated}

    def lifted(name: str, control: float) -> dict[str, float]:
        spec, d = model["metrics"][name], _draws(key, name)
        out = {variants[0]: control}
        for i, arm in enumerate(variants[1:], start=1):
            out[arm] = control * (1 + spec["lift"] * 0.5 ** (i - 1) + (2 * d(i) - 1) * spec["lift_jitter"])
        return out

    def arm_values(name: str) -> dict[str, float]:
        spec, d = model["metrics"][name], _draws(key, name)
        scale = 1 if spec["kind"] == "conversion" else spec["control"]
        return lifted(name, spec["control"] + (2 * d(0) - 1) * spec["jitter"] * scale)

    primary = arm_values(model["primary_metric"])
    aov, aov_sd = model["aov"], model["aov_sd"]
    revenue = {}
    for arm, p in primary.items():
        mean = p * aov
        revenue[arm] = (round(mean, 2), round(math.sqrt(p * (aov_sd**2 + aov**2) - mean**2), 2))

    spec = model["metrics"][metric]
    fields: dict[str, dict[str, float | None]] = {arm: {"revenue_mean": revenue[arm][0],
                                                        "revenue_sd": revenue[arm][1]} for arm in variants}
    conversions: dict[str, int] = {}
    if spec["kind"] == "conversion":
        rates = arm_values(metric)
        conversions = {arm: round(users[arm] * rates[arm]) for arm in variants}
        moments = {arm: (conversions[arm] / users[arm], math.sqrt(rates[arm] * (1 - rates[arm]))) for arm in variants}
    elif spec["kind"] == "ratio":  # revenue / orders per unit; orders: 0 or 1 per unit
        values = lifted(metric, aov)
        for arm in variants:
            p, a = primary[arm], values[arm]
            a_sd = aov_sd * a / aov
            num_mean = p * a
            conversions[arm] = round(users[arm] * p)
            fields[arm].update(numerator_mean=round(num_mean, 4),
                               numerator_sd=round(math.sqrt(p * (a_sd**2 + a**2) - num_mean**2), 4),
                               denominator_mean=round(p, 6), denominator_sd=round(math.sqrt(p * (1 - p)), 6),
                               numerator_denominator_covariance=round(a * p * (1 - p), 4))
        moments = {}
    else:
        if spec.get("derived_from"):  # revenue per user: non-buyers spend 0, buyers a lognormal order value
            shapes = {arm: (1 - primary[arm], aov, aov_sd) for arm in variants}
        else:
            means = arm_values(metric)
            shapes = {arm: (0.0, means[arm], spec["sd"] * means[arm] / spec["control"]) for arm in variants}
        cap = None if cap_percentile is None else _pooled_quantile(shapes, users, cap_percentile)
        moments = {arm: _capped_moments(*shapes[arm], cap) for arm in variants}
        conversions = dict(users)
        for arm in variants:
            fields[arm].update(value_mean=round(moments[arm][0], 4), value_sd=round(moments[arm][1], 4),
                               capped_at=None if cap is None else round(cap, 4))
    if moments and "pre_correlation" in spec:
        _add_pre_period(fields, moments, users, variants, spec["pre_correlation"], _draws(key, f"{metric}|pre"))
    results = [checked_arm(ctx, arm, users[arm], conversions[arm], **fields[arm]) for arm in variants]
    return ExperimentResults(experiment_key=key, metric=metric, metric_kind=spec["kind"], variants=results,
                             as_of=as_of)


def _add_pre_period(fields: dict[str, dict[str, float | None]], moments: Mapping[str, tuple[float, float]],
                    users: Mapping[str, int], variants: list[str], rho: float, draw: Callable[[int], float]) -> None:
    """CUPED covariates: before the start every arm is the control (randomisation), so the
    pre-period mean is the control's plus sampling noise, its sd the control's, and its covariance
    with the in-experiment value ``rho`` × both sds."""
    mean0, sd0 = moments[variants[0]]
    for i, arm in enumerate(variants):
        z = NormalDist().inv_cdf(min(max(draw(i), 1e-6), 1 - 1e-6))
        fields[arm].update(pre_mean=round(mean0 + z * sd0 / math.sqrt(max(users[arm], 1)), 6),
                           pre_sd=round(sd0, 6), pre_covariance=round(rho * sd0 * moments[arm][1], 6))


def _lognormal(mean: float, sd: float) -> tuple[float, float]:
    """The (mu, sigma) of a lognormal with this mean and sd."""
    sigma2 = math.log(1 + (sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def _cdf(shape: tuple[float, float, float], c: float) -> float:
    """P(Y <= c) for Y = 0 with probability ``zero``, else lognormal(mean, sd)."""
    zero, mean, sd = shape
    if c <= 0:
        return zero if c == 0 else 0.0
    mu, sigma = _lognormal(mean, sd)
    return zero + (1 - zero) * NormalDist().cdf((math.log(c) - mu) / sigma)


def _pooled_quantile(shapes: Mapping[str, tuple[float, float, float]], users: Mapping[str, int], q: float) -> float:
    """The ``q`` quantile of all units pooled over the arms (bisection on the mixture's CDF)."""
    total = sum(users.values())

    def pooled(c: float) -> float:
        return sum(users[a] / total * _cdf(shapes[a], c) for a in shapes)

    if pooled(0.0) >= q:
        return 0.0
    lo, hi = 0.0, max(m for _, m, _ in shapes.values())
    while pooled(hi) < q:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if pooled(mid) < q else (lo, mid)
    return hi


def _capped_moments(zero: float, mean: float, sd: float, cap: float | None) -> tuple[float, float]:
    """Mean and sd of min(Y, cap) for the zero-inflated lognormal Y (no cap: Y's own)."""
    if cap is None:
        m1 = (1 - zero) * mean
        m2 = (1 - zero) * (sd**2 + mean**2)
        return m1, math.sqrt(max(m2 - m1**2, 0.0))
    if cap <= 0:
        return 0.0, 0.0
    mu, sigma = _lognormal(mean, sd)
    nd, t = NormalDist(), math.log(cap)
    below1 = math.exp(mu + sigma**2 / 2) * nd.cdf((t - mu - sigma**2) / sigma)       # E[V; V < cap]
    below2 = math.exp(2 * mu + 2 * sigma**2) * nd.cdf((t - mu - 2 * sigma**2) / sigma)  # E[V^2; V < cap]
    above = 1 - nd.cdf((t - mu) / sigma)
    m1 = (1 - zero) * (below1 + cap * above)
    m2 = (1 - zero) * (below2 + cap**2 * above)
    return m1, math.sqrt(max(m2 - m1**2, 0.0))


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
