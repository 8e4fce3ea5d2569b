"""Why a notification could not be delivered, as data the activity turns into one Temporal error.

A delivery either went through, failed for a reason that may pass (network, 5xx, a rate limit:
`Transient`), or failed for a reason retrying cannot fix (a wrong token, an unknown channel, a
4xx from a webhook: `Permanent`); which HTTP answers are which is `NOTIFY_FAILURES` in
`activities.http_errors`. The activity tries every target, remembers each outcome, and raises once
at the end: `NotifyUnavailableError` (retried) if anything may still pass, else
`NotifyRejectedError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from activities.errors import NotifyError, NotifyRejectedError, NotifyUnavailableError


class DeliveryError(Exception):
    """One target's delivery failed; ``target`` is the label used in results (never a secret)."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.reason = message


class Permanent(DeliveryError):
    """Retrying cannot help: the message says what to fix."""


class Transient(DeliveryError):
    """May pass later; ``retry_after`` is the receiver's own delay when it gave one."""

    def __init__(self, target: str, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(target, message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    """What happened to one target, as remembered between attempts."""

    target: str
    delivered: bool
    detail: str = ""  # Slack: "channel_id/ts"; failures: the reason


def failure_error(transient: list[Transient], permanent: list[Outcome], delivered: list[str]) -> NotifyError:
    """The one error an attempt raises when some target did not get the notification."""
    details = {"delivered": delivered, "failed": [o.target for o in permanent] + [t.target for t in transient]}
    if transient:
        waits = [t.retry_after for t in transient if t.retry_after is not None]
        lines = [str(t) for t in transient] + [f"{o.target}: {o.detail}" for o in permanent]
        return NotifyUnavailableError("notification not delivered yet (will retry): " + "; ".join(lines),
                                      details=details, next_retry_delay=max(waits) if waits else None)
    lines = [f"{o.target}: {o.detail}" for o in permanent]
    return NotifyRejectedError("notification refused: " + "; ".join(lines), details=details)
