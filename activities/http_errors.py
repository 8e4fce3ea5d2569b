"""What an HTTP error answer means, decided once for every service an activity talks to.

`http_failure` sorts a status into a handful of failures:

| status                         | failure        |
|--------------------------------|----------------|
| 401                            | `AUTH`         |
| 403                            | `FORBIDDEN`    |
| 404                            | `NOT_FOUND`    |
| 409                            | `CONFLICT`     |
| 429                            | `RATE_LIMITED` |
| 408, 425, 5xx (and the network)| `UNAVAILABLE`  |
| any other (400, 413, 422, 3xx) | `REJECTED`     |

Each kind of service then has its vocabulary, a `FailureVocabulary`: which error class (from
`activities.errors`, hence which `ErrorType` and whether it is retried) each failure becomes,
and in which words. The four are side by side at the end of this module, so "what happens on a
409?" has one answer to read:

| failure        | model providers         | connectors                  | flag providers                 | notifications            |
|----------------|-------------------------|-----------------------------|--------------------------------|--------------------------|
| `AUTH`         | `ModelAuthError`        | `ConnectorAuthError`        | `FlagAuthError`                | `NotifyRejectedError`    |
| `FORBIDDEN`    | `ModelPermissionError`  | `ConnectorAuthError`        | `FlagAuthError`                | `NotifyRejectedError`    |
| `NOT_FOUND`    | `ModelNotFoundError`    | `InvalidQueryError`         | `FlagNotFoundError`            | `NotifyRejectedError`    |
| `CONFLICT`     | `ModelUnavailableError` | `InvalidQueryError`         | `FlagConflictError`            | `NotifyRejectedError`    |
| `RATE_LIMITED` | `ModelRateLimitedError` | `RateLimitedError`          | `FlagRateLimitedError`         | `NotifyUnavailableError` |
| `UNAVAILABLE`  | `ModelUnavailableError` | `ConnectorUnavailableError` | `FlagProviderUnavailableError` | `NotifyUnavailableError` |
| `REJECTED`     | `ModelRequestError`     | `InvalidQueryError`         | `FlagRequestError`             | `NotifyRejectedError`    |

(A model provider's 409 is a lock conflict its own SDK would retry; the model activity also reads
a 413, or a 4xx whose message says so, as `ContextLengthError` before `REJECTED` applies.) The
delay before a retry comes from the answer's headers (`activities.http_retry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from activities.errors import (
    ActivityError,
    ConnectorAuthError,
    ConnectorError,
    ConnectorUnavailableError,
    FlagAuthError,
    FlagConflictError,
    FlagError,
    FlagNotFoundError,
    FlagProviderUnavailableError,
    FlagRateLimitedError,
    FlagRequestError,
    InvalidQueryError,
    ModelAuthError,
    ModelError,
    ModelNotFoundError,
    ModelPermissionError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelUnavailableError,
    NotifyError,
    NotifyRejectedError,
    NotifyUnavailableError,
    RateLimitedError,
)
from activities.http_retry import retry_after_delay


class HttpFailure(StrEnum):
    """What went wrong, whatever the service."""

    AUTH = "auth"  # the credentials are missing or wrong
    FORBIDDEN = "forbidden"  # the credentials may not do this
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"  # asked too often: wait (for as long as the server said)
    UNAVAILABLE = "unavailable"  # down, overloaded, too early, timed out, unreachable: try again
    REJECTED = "rejected"  # the request itself is wrong: retrying the same one cannot help


_BY_STATUS: Final[Mapping[int, HttpFailure]] = {
    401: HttpFailure.AUTH,
    403: HttpFailure.FORBIDDEN,
    404: HttpFailure.NOT_FOUND,
    408: HttpFailure.UNAVAILABLE,  # Request Timeout
    409: HttpFailure.CONFLICT,
    425: HttpFailure.UNAVAILABLE,  # Too Early: the server asks to repeat the request later
    429: HttpFailure.RATE_LIMITED,
}


def http_failure(status: int) -> HttpFailure:
    """The failure an answer with ``status`` (not a success) stands for."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return HttpFailure.UNAVAILABLE if status >= 500 else HttpFailure.REJECTED


E = TypeVar("E", bound=ActivityError)


@dataclass(frozen=True)
class FailureVocabulary(Generic[E]):
    """How one kind of service names its failures: the error class of each `HttpFailure`, and
    the words of its message (a `str.format` template whose fields the caller supplies; always
    ``status``, the rest as documented where the vocabulary is defined)."""

    errors: Mapping[HttpFailure, type[E]]
    wording: Mapping[HttpFailure, str] = field(default_factory=dict)
    #: The details key naming the service in `service_error` ("source", "provider").
    subject_key: str = "service"

    def error_class(self, status: int) -> type[E]:
        return self.errors[http_failure(status)]

    def retryable(self, status: int) -> bool:
        """Whether an answer with ``status`` is worth retrying for this kind of service."""
        return self.error_class(status).retryable()

    def error(self, status: int, *, next_retry_delay: timedelta | None = None,
              details: Mapping[str, Any] | None = None, **words: str) -> E:
        """The error for an answer with ``status``, worded with ``words``."""
        failure = http_failure(status)
        message = self.wording[failure].format(status=status, **words)
        return self.errors[failure](message, details=details, next_retry_delay=next_retry_delay)

    def service_error(self, subject: str, status: int, server_text: str, *, retry_after: str | None = None,
                      hint: str = "") -> E:
        """The error for a REST service's (a connector's, a flag provider's) error answer:
        ``server_text`` is its own explanation, ``retry_after`` its `Retry-After` header, ``hint``
        what to do about rejected credentials."""
        said = f": {server_text.strip()[:500]}" if server_text.strip() else ""
        delay = retry_after_delay(retry_after)
        details: dict[str, Any] = {self.subject_key: subject, "status": status}
        when = ""
        if http_failure(status) is HttpFailure.RATE_LIMITED:
            details["retry_after_seconds"] = delay.total_seconds() if delay else None
            when = f"; retrying in {delay.total_seconds():g} s as the server asked" if delay else ""
        return self.error(status, next_retry_delay=delay, details=details, subject=subject, said=said, when=when,
                          hint=f" {hint}" if hint else "")


# -- the vocabularies ----------------------------------------------------------------------------

_REST_AUTH: Final = "{subject} rejected the credentials (HTTP {status}){said}.{hint}"
_REST_FORBIDDEN: Final = "{subject} denied access (HTTP {status}){said}.{hint}"
_REST_UNAVAILABLE: Final = "{subject} is unavailable (HTTP {status}){said}"

#: Model providers (`activities.llm.errors`). Fields: ``where`` (the node and model), ``provider``,
#: ``quoted`` (the status and the provider's message), ``after`` (the delay, or ""), ``key_var``,
#: ``base_url``, ``model``.
MODEL_FAILURES: Final = FailureVocabulary[ModelError](
    errors={
        HttpFailure.AUTH: ModelAuthError,
        HttpFailure.FORBIDDEN: ModelPermissionError,
        HttpFailure.NOT_FOUND: ModelNotFoundError,
        HttpFailure.CONFLICT: ModelUnavailableError,
        HttpFailure.RATE_LIMITED: ModelRateLimitedError,
        HttpFailure.UNAVAILABLE: ModelUnavailableError,
        HttpFailure.REJECTED: ModelRequestError,
    },
    wording={
        HttpFailure.AUTH: "{where}: {provider} rejected the API key ({quoted}); set {key_var} in the worker's "
                          "environment to a valid key for {base_url}",
        HttpFailure.FORBIDDEN: "{where}: {provider} does not allow this API key to use the model ({quoted}); use a "
                               "key with access to it, or another model",
        HttpFailure.NOT_FOUND: "{where}: {provider} does not know this model ({quoted}); check the node's `model:` "
                               "(sent as '{model}' to {base_url})",
        HttpFailure.CONFLICT: "{where}: {provider} is unavailable ({quoted}); retrying",
        HttpFailure.RATE_LIMITED: "{where}: rate limited by {provider} ({quoted}); retrying{after}",
        HttpFailure.UNAVAILABLE: "{where}: {provider} is unavailable ({quoted}); retrying",
        HttpFailure.REJECTED: "{where}: {provider} rejected the request ({quoted})",
    },
    subject_key="provider")

#: Analytics connectors (`activities.connectors`), through `service_error`.
CONNECTOR_FAILURES: Final = FailureVocabulary[ConnectorError](
    errors={
        HttpFailure.AUTH: ConnectorAuthError,
        HttpFailure.FORBIDDEN: ConnectorAuthError,
        HttpFailure.NOT_FOUND: InvalidQueryError,
        HttpFailure.CONFLICT: InvalidQueryError,
        HttpFailure.RATE_LIMITED: RateLimitedError,
        HttpFailure.UNAVAILABLE: ConnectorUnavailableError,
        HttpFailure.REJECTED: InvalidQueryError,
    },
    wording={
        HttpFailure.AUTH: _REST_AUTH,
        HttpFailure.FORBIDDEN: _REST_FORBIDDEN,
        HttpFailure.NOT_FOUND: "{subject} refused the query (HTTP {status}){said}",
        HttpFailure.CONFLICT: "{subject} refused the query (HTTP {status}){said}",
        HttpFailure.RATE_LIMITED: "{subject} rate limit or quota exceeded (HTTP 429){said}{when}",
        HttpFailure.UNAVAILABLE: _REST_UNAVAILABLE,
        HttpFailure.REJECTED: "{subject} refused the query (HTTP {status}){said}",
    },
    subject_key="source")

#: Feature-flag providers (`activities.flags`), through `service_error`.
FLAG_FAILURES: Final = FailureVocabulary[FlagError](
    errors={
        HttpFailure.AUTH: FlagAuthError,
        HttpFailure.FORBIDDEN: FlagAuthError,
        HttpFailure.NOT_FOUND: FlagNotFoundError,
        HttpFailure.CONFLICT: FlagConflictError,
        HttpFailure.RATE_LIMITED: FlagRateLimitedError,
        HttpFailure.UNAVAILABLE: FlagProviderUnavailableError,
        HttpFailure.REJECTED: FlagRequestError,
    },
    wording={
        HttpFailure.AUTH: _REST_AUTH,
        HttpFailure.FORBIDDEN: _REST_FORBIDDEN,
        HttpFailure.NOT_FOUND: "{subject}: not found (HTTP 404){said}",
        HttpFailure.CONFLICT: "{subject}: conflict (HTTP 409){said}",
        HttpFailure.RATE_LIMITED: "{subject} rate limit exceeded (HTTP 429){said}{when}",
        HttpFailure.UNAVAILABLE: _REST_UNAVAILABLE,
        HttpFailure.REJECTED: "{subject} refused the request (HTTP {status}){said}",
    },
    subject_key="provider")

#: Notifications (`activities.notify`): Slack and webhooks word each target's failure themselves
#: (one notification has several targets); the class says whether that target may still succeed.
NOTIFY_FAILURES: Final = FailureVocabulary[NotifyError](
    errors={
        HttpFailure.AUTH: NotifyRejectedError,
        HttpFailure.FORBIDDEN: NotifyRejectedError,
        HttpFailure.NOT_FOUND: NotifyRejectedError,
        HttpFailure.CONFLICT: NotifyRejectedError,
        HttpFailure.RATE_LIMITED: NotifyUnavailableError,
        HttpFailure.UNAVAILABLE: NotifyUnavailableError,
        HttpFailure.REJECTED: NotifyRejectedError,
    },
    subject_key="target")
