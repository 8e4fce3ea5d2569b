"""The Google Analytics 4 connector: the Data API v1beta through Google's official client
(`google-analytics-data`, `BetaAnalyticsDataClient.run_report`), over REST by default.

- funnels: one report of `totalUsers` per `eventName` for the steps' events (GA4's recommended
  e-commerce events by default: session_start, view_item, add_to_cart, begin_checkout,
  purchase). It is an *open* funnel (users who triggered each event in the period), because the
  closed-funnel method `runFunnelReport` exists only in v1alpha.
- metrics: a report per day of any GA4 metric, optionally restricted to one event
  (``{"metric": "totalUsers", "event": "purchase"}``); ratio metrics divide two of them.
- experiments: a user-scoped custom dimension per experiment holding the variant (the pattern
  Firebase A/B Testing uses), `customUser:exp_<key>` by default (non-alphanumerics in the key
  become `_`), and an exposure event (`experience_impression`, Google's recommended event for
  third-party testing tools). Users per variant are users with the exposure event, conversions
  those with the metric's event (a ratio metric converts on its numerator's event).

Segments map to GA4 dimensions with ``dimensions`` (default: platform → `platform`, country →
`countryId`, device → `deviceCategory`) and match case-insensitively ("ios" matches "iOS").

Credentials: `GOOGLE_APPLICATION_CREDENTIALS` (a service-account JSON file with Viewer access to
the property), else Application Default Credentials; the property id in ``property_id`` or
`GA4_PROPERTY_ID`. `GA4_API_ENDPOINT` (or ``api_endpoint``) points the client elsewhere; an
`http://host:port` endpoint is used as is (tests run a local server; with ``credentials:
anonymous`` no token is sent).

The client is synchronous (requests); calls run in a worker thread. Its own retries are turned
off: Temporal retries the activity, after the server's delay on a 429 (Retry-After, or the
`google.rpc.RetryInfo` detail).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.connectors.base import BaseConnector
from activities.connectors.checked import ArmContext, checked_arm, checked_arms, finite_count
from activities.connectors.models import ExperimentResults, FunnelData, Granularity, MetricSeries, RatioMetric
from activities.connectors.series import check_query, parse_day, series_from_daily
from activities.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorUnavailableError,
    UnknownFunnelError,
    UnknownMetricError,
)
from activities.http_errors import CONNECTOR_FAILURES

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
AUTH_HINT = ("Set GOOGLE_APPLICATION_CREDENTIALS on the worker to a service-account key file whose "
             "account has Viewer access to the GA4 property.")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GA4Step(_Spec):
    name: str
    event: str


class GA4Metric(_Spec):
    metric: str = Field("totalUsers", description="a GA4 Data API metric, e.g. totalUsers, purchaseRevenue")
    event: str | None = Field(None, description="count only this event (an eventName filter)")


def _default_funnels() -> dict[str, list[GA4Step]]:
    return {"checkout": [GA4Step(name="visit", event="session_start"),
                         GA4Step(name="product_view", event="view_item"),
                         GA4Step(name="add_to_cart", event="add_to_cart"),
                         GA4Step(name="checkout_start", event="begin_checkout"),
                         GA4Step(name="purchase", event="purchase")]}


def _default_metrics() -> dict[str, GA4Metric | RatioMetric]:
    return {
        "visits": GA4Metric(metric="totalUsers", event="session_start"),
        "product_views": GA4Metric(event="view_item"),
        "add_to_carts": GA4Metric(event="add_to_cart"),
        "checkout_starts": GA4Metric(event="begin_checkout"),
        "purchases": GA4Metric(event="purchase"),
        "revenue": GA4Metric(metric="purchaseRevenue"),
        "refunds": GA4Metric(metric="eventCount", event="refund"),
        "conversion_rate": RatioMetric(numerator="purchases", denominator="visits"),
        "add_to_cart_rate": RatioMetric(numerator="add_to_carts", denominator="product_views"),
        "checkout_start_rate": RatioMetric(numerator="checkout_starts", denominator="add_to_carts"),
        "checkout_conversion": RatioMetric(numerator="purchases", denominator="checkout_starts"),
        "aov": RatioMetric(numerator="revenue", denominator="purchases"),
        "refund_rate": RatioMetric(numerator="refunds", denominator="purchases"),
    }


class GA4Connector(BaseConnector):
    name = "ga4"

    class Settings(BaseConnector.Settings):
        property_id: str | None = Field(None, description="default: $GA4_PROPERTY_ID")
        api_endpoint: str | None = Field(None, description="default: $GA4_API_ENDPOINT, else Google's")
        transport: Literal["rest", "grpc"] = "rest"
        credentials: Literal["default", "anonymous"] = Field(
            "default", description="anonymous: send no token (local test servers only)")
        funnels: dict[str, list[GA4Step]] = Field(default_factory=_default_funnels)
        metrics: dict[str, GA4Metric | RatioMetric] = Field(default_factory=_default_metrics)
        dimensions: dict[str, str] = Field({"platform": "platform", "country": "countryId", "device": "deviceCategory"},
                                           description="segment key → GA4 dimension (default: the key)")
        experiment_dimension: str = Field("customUser:exp_{key}", description="{key}: the experiment key")
        exposure_event: str = "experience_impression"
        experiment_lookback_days: int = Field(90, ge=1, le=365)
        timeout_seconds: float = Field(60.0, gt=0)

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                 credentials: Any = None) -> None:
        """``credentials``: google-auth credentials to use instead of the environment's."""
        super().__init__(settings, env=env)
        property_id = self.settings.property_id or self.env_value("GA4_PROPERTY_ID")
        if not property_id:
            raise ConnectorConfigError("ga4: no property: set the connector's property_id setting or "
                                       "GA4_PROPERTY_ID on the worker (the numeric id, e.g. 123456789)")
        self.property = property_id if property_id.startswith("properties/") else f"properties/{property_id}"
        self.api_endpoint = self.settings.api_endpoint or self.env_value("GA4_API_ENDPOINT") or None
        self._credentials = credentials
        self._client: Any = None

    # -- the interface -------------------------------------------------------------------------

    async def funnel(self, name: str, start: date, end: date, segment: dict[str, str] | None = None) -> FunnelData:
        check_query(self.name, start, end)
        steps = self.settings.funnels.get(name)
        if steps is None:
            raise UnknownFunnelError(self.name, name, self.settings.funnels)
        rows = await self._report(start, end, ["eventName"], ["totalUsers"], segment,
                                  events=[s.event for s in steps])
        users = {dims[0]: int(values[0]) for dims, values in rows}
        return FunnelData.from_counts(name, ((s.name, users.get(s.event, 0)) for s in steps), start=start,
                                      end=end, segment=segment)

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
        if not isinstance(spec, GA4Metric) or not spec.event:
            usable = [m for m, s in self.settings.metrics.items() if isinstance(s, RatioMetric) or s.event]
            raise UnknownMetricError(f"{self.name} experiments (event metrics)", metric, usable)
        dimension = self.settings.experiment_dimension.format(key=re.sub(r"\W", "_", experiment_key))
        now = datetime.now(timezone.utc)
        end = now.date()
        start = end - timedelta(days=self.settings.experiment_lookback_days - 1)
        rows = await self._report(start, end, [dimension, "eventName"], ["totalUsers"], None,
                                  events=[self.settings.exposure_event, spec.event])
        ctx = ArmContext(self.name, experiment_key, metric)
        arms: dict[str, list[int]] = {}  # in the report's order: position means nothing, names do
        for (variant, event), values in rows:
            if variant in ("(not set)", ""):
                continue
            counts = arms.setdefault(variant, [0, 0])
            exposure = event == self.settings.exposure_event
            field = "users" if exposure else "conversions"
            counts[0 if exposure else 1] += finite_count(values[0], ctx, variant, field)
        return ExperimentResults(experiment_key=experiment_key, metric=metric, as_of=now,
                                 variants=checked_arms(ctx, (checked_arm(ctx, v, u, c) for v, (u, c) in arms.items())))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            await asyncio.to_thread(transport.close)

    # -- internals -----------------------------------------------------------------------------

    def _metric(self, name: str) -> GA4Metric | RatioMetric:
        spec = self.settings.metrics.get(name)
        if spec is None:
            raise UnknownMetricError(self.name, name, self.settings.metrics)
        return spec

    async def _daily(self, spec: GA4Metric | RatioMetric, start: date, end: date,
                     segment: Mapping[str, str] | None) -> dict[date, float]:
        if isinstance(spec, RatioMetric):
            raise ConnectorConfigError("ga4: a ratio metric's numerator and denominator must be GA4 metrics")
        rows = await self._report(start, end, ["date"], [spec.metric], segment,
                                  events=[spec.event] if spec.event else None)
        return {parse_day(dims[0]): float(values[0]) for dims, values in rows}  # checked in series_from_daily

    async def _report(self, start: date, end: date, dimensions: Sequence[str], metrics: Sequence[str],
                      segment: Mapping[str, str] | None, *, events: Sequence[str] | None) -> list[tuple[list[str], list[str]]]:
        """Run one report and return its rows as (dimension values, metric values), all pages."""
        from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest

        request = RunReportRequest(
            property=self.property, date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
            dimensions=[Dimension(name=d) for d in dimensions], metrics=[Metric(name=m) for m in metrics],
            dimension_filter=self._filter(segment, events), limit=100_000)
        rows: list[tuple[list[str], list[str]]] = []
        while True:
            response = await asyncio.to_thread(self._run, request)
            rows += [([d.value for d in r.dimension_values], [m.value for m in r.metric_values]) for r in response.rows]
            if not response.rows or len(rows) >= response.row_count:
                return rows
            request.offset = len(rows)

    def _filter(self, segment: Mapping[str, str] | None, events: Sequence[str] | None) -> Any:
        from google.analytics.data_v1beta.types import Filter, FilterExpression, FilterExpressionList

        parts = [FilterExpression(filter=Filter(
            field_name=self.settings.dimensions.get(k, k),
            string_filter=Filter.StringFilter(value=v, match_type=Filter.StringFilter.MatchType.EXACT,
                                              case_sensitive=False)))
            for k, v in sorted((segment or {}).items())]
        if events:
            parts.append(FilterExpression(filter=Filter(
                field_name="eventName", in_list_filter=Filter.InListFilter(values=list(events)))))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else FilterExpression(and_group=FilterExpressionList(expressions=parts))

    def _run(self, request: Any) -> Any:
        """The blocking call, with the client's errors mapped to `ConnectorError`s."""
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        try:
            if self._client is None:
                self._client = self._make_client()
            return self._client.run_report(request, retry=None, timeout=self.settings.timeout_seconds)
        except ConnectorError:
            raise
        except gexc.GoogleAPICallError as e:
            status = e.code if isinstance(e.code, int) else 500
            raise CONNECTOR_FAILURES.service_error(self.name, status, e.message or str(e),
                                                   retry_after=_retry_after(e), hint=AUTH_HINT) from None
        except (auth_exc.DefaultCredentialsError, auth_exc.RefreshError) as e:
            raise ConnectorAuthError(f"ga4: cannot get credentials: {e}. {AUTH_HINT}") from None
        except Exception as e:  # requests' ConnectionError, google.auth TransportError, timeouts
            raise ConnectorUnavailableError(f"ga4: the Data API at {self.api_endpoint or 'Google'} cannot be "
                                            f"reached: {type(e).__name__}: {e}") from None

    def _make_client(self) -> Any:
        from google.analytics.data_v1beta import BetaAnalyticsDataClient

        options: dict[str, Any] = {}
        if self.api_endpoint:
            # The client keeps an explicit scheme, so "http://127.0.0.1:8080" stays plain HTTP.
            options["api_endpoint"] = self.api_endpoint
        return BetaAnalyticsDataClient(credentials=self._credentials or self._load_credentials(),
                                       transport=self.settings.transport, client_options=options or None)

    def _load_credentials(self) -> Any:
        import google.auth
        from google.auth.credentials import AnonymousCredentials

        if self.settings.credentials == "anonymous":
            return AnonymousCredentials()
        path = self.env_value("GOOGLE_APPLICATION_CREDENTIALS")
        try:
            if path:
                credentials, _ = google.auth.load_credentials_from_file(path, scopes=[SCOPE])
            else:
                credentials, _ = google.auth.default(scopes=[SCOPE])
        except Exception as e:
            raise ConnectorAuthError(f"ga4: cannot load credentials{f' from {path!r}' if path else ''}: {e}. "
                                     f"{AUTH_HINT}") from None
        return credentials


def _retry_after(e: Any) -> str | None:
    """The server's delay: the Retry-After header, else a google.rpc.RetryInfo detail ("30s")."""
    response = getattr(e, "response", None)
    header = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if header:
        return header
    for detail in getattr(e, "details", None) or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else getattr(detail, "retry_delay", None)
        if isinstance(delay, str) and delay.endswith("s"):
            return delay[:-1]
        if delay is not None and hasattr(delay, "seconds"):
            return str(delay.seconds + getattr(delay, "nanos", 0) / 1e9)
    return None
