"""Periods, days and buckets: what every connector does to turn a source's numbers into answers.

A connector checks the period it is asked about (`check_query`), reads the source's dates
(`parse_day`), and builds a `MetricSeries` from daily values (`series_from_daily`), which buckets
them by week or month and divides ratio metrics bucket by bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from activities.connectors.models import GRANULARITIES, MetricPoint, MetricSeries
from activities.errors import ConnectorError, InvalidQueryError


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
                      denominators: Mapping[date, float] | None = None,
                      source: str = "connector") -> MetricSeries:
    """Bucket daily values into a `MetricSeries`.

    With ``denominators`` the metric is a ratio: each point is sum(values) / sum(denominators)
    over its bucket, and buckets whose denominator is 0 are left out (the rate is undefined).
    A value that is not a finite number (a source's `NaN` or `Infinity`) is refused here, naming
    ``source``, the metric and the day: the models would refuse it with a message naming neither.
    """
    for part, daily in (("value", values), ("denominator", denominators or {})):
        for day, v in daily.items():
            if not math.isfinite(float(v)):
                raise ConnectorError(f"{source}: metric '{metric}' on {day}: the {part} is {v!r}, expected a "
                                     f"finite number; check the metric's definition in {source}",
                                     details={"source": source, "metric": metric, "date": str(day), "field": part})
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
