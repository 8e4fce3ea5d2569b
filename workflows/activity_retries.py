"""When the run retries an activity that failed with an error, and after how long.

Two budgets, because the two causes say different things:

- **A lost worker** (killed, crashed, restarted: the activity's heartbeat or start-to-close
  timeout ran out) says nothing about the work. Temporal retries those itself, in the same
  activity (the attempt number grows), up to `RunOptions.max_worker_losses` times.
- **An error** the activity raised says something: a permanent one (`vocabulary.NON_RETRYABLE`)
  parks the node at once, a transient one (a rate limit, an outage) is worth `max_attempts`
  attempts in all. The workflow counts these (`GraphRun.activity`), so that lost workers never
  use up the attempts meant for errors, and waits between them with a durable timer.

A pure function over plain values: the same failure gives the same decision on every replay.
"""

from __future__ import annotations

from datetime import timedelta

from workflows.contract import vocabulary

INITIAL_DELAY = timedelta(seconds=1)
MAXIMUM_DELAY = timedelta(seconds=30)


def error_retry_delay(cause: BaseException | None, failed: int, max_attempts: int) -> timedelta | None:
    """How long to wait before attempt ``failed + 1`` after ``cause`` ended attempt ``failed``;
    None when the node should park instead.

    Only application errors of a retryable type are retried (the activity's own wait, e.g. a
    provider's `Retry-After`, when it gave one; else exponential from one second, at most 30 s).
    ``max_attempts`` of 0 or less means no limit, as in Temporal's retry policies.
    """
    error_type = getattr(cause, "type", None)
    if error_type not in vocabulary.RETRYABLE or getattr(cause, "non_retryable", False):
        return None
    if 0 < max_attempts <= failed:
        return None
    asked = getattr(cause, "next_retry_delay", None)
    if isinstance(asked, timedelta) and asked > timedelta(0):
        return asked
    return min(MAXIMUM_DELAY, INITIAL_DELAY * 2 ** min(failed - 1, 16))
