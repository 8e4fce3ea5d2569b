"""The Mixpanel connector: the Query API (https://mixpanel.com/api/query) through httpx.

- funnels: `GET /funnels` on a *saved* funnel (``funnels: {checkout: {funnel_id: 7509}}``), one
  date bucket spanning the period, segment as a `where` expression.
- metrics: `GET /segmentation` (unique users or event totals per day) or `GET /segmentation/sum`
  (a numeric property summed per day, e.g. revenue); ratio metrics divide two of them.
- experiments: Mixpanel's Experiments convention: an `$experiment_started` event with the
  properties "Experiment name" and "Variant name". Each metric names a saved funnel whose first
  step is that event and whose last step is the conversion (``experiment_funnels``); the funnel
  is segmented by variant (`on`) and filtered to the experiment (`where`).

Credentials come from the worker's environment: a service account (`MIXPANEL_SERVICE_ACCOUNT`
+ `MIXPANEL_SECRET`, with the project id in ``project_id`` or `MIXPANEL_PROJECT_ID`), or a
legacy project API secret alone in `MIXPANEL_SECRET`. `MIXPANEL_API_URL` (or ``api_url``)
points it elsewhere, e.g. https://eu.mixpanel.com/api/query for EU residency.

The Query API allows 60 queries an hour: a 429 becomes a retryable `RateLimitedError` carrying
the server's Retry-After, so Temporal waits exactly that long before the next attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.connectors.base import BaseConnector
from activities.connectors.checked import ArmContext, checked_arm, checked_arms, finite_count
from activities.connectors.http_api import get_json
from activities.connectors.models import ExperimentResults, FunnelData, Granularity, MetricSeries, RatioMetric
from activities.connectors.series import check_query, parse_day, series_from_daily
from activities.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorUnavailableError,
    InvalidQueryError,
    UnknownFunnelError,
    UnknownMetricError,
)

DEFAULT_API_URL = "https://mixpanel.com/api/query"
AUTH_HINT = ("Set MIXPANEL_SERVICE_ACCOUNT and MIXPANEL_SECRET (a service account with access to the "
             "project) on the worker, or MIXPANEL_SECRET alone for a project API secret.")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MixpanelFunnel(_Spec):
    funnel_id: int
    steps: list[str] = Field(default_factory=list, description="step names; default: Mixpanel's labels")


class MixpanelMetric(_Spec):
    event: str
    type: Literal["unique", "general"] = Field("unique", description="unique users, or event totals")
    sum_property: str | None = Field(None, description="sum this numeric property instead of counting")


def _default_metrics() -> dict[str, MixpanelMetric | RatioMetric]:
    """Event names of the Segment e-commerce spec, common in Mixpanel tracking plans."""
    return {
        "product_views": MixpanelMetric(event="Product Viewed"),
        "add_to_carts": MixpanelMetric(event="Product Added"),
        "checkout_starts": MixpanelMetric(event="Checkout Started"),
        "purchases": MixpanelMetric(event="Order Completed"),
        "revenue": MixpanelMetric(event="Order Completed", sum_property="revenue"),
        "refunds": MixpanelMetric(event="Order Refunded", type="general"),
        "add_to_cart_rate": RatioMetric(numerator="add_to_carts", denominator="product_views"),
        "checkout_start_rate": RatioMetric(numerator="checkout_starts", denominator="add_to_carts"),
        "checkout_conversion": RatioMetric(numerator="purchases", denominator="checkout_starts"),
        "aov": RatioMetric(numerator="revenue", denominator="purchases"),
        "refund_rate": RatioMetric(numerator="refunds", denominator="purchases"),
    }


class MixpanelConnector(BaseConnector):
    name = "mixpanel"

    class Settings(BaseConnector.Settings):
        api_url: str | None = Field(None, description=f"default: $MIXPANEL_API_URL, else {DEFAULT_API_URL}")
        project_id: str | None = Field(None, description="default: $MIXPANEL_PROJECT_ID")
        workspace_id: int | None = None
        funnels: dict[str, MixpanelFunnel] = Field(default_factory=dict)
        metrics: dict[str, MixpanelMetric | RatioMetric] = Field(default_factory=_default_metrics)
        properties: dict[str, str] = Field({"country": "mp_country_code"},
                                           description="segment key → Mixpanel property (default: the key)")
        experiment_funnels: dict[str, int] = Field(
            default_factory=dict, description="metric → saved funnel ($experiment_started → conversion)")
        experiment_property: str = "Experiment name"
        variant_property: str = "Variant name"
        experiment_lookback_days: int = Field(90, ge=1, le=365)
        timeout_seconds: float = Field(60.0, gt=0)

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        account, secret = self.env_value("MIXPANEL_SERVICE_ACCOUNT"), self.env_value("MIXPANEL_SECRET")
        if not secret:
            raise ConnectorAuthError(f"mixpanel: no credentials on the worker. {AUTH_HINT}")
        self.project_id = self.settings.project_id or self.env_value("MIXPANEL_PROJECT_ID")
        if account and not self.project_id:
            raise ConnectorConfigError("mixpanel: a service account needs the project id: set the connector's "
                                       "project_id setting or MIXPANEL_PROJECT_ID on the worker")
        self.base_url = self.service_url(self.settings.api_url, "MIXPANEL_API_URL", DEFAULT_API_URL)
        self._client = self.open_http(self.base_url, auth=(account or secret, secret if account else ""),
                                      timeout_seconds=self.settings.timeout_seconds,
                                      headers={"Accept": "application/json"})

    # -- the interface -------------------------------------------------------------------------

    async def funnel(self, name: str, start: date, end: date, segment: dict[str, str] | None = None) -> FunnelData:
        check_query(self.name, start, end)
        spec = self.settings.funnels.get(name)
        if spec is None:
            raise UnknownFunnelError(self.name, name, self.settings.funnels)
        body = await self._get("/funnels", {**self._period(start, end), "funnel_id": spec.funnel_id,
                                            "interval": (end - start).days + 1, **self._where(segment)})
        counts: list[int] = []
        labels: list[str] = []
        for bucket in (body.get("data") or {}).values():
            steps = bucket.get("steps", []) if isinstance(bucket, dict) else bucket
            for i, step in enumerate(steps):
                if i == len(counts):
                    counts.append(0)
                    labels.append(str(step.get("step_label") or step.get("event") or step.get("goal") or f"step {i + 1}"))
                counts[i] += int(step.get("count") or 0)
        names = spec.steps or labels
        if spec.steps and counts and len(spec.steps) != len(counts):
            raise ConnectorConfigError(f"mixpanel: funnel '{name}' (id {spec.funnel_id}) has {len(counts)} steps "
                                       f"but its settings name {len(spec.steps)}")
        counts = counts or [0] * len(names)
        return FunnelData.from_counts(name, zip(names, counts), start=start, end=end, segment=segment)

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
        funnel_id = self.settings.experiment_funnels.get(metric)
        if funnel_id is None:
            raise UnknownMetricError(f"{self.name} experiments (experiment_funnels)", metric,
                                     self.settings.experiment_funnels)
        now = datetime.now(timezone.utc)
        end = now.date()
        start = end - timedelta(days=self.settings.experiment_lookback_days - 1)
        where = f"properties[{json.dumps(self.settings.experiment_property)}] == {json.dumps(experiment_key)}"
        body = await self._get("/funnels", {**self._period(start, end), "funnel_id": funnel_id,
                                            "interval": (end - start).days + 1, "where": where,
                                            "on": f"properties[{json.dumps(self.settings.variant_property)}]"})
        ctx = ArmContext(self.name, experiment_key, metric)
        arms: dict[str, list[int]] = {}  # in the answer's order: position means nothing, names do
        for bucket in (body.get("data") or {}).values():
            for variant, steps in bucket.items():
                steps = steps.get("steps", []) if isinstance(steps, dict) else steps
                if variant.startswith("$") or not steps:  # "$overall" is the sum of the variants
                    continue
                counts = arms.setdefault(variant, [0, 0])
                counts[0] += finite_count(steps[0].get("count"), ctx, variant, "users")  # exposed
                counts[1] += finite_count(steps[-1].get("count"), ctx, variant, "conversions")  # converted
        return ExperimentResults(experiment_key=experiment_key, metric=metric, as_of=now,
                                 variants=checked_arms(ctx, (checked_arm(ctx, v, u, c) for v, (u, c) in arms.items())))

    # -- internals -----------------------------------------------------------------------------

    def _metric(self, name: str) -> MixpanelMetric | RatioMetric:
        spec = self.settings.metrics.get(name)
        if spec is None:
            raise UnknownMetricError(self.name, name, self.settings.metrics)
        return spec

    async def _daily(self, spec: MixpanelMetric | RatioMetric, start: date, end: date,
                     segment: Mapping[str, str] | None) -> dict[date, float]:
        if isinstance(spec, RatioMetric):
            raise ConnectorConfigError("mixpanel: a ratio metric's numerator and denominator must be event metrics")
        params = {**self._period(start, end), "event": spec.event, "unit": "day", **self._where(segment)}
        if spec.sum_property:
            body = await self._get("/segmentation/sum", {**params, "on": f"properties[{json.dumps(spec.sum_property)}]"})
            values = body.get("results") or {}
        else:
            body = await self._get("/segmentation", {**params, "type": spec.type})
            values = ((body.get("data") or {}).get("values") or {}).get(spec.event) or {}
        return {parse_day(day): float(v or 0) for day, v in values.items()}

    def _period(self, start: date, end: date) -> dict[str, Any]:
        params: dict[str, Any] = {"from_date": start.isoformat(), "to_date": end.isoformat()}
        if self.project_id:
            params["project_id"] = self.project_id
        if self.settings.workspace_id is not None:
            params["workspace_id"] = self.settings.workspace_id
        return params

    def _where(self, segment: Mapping[str, str] | None) -> dict[str, str]:
        """A segment as a Mixpanel expression: `properties["$os"] == "iOS" and …`."""
        if not segment:
            return {}
        terms = [f"properties[{json.dumps(self.settings.properties.get(k, k))}] == {json.dumps(v)}"
                 for k, v in sorted(segment.items())]
        return {"where": " and ".join(terms)}

    async def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = await get_json(self._client, path, params, source=self.name, auth_hint=AUTH_HINT)
        if not isinstance(body, dict):
            raise ConnectorUnavailableError(f"mixpanel: unexpected answer from {path}: {str(body)[:200]}")
        if body.get("error"):  # some failures come back as 200 {"error": …}
            raise InvalidQueryError(f"mixpanel: {path} failed: {body['error']}")
        return body
