"""The Amplitude connector: the Dashboard REST API (https://amplitude.com/api/2) through httpx.

- funnels: `GET /funnels` with one `e` (event JSON) per step, defined in the settings (no saved
  chart needed); users per step are `cumulativeRaw`.
- metrics: `GET /events/segmentation` (`m=uniques`, `totals`, or `sums` of an event property)
  per day; ratio metrics divide two of them.
- experiments: Amplitude Experiment's convention: an exposure event (`$exposure`) and a user
  property `[Experiment] <flag key>` holding the variant. The results are one funnel (exposure →
  the metric's event) with one segment per variant (`s`); a ratio metric converts on its
  numerator's event (checkout_conversion → "Order Completed").

Segments become Amplitude segment filters (`s=[{"prop": "platform", "op": "is", …}]`); map your
keys to Amplitude properties with ``properties`` (built-in: `platform`, `country`, `device_type`…;
custom user properties: `gp:name`).

Credentials: `AMPLITUDE_API_KEY` and `AMPLITUDE_SECRET_KEY` on the worker (basic auth).
`AMPLITUDE_API_URL` (or ``api_url``) points elsewhere, e.g. https://analytics.eu.amplitude.com/api/2.
A 429 (Amplitude limits concurrent and hourly query cost) becomes a retryable `RateLimitedError`
with the server's Retry-After.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.connectors.base import BaseConnector
from activities.connectors.checked import ArmContext, checked_arm, checked_arms
from activities.connectors.http_api import get_json
from activities.connectors.models import ExperimentResults, FunnelData, Granularity, MetricSeries, RatioMetric
from activities.connectors.series import check_query, parse_day, series_from_daily
from activities.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorUnavailableError,
    UnknownFunnelError,
    UnknownMetricError,
)

DEFAULT_API_URL = "https://amplitude.com/api/2"
AUTH_HINT = "Set AMPLITUDE_API_KEY and AMPLITUDE_SECRET_KEY (the project's API key and secret key) on the worker."


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmplitudeStep(_Spec):
    name: str
    event_type: str
    filters: list[dict[str, Any]] = Field(default_factory=list, description="Amplitude event property filters")


class AmplitudeMetric(_Spec):
    event_type: str
    measure: Literal["uniques", "totals", "sums"] = "uniques"
    property: str | None = Field(None, description="with measure 'sums': the event property to sum")
    filters: list[dict[str, Any]] = Field(default_factory=list)


def _default_funnels() -> dict[str, list[AmplitudeStep]]:
    return {"checkout": [AmplitudeStep(name="visit", event_type="session_start"),
                         AmplitudeStep(name="product_view", event_type="Product Viewed"),
                         AmplitudeStep(name="add_to_cart", event_type="Product Added"),
                         AmplitudeStep(name="checkout_start", event_type="Checkout Started"),
                         AmplitudeStep(name="purchase", event_type="Order Completed")]}


def _default_metrics() -> dict[str, AmplitudeMetric | RatioMetric]:
    """Amplitude's session event and the Segment e-commerce spec's event names."""
    return {
        "visits": AmplitudeMetric(event_type="session_start"),
        "product_views": AmplitudeMetric(event_type="Product Viewed"),
        "add_to_carts": AmplitudeMetric(event_type="Product Added"),
        "checkout_starts": AmplitudeMetric(event_type="Checkout Started"),
        "purchases": AmplitudeMetric(event_type="Order Completed"),
        "revenue": AmplitudeMetric(event_type="Order Completed", measure="sums", property="revenue"),
        "refunds": AmplitudeMetric(event_type="Order Refunded", measure="totals"),
        "conversion_rate": RatioMetric(numerator="purchases", denominator="visits"),
        "add_to_cart_rate": RatioMetric(numerator="add_to_carts", denominator="product_views"),
        "checkout_start_rate": RatioMetric(numerator="checkout_starts", denominator="add_to_carts"),
        "checkout_conversion": RatioMetric(numerator="purchases", denominator="checkout_starts"),
        "aov": RatioMetric(numerator="revenue", denominator="purchases"),
        "refund_rate": RatioMetric(numerator="refunds", denominator="purchases"),
    }


class AmplitudeConnector(BaseConnector):
    name = "amplitude"

    class Settings(BaseConnector.Settings):
        api_url: str | None = Field(None, description=f"default: $AMPLITUDE_API_URL, else {DEFAULT_API_URL}")
        funnels: dict[str, list[AmplitudeStep]] = Field(default_factory=_default_funnels)
        metrics: dict[str, AmplitudeMetric | RatioMetric] = Field(default_factory=_default_metrics)
        properties: dict[str, str] = Field(default_factory=dict,
                                           description="segment key → Amplitude property (default: the key)")
        exposure_event: str = "$exposure"
        variant_property: str = Field("gp:[Experiment] {key}", description="{key} is the experiment (flag) key")
        variants: list[str] = Field(["control", "treatment"], min_length=2)
        experiment_lookback_days: int = Field(90, ge=1, le=365)
        timeout_seconds: float = Field(60.0, gt=0)

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        key, secret = self.env_value("AMPLITUDE_API_KEY"), self.env_value("AMPLITUDE_SECRET_KEY")
        if not (key and secret):
            raise ConnectorAuthError(f"amplitude: no credentials on the worker. {AUTH_HINT}")
        self.base_url = self.service_url(self.settings.api_url, "AMPLITUDE_API_URL", DEFAULT_API_URL)
        self._client = self.open_http(self.base_url, auth=(key, secret), timeout_seconds=self.settings.timeout_seconds)

    # -- the interface -------------------------------------------------------------------------

    async def funnel(self, name: str, start: date, end: date, segment: dict[str, str] | None = None) -> FunnelData:
        check_query(self.name, start, end)
        steps = self.settings.funnels.get(name)
        if steps is None:
            raise UnknownFunnelError(self.name, name, self.settings.funnels)
        params = [*(("e", _event(s.event_type, s.filters)) for s in steps), *self._period(start, end),
                  *self._segments([segment])]
        groups = await self._get("/funnels", params)
        counts = _cumulative(groups[0]) if groups else []
        counts = (counts + [0] * len(steps))[: len(steps)]
        return FunnelData.from_counts(name, zip((s.name for s in steps), counts), start=start, end=end,
                                      segment=segment)

    async def metric_series(self, metric: str, start: date, end: date, segment: dict[str, str] | None = None,
                            granularity: Granularity = "day") -> MetricSeries:
        check_query(self.name, start, end, granularity)
        spec = self._metric(metric)
        if isinstance(spec, RatioMetric):
            num = await self._daily(self._metric(spec.numerator), start, end, segment)
            den = await self._daily(self._metric(spec.denominator), start, end, segment)
            return series_from_daily(metric, num, denominators=den, granularity=granularity, segment=segment,
                                     source=self.name)
        return series_from_daily(metric, await self._daily(spec, start, end, segment), granularity=granularity,
                                 segment=segment, source=self.name)

    async def experiment_results(self, experiment_key: str, metric: str, *,
                                 cap_percentile: float | None = None) -> ExperimentResults:
        spec = self._metric(metric)
        if isinstance(spec, RatioMetric):
            spec = self._metric(spec.numerator)
        if not isinstance(spec, AmplitudeMetric) or spec.measure == "sums":
            usable = [m for m, s in self.settings.metrics.items()
                      if isinstance(s, RatioMetric) or s.measure != "sums"]
            raise UnknownMetricError(f"{self.name} experiments (conversion metrics)", metric, usable)
        now = datetime.now(timezone.utc)
        end = now.date()
        start = end - timedelta(days=self.settings.experiment_lookback_days - 1)
        prop = self.settings.variant_property.format(key=experiment_key)
        variants = self.settings.variants
        params = [("e", _event(self.settings.exposure_event, [])), ("e", _event(spec.event_type, spec.filters)),
                  *self._period(start, end),
                  *(("s", json.dumps([{"prop": prop, "op": "is", "values": [v]}])) for v in variants)]
        groups = await self._get("/funnels", params)
        ctx = ArmContext(self.name, experiment_key, metric)
        results = []
        for position, group in enumerate(groups):
            index = int((group.get("meta") or {}).get("segmentIndex", position))
            counts = group.get("cumulativeRaw") or []
            if index < len(variants) and counts:
                results.append(checked_arm(ctx, variants[index], counts[0], counts[-1] if len(counts) > 1 else 0))
        results = checked_arms(ctx, results)
        if not any(r.users for r in results):  # nobody exposed yet: no data (an empty arm alone is a signal)
            results = []
        return ExperimentResults(experiment_key=experiment_key, metric=metric, as_of=now, variants=results)

    # -- internals -----------------------------------------------------------------------------

    def _metric(self, name: str) -> AmplitudeMetric | RatioMetric:
        spec = self.settings.metrics.get(name)
        if spec is None:
            raise UnknownMetricError(self.name, name, self.settings.metrics)
        return spec

    async def _daily(self, spec: AmplitudeMetric | RatioMetric, start: date, end: date,
                     segment: Mapping[str, str] | None) -> dict[date, float]:
        if isinstance(spec, RatioMetric):
            raise ConnectorConfigError("amplitude: a ratio metric's numerator and denominator must be event metrics")
        event: dict[str, Any] = {"event_type": spec.event_type}
        if spec.filters:
            event["filters"] = spec.filters
        if spec.measure == "sums":
            if not spec.property:
                raise ConnectorConfigError(f"amplitude: metric on '{spec.event_type}' sums nothing: set its property")
            event["group_by"] = [{"type": "event", "value": spec.property}]
        params = [("e", json.dumps(event)), ("m", spec.measure), ("i", "1"), *self._period(start, end),
                  *self._segments([segment])]
        data = await self._get("/events/segmentation", params)
        days = data.get("xValues") or []
        series = data.get("series") or []
        if not series:
            return {}
        if spec.measure == "sums":  # one series per property value: add them up
            totals = [sum(float(s[i] or 0) for s in series if i < len(s)) for i in range(len(days))]
        else:
            totals = [float(v or 0) for v in series[0]]
        return {parse_day(d): v for d, v in zip(days, totals)}

    def _period(self, start: date, end: date) -> list[tuple[str, str]]:
        return [("start", start.strftime("%Y%m%d")), ("end", end.strftime("%Y%m%d"))]

    def _segments(self, segments: list[Mapping[str, str] | None]) -> list[tuple[str, str]]:
        out = []
        for segment in segments:
            if segment:
                out.append(("s", json.dumps([{"prop": self.settings.properties.get(k, k), "op": "is", "values": [v]}
                                             for k, v in sorted(segment.items())])))
        return out

    async def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        body = await get_json(self._client, path, params, source=self.name, auth_hint=AUTH_HINT)
        data = body.get("data") if isinstance(body, dict) else None
        if data is None:
            raise ConnectorUnavailableError(f"amplitude: unexpected answer from {path}: {str(body)[:200]}")
        return data


def _event(event_type: str, filters: list[dict[str, Any]]) -> str:
    event: dict[str, Any] = {"event_type": event_type}
    if filters:
        event["filters"] = filters
    return json.dumps(event)


def _cumulative(group: Mapping[str, Any]) -> list[int]:
    return [int(v or 0) for v in group.get("cumulativeRaw") or []]
