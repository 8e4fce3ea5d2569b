"""How long a server asked us to wait before trying again, read from its response headers.

Model providers, analytics connectors, flag services, Slack and webhooks all answer a rate limit
or an outage the same way: `Retry-After` (seconds, or an HTTP date), and some (OpenAI, Anthropic)
`retry-after-ms`. The delay becomes the Temporal error's ``next_retry_delay``, so the retry
happens when the server said, visibly in the history.

A header is untrusted input: a value that is not a finite number or a date (`nan`, `inf`,
`soon`) is ignored, one in the past counts as "now", and a very long wait is cut to
`MAX_RETRY_AFTER`: after that the activity asks again and the server can repeat its answer.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

#: The longest wait a server can impose on one retry.
MAX_RETRY_AFTER = timedelta(hours=1)


def retry_after_delay(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """A `Retry-After` value (seconds, or an HTTP date) as a delay between 0 and
    `MAX_RETRY_AFTER`; None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    seconds = _number(text)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return _bounded(seconds)


def retry_delay_from_headers(headers: Mapping[str, str] | None, *, now: datetime | None = None) -> timedelta | None:
    """The delay a response's headers ask for: `retry-after-ms` (milliseconds) when readable,
    else `Retry-After`. Header names are matched in any case."""
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    millis = _number(str(lowered.get("retry-after-ms") or "").strip())
    if millis is not None:
        return _bounded(millis / 1000)
    return retry_after_delay(lowered.get("retry-after"), now=now)


def _number(text: str) -> float | None:
    """A finite number written in ``text``, else None (`nan`, `inf`, words, dates)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _bounded(seconds: float) -> timedelta:
    return timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER.total_seconds()))
