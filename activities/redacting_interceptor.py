"""The worker's last check that no secret leaves an activity (`activities.redaction`).

The error tree (`activities.errors`) already redacts every message and detail it is given. This
interceptor, registered by the worker for every activity, covers what does not pass through it:

- **results**: a command's stdout and stderr, a tool's output, a model's answer. They are the
  user's data, but they are written to history, so known secret values and secret-shaped text
  are replaced there too (a command that prints `$API_TOKEN` must not put the token in history);
- **any other exception** (a library's, a bug's) and the **chain** of causes and contexts that
  Temporal records with a failure;
- **heartbeat details** (a command's last output line).

It sits innermost, nearest the activity, so the tracing interceptor records the redacted failure.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.worker import ActivityInboundInterceptor, ActivityOutboundInterceptor, ExecuteActivityInput, Interceptor

from activities.errors import foreign_failure
from activities.redaction import redact, redact_data

#: How many causes of a failure are looked at (Temporal records the whole chain).
_MAX_CHAIN = 20


class RedactingInterceptor(Interceptor):
    """Redact every activity's result, failure and heartbeat details before Temporal records them."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RedactingInbound(next)


class _RedactingInbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_RedactingOutbound(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            result = await super().execute_activity(input)
        except (asyncio.CancelledError, CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in history, whatever raised it
            cleaned = redacted_error(exc)
            raise cleaned from cleaned.__cause__  # `from`: the original is never shown as the context
        return redact_data(result)


class _RedactingOutbound(ActivityOutboundInterceptor):
    def heartbeat(self, *details: Any) -> None:
        super().heartbeat(*redact_data(details))


def redacted_error(exc: BaseException, depth: int = 0) -> BaseException:
    """``exc`` with no secret in its message, details or causes: a Temporal failure is cleaned in
    place (its type, retry flag and delay are kept); another exception whose text holds a secret
    becomes an `ApplicationError` of the same type name, which is how Temporal would record it."""
    cleaned = exc
    if isinstance(exc, FailureError):
        _clean_failure(exc)
    else:
        text = str(exc)
        if redact(text) != text:
            cleaned = foreign_failure(exc)
    # Temporal records the cause, or the context when it is not suppressed (`raise … from None`).
    origin = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if origin is not None and depth < _MAX_CHAIN:
        cleaned.__cause__ = redacted_error(origin, depth + 1)
    else:
        cleaned.__cause__ = None
    return cleaned


def _clean_failure(exc: FailureError) -> None:
    """Redact a Temporal failure's message (and an application failure's details) in place."""
    message = redact(exc.message)
    if message != exc.message:
        exc._message = message
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    if isinstance(exc, ApplicationError):
        details = redact_data(tuple(exc.details))
        if details != tuple(exc.details):
            exc._details = details
