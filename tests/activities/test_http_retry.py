"""One reading of a server's `Retry-After`, shared by model providers, connectors, flag services,
Slack and webhooks: finite, never negative, never longer than `MAX_RETRY_AFTER`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from activities.http_retry import MAX_RETRY_AFTER, retry_after_delay, retry_delay_from_headers

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_seconds_and_http_dates_are_read() -> None:
    assert retry_after_delay("7") == timedelta(seconds=7)
    assert retry_after_delay(" 1.5 ") == timedelta(seconds=1.5)
    assert retry_after_delay("Thu, 01 May 2025 12:00:30 GMT", now=NOW) == timedelta(seconds=30)


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "-inf", "1e400", "Thu, 99 Foo 2025"])
def test_an_unreadable_or_infinite_value_is_ignored(value: str | None) -> None:
    assert retry_after_delay(value) is None


@pytest.mark.parametrize("value", ["1e20", "99999999", "Fri, 01 Jan 9999 00:00:00 GMT"])
def test_a_huge_wait_is_cut_to_the_maximum(value: str) -> None:
    assert retry_after_delay(value, now=NOW) == MAX_RETRY_AFTER


def test_a_wait_in_the_past_means_now() -> None:
    assert retry_after_delay("-5") == timedelta(0)
    assert retry_after_delay("Thu, 01 May 2025 11:00:00 GMT", now=NOW) == timedelta(0)


def test_headers_prefer_milliseconds_and_match_names_in_any_case() -> None:
    assert retry_delay_from_headers({"Retry-After-Ms": "1500", "Retry-After": "9"}) == timedelta(seconds=1.5)
    assert retry_delay_from_headers(httpx.Headers({"Retry-After": "9"})) == timedelta(seconds=9)
    assert retry_delay_from_headers({"retry-after-ms": "nan", "retry-after": "4"}) == timedelta(seconds=4)
    assert retry_delay_from_headers({"retry-after-ms": "1e20"}) == MAX_RETRY_AFTER
    assert retry_delay_from_headers({}) is None and retry_delay_from_headers(None) is None
