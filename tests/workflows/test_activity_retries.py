"""Which activity failures the run retries itself, and when (pure; no server)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError, TimeoutError, TimeoutType

from workflows.activity_retries import MAXIMUM_DELAY, error_retry_delay


def error(error_type: str, **kw: object) -> ApplicationError:
    return ApplicationError("boom", type=error_type, **kw)  # type: ignore[arg-type]


def test_a_transient_error_is_retried_until_max_attempts_with_a_growing_wait() -> None:
    delays = [error_retry_delay(error("ModelUnavailable"), failed, 5) for failed in range(1, 6)]
    assert delays == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8), None]
    assert error_retry_delay(error("RateLimited"), 30, 0) == MAXIMUM_DELAY  # 0: no limit, wait capped


def test_the_services_own_wait_is_kept() -> None:
    asked = error("ModelRateLimited", next_retry_delay=timedelta(seconds=7))
    assert error_retry_delay(asked, 1, 3) == timedelta(seconds=7)


def test_permanent_errors_and_lost_workers_are_not_the_runs_to_retry() -> None:
    assert error_retry_delay(error("CommandFailed", non_retryable=True), 1, 3) is None
    assert error_retry_delay(error("ModelAuthFailed"), 1, 3) is None
    assert error_retry_delay(error("KeyError"), 1, 3) is None  # no error class names it: Temporal's
    # A timeout here means Temporal already spent `max_worker_losses` retries on lost workers.
    assert error_retry_delay(TimeoutError("lost", type=TimeoutType.HEARTBEAT, last_heartbeat_details=[]), 1, 3) is None
    assert error_retry_delay(None, 1, 3) is None
