"""The connector interface: what the growth loop asks of an analytics source, and how it fails.

Every connector answers four questions with the same pydantic models, whatever the source:

- `funnel(name, start, end, segment)` → `FunnelData`: users at each step, conversions.
- `metric_series(metric, start, end, segment, granularity)` → `MetricSeries`: one value per
  day, week (starting Monday) or month. Week and month values are sums of daily values (for a
  user count: user-days); a ratio metric is the ratio of those sums.
- `experiment_results(experiment_key, metric)` → `ExperimentResults`: users and conversions per
  variant. An experiment without data yet has no variants (not an error: it just launched).
- `historical_experiments(limit, metric)` → finished experiments, most recent first.

Segments are `{dimension: value}` filters such as `{"platform": "ios"}`; dates are inclusive.

Failures are `ConnectorError`s, which *are* Temporal `ApplicationError`s, so an activity can let
them propagate: wrong credentials and unknown names are non-retryable (retrying cannot help and
the message says what to fix), rate limits are retried after the server's own delay
(`next_retry_delay`), outages are retried with the activity's backoff.

Connectors read credentials from the worker's environment (never from settings that travel
through workflow history), through the ``env`` mapping they are given.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.exceptions import ApplicationError

from activities.http_retry import retry_after_delay
from workflows.contract.messages import (
    ERR_BAD_REQUEST,
    ERR_CONNECTOR_AUTH,
    ERR_CONNECTOR_UNAVAILABLE,
    ERR_RATE_LIMITED,
    ERR_UNKNOWN_FUNNEL,
    ERR_UNKNOWN_METRIC,
)

Granularity = Literal["day", "week", "month"]
Day = date  # for fields named `date`
GRANULARITIES: tuple[str, ...] = ("day", "week", "month")

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunnelStep(_Model):
    name: str
    users: int
    conversion_from_previous: float = Field(description="users / users at the previous step (1.0 for the first)")
    conversion_from_start: float = Field(description="users / users at the first step")


class FunnelData(_Model):
    funnel: str
    segment: dict[str, str] = Field(default_factory=dict)
    start: date
    end: date
    steps: list[FunnelStep]

    @classmethod
    def from_counts(cls, funnel: str, counts: Iterable[tuple[str, int]], *, start: date, end: date,
                    segment: Mapping[str, str] | None = None) -> FunnelData:
        """Build a funnel from ``(step name, users)`` pairs in step order; 0/0 counts as 0.0."""
        steps: list[FunnelStep] = []
        first = previous = None
        for name, users in counts:
            users = int(users)
            first = users if first is None else first
            steps.append(FunnelStep(
                name=name, users=users,
                conversion_from_previous=1.0 if previous is None else _ratio(users, previous),
                conversion_from_start=1.0 if previous is None else _ratio(users, first)))
            previous = users
        return cls(funnel=funnel, segment=dict(segment or {}), start=start, end=end, steps=steps)

    def conversion(self, from_step: str, to_step: str) -> float:
        """Users at ``to_step`` / users at ``from_step`` (0.0 when nobody reached ``from_step``)."""
        users = {s.name: s.users for s in self.steps}
        return _ratio(users[to_step], users[from_step])


class MetricPoint(_Model):
    date: Day = Field(description="the day, or the first day of the week (Monday) or month")
    value: float
    segment: dict[str, str] | None = None


class MetricSeries(_Model):
    metric: str
    granularity: Granularity = "day"
    points: list[MetricPoint]


class VariantResult(_Model):
    variant: str
    users: int = Field(description="exposed users (the unit of randomisation)")
    conversions: int = Field(description="users who converted; for continuous metrics, users measured")
    conversion_rate: float
    revenue_mean: float | None = Field(None, description="revenue per user (USD)")
    revenue_sd: float | None = None
    value_mean: float | None = Field(None, description="per-user mean of a continuous metric")
    value_sd: float | None = None


class ExperimentResults(_Model):
    experiment_key: str
    metric: str
    metric_kind: Literal["conversion", "continuous"] = "conversion"
    variants: list[VariantResult]
    as_of: datetime

    def variant(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(f"experiment '{self.experiment_key}' has no variant '{name}'; "
                       f"it has: {', '.join(v.variant for v in self.variants) or 'none yet'}")


class HistoricalExperiment(_Model):
    key: str
    hypothesis: str
    metric: str
    lift: float = Field(description="relative change of the metric, treatment vs control")
    p_value: float
    verdict: str = Field(description="SHIP_WINNER, KILL, ITERATE or INCONCLUSIVE")
    started: date
    ended: date
    segment: dict[str, str] = Field(default_factory=dict)


def variant_result(variant: str, users: int, conversions: int, **extra: float | None) -> VariantResult:
    """A `VariantResult` with its conversion rate computed (0.0 for an arm without users)."""
    return VariantResult(variant=variant, users=int(users), conversions=int(conversions),
                         conversion_rate=_ratio(conversions, users), **extra)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ConnectorError(ApplicationError):
    """A connector failure, raised as a Temporal `ApplicationError` of type ``error_type``."""

    error_type: ClassVar[str] = ERR_BAD_REQUEST
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None,
                 next_retry_delay: timedelta | None = None) -> None:
        super().__init__(message, dict(details or {}), type=self.error_type, non_retryable=not self.retryable,
                         next_retry_delay=next_retry_delay)


class ConnectorConfigError(ConnectorError):
    """The connector's settings are wrong (unknown connector, bad setting, missing value)."""


class InvalidQueryError(ConnectorError):
    """The question cannot be asked: bad dates, unknown segment dimension, a 400 from the server."""


class ConnectorAuthError(ConnectorError):
    """Missing or rejected credentials, or no permission on the project / property."""

    error_type = ERR_CONNECTOR_AUTH


class UnknownNameError(ConnectorError):
    """A metric or funnel the source does not know; ``known`` lists the names it does."""

    kind: ClassVar[str] = "name"

    def __init__(self, source: str, name: str, known: Iterable[str]) -> None:
        self.name, self.known = name, sorted(known)
        super().__init__(
            f"{source}: unknown {self.kind} '{name}'; known {self.kind}s: {', '.join(self.known) or 'none'}",
            details={"source": source, self.kind: name, "known": self.known})


class UnknownMetricError(UnknownNameError):
    error_type = ERR_UNKNOWN_METRIC
    kind = "metric"


class UnknownFunnelError(UnknownNameError):
    error_type = ERR_UNKNOWN_FUNNEL
    kind = "funnel"


class RateLimitedError(ConnectorError):
    """HTTP 429 / quota exhausted: retried, after the server's delay when it gave one."""

    error_type = ERR_RATE_LIMITED
    retryable = True


class ConnectorUnavailableError(ConnectorError):
    """The source is down, timed out or answered nonsense: retried with the activity's backoff."""

    error_type = ERR_CONNECTOR_UNAVAILABLE
    retryable = True


def error_for_status(source: str, status: int, message: str, *, retry_after: str | None = None,
                     auth_hint: str = "") -> ConnectorError:
    """The `ConnectorError` for an HTTP error status from ``source`` (``message`` is the server's)."""
    said = f": {message.strip()[:500]}" if message.strip() else ""
    if status in (401, 403):
        what = "rejected the credentials" if status == 401 else "denied access"
        return ConnectorAuthError(f"{source} {what} (HTTP {status}){said}. {auth_hint}".rstrip(),
                                  details={"source": source, "status": status})
    if status == 429:
        delay = retry_after_delay(retry_after)
        when = f"; retrying in {delay.total_seconds():g} s as the server asked" if delay else ""
        return RateLimitedError(f"{source} rate limit or quota exceeded (HTTP 429){said}{when}",
                                details={"source": source, "status": status,
                                         "retry_after_seconds": delay.total_seconds() if delay else None},
                                next_retry_delay=delay)
    if status >= 500 or status == 408:
        return ConnectorUnavailableError(f"{source} is unavailable (HTTP {status}){said}",
                                         details={"source": source, "status": status},
                                         next_retry_delay=retry_after_delay(retry_after))
    return InvalidQueryError(f"{source} refused the query (HTTP {status}){said}",
                             details={"source": source, "status": status})


async def get_json(client: httpx.AsyncClient, path: str, params: Any, *, source: str, auth_hint: str) -> Any:
    """GET ``path`` and return its JSON body, mapping transport and HTTP failures to `ConnectorError`s."""
    try:
        response = await client.get(path, params=params)
    except httpx.TimeoutException as e:
        raise ConnectorUnavailableError(f"{source} timed out ({type(e).__name__})",
                                        details={"source": source}) from None
    except httpx.TransportError as e:
        raise ConnectorUnavailableError(f"{source} cannot be reached at {client.base_url}: {e}",
                                        details={"source": source}) from None
    if response.status_code >= 400:
        raise error_for_status(source, response.status_code, _error_text(response),
                               retry_after=response.headers.get("Retry-After"), auth_hint=auth_hint)
    try:
        return response.json()
    except ValueError:
        raise ConnectorUnavailableError(
            f"{source} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{response.text[:200]!r}", details={"source": source}) from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
    return json.dumps(body)[:500]


# ---------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------


class BaseConnector(ABC):
    """An analytics source. Subclasses set ``name``, a pydantic ``Settings`` model, and implement
    `funnel`, `metric_series` and `experiment_results`.

    ``settings`` come from the workflow's configuration (no secrets: they are in history);
    ``env`` is the worker's environment (default ``os.environ``), where credentials live.
    """

    name: ClassVar[str] = "connector"

    class Settings(_Model):
        history_file: str | None = Field(
            None, description="JSON file with a list of HistoricalExperiment objects (the learning history)")

    settings: Any

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        try:
            self.settings = self.Settings.model_validate(dict(settings or {}))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                                 for err in e.errors())
            raise ConnectorConfigError(
                f"{self.name} connector settings are invalid: {problems}. "
                f"Accepted settings: {', '.join(sorted(self.Settings.model_fields))}",
                details={"connector": self.name}) from None

    @abstractmethod
    async def funnel(self, name: str, start: date, end: date,
                     segment: dict[str, str] | None = None) -> FunnelData: ...

    @abstractmethod
    async def metric_series(self, metric: str, start: date, end: date, segment: dict[str, str] | None = None,
                            granularity: Granularity = "day") -> MetricSeries: ...

    @abstractmethod
    async def experiment_results(self, experiment_key: str, metric: str) -> ExperimentResults: ...

    async def historical_experiments(self, limit: int = 20, metric: str | None = None) -> list[HistoricalExperiment]:
        """Finished experiments, most recent first. Analytics tools do not store verdicts, so by
        default they come from the ``history_file`` setting (none: an empty history)."""
        path = getattr(self.settings, "history_file", None)
        if not path:
            return []
        return select_history(load_history_file(path), limit=limit, metric=metric)

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""

    async def __aenter__(self) -> BaseConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def env_value(self, *names: str) -> str:
        """The first non-empty environment variable among ``names`` ("" when none is set)."""
        for n in names:
            if self.env.get(n):
                return self.env[n]
        return ""


# ---------------------------------------------------------------------------------------------
# Shared pieces for implementations
# ---------------------------------------------------------------------------------------------


def check_query(source: str, start: date, end: date, granularity: str = "day") -> None:
    """Reject an empty period or an unknown granularity with a message that says what to pass."""
    if end < start:
        raise InvalidQueryError(f"{source}: the period ends ({end}) before it starts ({start})")
    if granularity not in GRANULARITIES:
        raise InvalidQueryError(f"{source}: unknown granularity '{granularity}'; use one of "
                                f"{', '.join(GRANULARITIES)}")


def bucket_start(day: date, granularity: str) -> date:
    """The first day of the bucket holding ``day``: itself, its week's Monday, or its month's 1st."""
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def series_from_daily(metric: str, values: Mapping[date, float], *, granularity: str = "day",
                      segment: Mapping[str, str] | None = None,
                      denominators: Mapping[date, float] | None = None) -> MetricSeries:
    """Bucket daily values into a `MetricSeries`.

    With ``denominators`` the metric is a ratio: each point is sum(values) / sum(denominators)
    over its bucket, and buckets whose denominator is 0 are left out (the rate is undefined).
    """
    nums: dict[date, float] = {}
    dens: dict[date, float] = {}
    days = set(values) | set(denominators or {})
    for day in sorted(days):
        b = bucket_start(day, granularity)
        nums[b] = nums.get(b, 0.0) + float(values.get(day, 0.0))
        if denominators is not None:
            dens[b] = dens.get(b, 0.0) + float(denominators.get(day, 0.0))
    seg = dict(segment) if segment else None
    points = []
    for b in sorted(nums):
        if denominators is None:
            points.append(MetricPoint(date=b, value=nums[b], segment=seg))
        elif dens[b]:
            points.append(MetricPoint(date=b, value=nums[b] / dens[b], segment=seg))
    return MetricSeries(metric=metric, granularity=granularity, points=points)  # type: ignore[arg-type]


class RatioMetric(_Model):
    """A metric defined as one metric divided by another, e.g. checkout_conversion =
    purchases / checkout_starts. Both must be count (or sum) metrics of the same connector."""

    numerator: str
    denominator: str
    description: str = ""


def load_history_file(path: str | Path) -> list[HistoricalExperiment]:
    p = Path(path).expanduser()
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConnectorConfigError(f"history_file {str(p)!r} does not exist") from None
    except ValueError as e:
        raise ConnectorConfigError(f"history_file {str(p)!r} is not valid JSON: {e}") from None
    items = raw.get("historical_experiments", raw) if isinstance(raw, dict) else raw
    try:
        return [HistoricalExperiment.model_validate(item) for item in items]
    except (ValidationError, TypeError) as e:
        raise ConnectorConfigError(f"history_file {str(p)!r} does not hold a list of experiments: {e}") from None


def select_history(items: Iterable[HistoricalExperiment], *, limit: int, metric: str | None) -> list[HistoricalExperiment]:
    """Filter by metric, newest (by end date) first, at most ``limit``."""
    chosen = [h for h in items if metric is None or h.metric == metric]
    chosen.sort(key=lambda h: (h.ended, h.key), reverse=True)
    return chosen[: max(limit, 0)]


def parse_day(value: Any) -> date:
    """A date from a database or API value: a date, a datetime, 'YYYY-MM-DD…' or 'YYYYMMDD'."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return date.fromisoformat(text[:10])


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0
