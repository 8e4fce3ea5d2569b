"""Every failure an activity raises, drawn as one tree.

Each class *is* a Temporal `ApplicationError`, so an activity lets it propagate and Temporal records
it as is. A class names one `ErrorType` of the vocabulary (`workflows.contract.vocabulary`), and
the constructor derives everything else from it: the failure's ``type``, whether it is retried
(``type in RETRYABLE``, never decided where it is raised), the server's delay before the next
attempt (kept only when the failure is retried at all) and its details (always one mapping, so a
client reading ``details[0]`` finds one). Which class an HTTP answer becomes is decided in
`activities.http_errors`.

    ActivityError                          (the base; BadRequest unless a subclass says otherwise)
    ├── BadRequestError                    BadRequest: the request cannot be served as written
    ├── CommandFailedError                 CommandFailed: a shell node's command failed
    ├── ScriptError                        ScriptError: an offline script does not fit the run
    ├── UnknownToolError                   UnknownTool
    ├── ModelError                         model providers
    │   ├── ModelRequestError              BadRequest: the provider refused the request
    │   ├── ModelAuthError                 ModelAuthFailed
    │   ├── ModelPermissionError           ModelPermissionDenied
    │   ├── ModelNotFoundError             ModelNotFound
    │   ├── ContextLengthError             ContextLengthExceeded
    │   ├── ModelRateLimitedError          ModelRateLimited (retried)
    │   └── ModelUnavailableError          ModelUnavailable (retried)
    ├── ConnectorError                     analytics connectors
    │   ├── ConnectorConfigError           BadRequest: the connector's settings are wrong
    │   ├── InvalidQueryError              BadRequest: the question cannot be asked
    │   ├── ConnectorAuthError             ConnectorAuthFailed
    │   ├── UnknownNameError
    │   │   ├── UnknownMetricError         UnknownMetric
    │   │   └── UnknownFunnelError         UnknownFunnel
    │   ├── RateLimitedError               RateLimited (retried)
    │   └── ConnectorUnavailableError      ConnectorUnavailable (retried)
    ├── FlagError                          feature-flag providers
    │   ├── FlagConfigError                BadRequest: the provider's settings or environment are wrong
    │   ├── FlagRequestError               BadRequest: the provider refused the request
    │   ├── FlagAuthError                  FlagProviderAuthFailed
    │   ├── FlagNotFoundError              FlagNotFound
    │   ├── FlagConflictError              FlagConflict
    │   ├── FlagRateLimitedError           RateLimited (retried)
    │   └── FlagProviderUnavailableError   FlagProviderUnavailable (retried)
    ├── NotifyError                        notifications
    │   ├── NotifyRejectedError            NotifyRejected
    │   └── NotifyUnavailableError         NotifyUnavailable (retried)
    ├── McpError                           MCP servers (a tool's own error is a result, never raised)
    │   ├── McpServerError                 McpServerFailed: cannot start, refused, answers nonsense
    │   └── McpServerUnavailableError      McpServerUnavailable (retried): the connection was lost mid-call
    └── ArtifactStoreUnavailableError      ArtifactStoreUnavailable (retried): the S3 store timed out or failed
                                           (a missing bucket or refused credentials are BadRequest)

Every message and detail is redacted on construction (`activities.redaction`): no secret of the
worker's environment, URL password or secret parameter reaches history through a failure.

The domain branches exist because callers catch by domain (a connector re-raises its own errors
unchanged) and because the vocabulary names their failures apart; they add no behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError

from activities.redaction import redact, redact_data
from workflows.contract.vocabulary import (
    ERR_ARTIFACT_STORE_UNAVAILABLE,
    ERR_BAD_REQUEST,
    ERR_COMMAND_FAILED,
    ERR_CONNECTOR_AUTH,
    ERR_CONNECTOR_UNAVAILABLE,
    ERR_CONTEXT_LENGTH,
    ERR_FLAG_AUTH,
    ERR_FLAG_CONFLICT,
    ERR_FLAG_NOT_FOUND,
    ERR_FLAG_PROVIDER_UNAVAILABLE,
    ERR_MCP_SERVER_FAILED,
    ERR_MCP_SERVER_UNAVAILABLE,
    ERR_MODEL_AUTH,
    ERR_MODEL_NOT_FOUND,
    ERR_MODEL_PERMISSION,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_UNAVAILABLE,
    ERR_NOTIFY_REJECTED,
    ERR_NOTIFY_UNAVAILABLE,
    ERR_RATE_LIMITED,
    ERR_SCRIPT,
    ERR_UNKNOWN_FUNNEL,
    ERR_UNKNOWN_METRIC,
    ERR_UNKNOWN_TOOL,
    RETRYABLE,
    ErrorType,
)


class ActivityError(ApplicationError):
    """An activity failure of type ``error_type``; retried exactly when the vocabulary says so."""

    #: The failure's type; BadRequest (never retried) unless a subclass names another.
    error_type: ClassVar[ErrorType] = ERR_BAD_REQUEST

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None,
                 next_retry_delay: timedelta | None = None) -> None:
        """``next_retry_delay`` is the server's own wait (`Retry-After`); it is dropped for a
        failure that is never retried, where it would mean nothing. The message and details are
        redacted here (`activities.redaction`): a failure is written to history, and from there
        reaches events, reports and logs, so the worker's secrets never get that far."""
        retryable = self.retryable()
        super().__init__(redact(message), redact_data(dict(details or {})), type=self.error_type,
                         non_retryable=not retryable, next_retry_delay=next_retry_delay if retryable else None)

    @classmethod
    def retryable(cls) -> bool:
        """Whether Temporal retries this failure: its type is in the vocabulary's `RETRYABLE`."""
        return cls.error_type in RETRYABLE


def foreign_failure(exc: BaseException) -> ApplicationError:
    """An exception from outside the tree (a library's, a bug's) as Temporal itself would record it
    (its class name as the type; retried unless the retry policy says otherwise), but with its text
    redacted; used when that text holds a secret (`activities.redacting_interceptor`)."""
    return ApplicationError(redact(str(exc)), type=type(exc).__name__).with_traceback(exc.__traceback__)


# -- requests and configuration ------------------------------------------------------------------


class BadRequestError(ActivityError):
    """The request cannot be served as written (a bad argument, reference or setting); the message
    says what to fix."""


class CommandFailedError(ActivityError):
    """A shell node's command exited non-zero or timed out; details hold the output's tails."""

    error_type = ERR_COMMAND_FAILED


class ScriptError(ActivityError):
    """An offline script has no usable answer for this turn."""

    error_type = ERR_SCRIPT


class UnknownToolError(ActivityError):
    """A tool call names no builtin tool."""

    error_type = ERR_UNKNOWN_TOOL


# -- model providers -----------------------------------------------------------------------------


class ModelError(ActivityError):
    """A model provider's failure."""


class ModelRequestError(ModelError):
    """The provider refused the request as malformed (400, 422 and other 4xx); its message is quoted."""


class ModelAuthError(ModelError):
    """No API key, or the provider rejected it (401)."""

    error_type = ERR_MODEL_AUTH


class ModelPermissionError(ModelError):
    """The key may not use this model (403)."""

    error_type = ERR_MODEL_PERMISSION


class ModelNotFoundError(ModelError):
    """The provider does not know the model (404)."""

    error_type = ERR_MODEL_NOT_FOUND


class ContextLengthError(ModelError):
    """The prompt does not fit the model's context window."""

    error_type = ERR_CONTEXT_LENGTH


class ModelRateLimitedError(ModelError):
    """429: retried, after the provider's delay when it gave one."""

    error_type = ERR_MODEL_RATE_LIMITED


class ModelUnavailableError(ModelError):
    """Overload, 5xx, a timeout, the network, an unreadable answer: retried."""

    error_type = ERR_MODEL_UNAVAILABLE


# -- analytics connectors ------------------------------------------------------------------------


class ConnectorError(ActivityError):
    """An analytics connector's failure."""


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


class ConnectorUnavailableError(ConnectorError):
    """The source is down, timed out or answered nonsense: retried with the activity's backoff."""

    error_type = ERR_CONNECTOR_UNAVAILABLE


# -- feature-flag providers ----------------------------------------------------------------------


class FlagError(ActivityError):
    """A feature-flag provider's failure."""


class FlagConfigError(FlagError):
    """The provider's settings or environment are wrong (unknown provider, missing credential)."""


class FlagRequestError(FlagError):
    """The provider refused the request as malformed (HTTP 400/422, unknown environment…)."""


class FlagAuthError(FlagError):
    """Missing or rejected credentials, or no permission."""

    error_type = ERR_FLAG_AUTH


class FlagNotFoundError(FlagError):
    """No flag under that key."""

    error_type = ERR_FLAG_NOT_FOUND


class FlagConflictError(FlagError):
    """The key exists with another definition (or is taken where it cannot be read)."""

    error_type = ERR_FLAG_CONFLICT


class FlagRateLimitedError(FlagError):
    """HTTP 429: retried, after the server's delay when it gave one."""

    error_type = ERR_RATE_LIMITED


class FlagProviderUnavailableError(FlagError):
    """The service is down, timed out, or the local store is locked too long: retried."""

    error_type = ERR_FLAG_PROVIDER_UNAVAILABLE


# -- notifications -------------------------------------------------------------------------------


class NotifyError(ActivityError):
    """A notification did not reach every target (one error for all of them: see
    `activities.notify.errors.failure_error`)."""


class NotifyRejectedError(NotifyError):
    """Every target that failed refused for good (a wrong token, an unknown channel, a 4xx)."""

    error_type = ERR_NOTIFY_REJECTED


class NotifyUnavailableError(NotifyError):
    """Some target may still succeed (network, 5xx, a rate limit): retried."""

    error_type = ERR_NOTIFY_UNAVAILABLE


# -- MCP servers ---------------------------------------------------------------------------------


class McpError(ActivityError):
    """An MCP server's failure (`activities.mcp`). A tool that reports an error (`isError`) is not
    one: that is the call's result, given back to the model."""


class McpServerError(McpError):
    """The server cannot be used as configured: its command does not start or exits at once, its URL
    refuses, it fails the handshake. Retrying the same configuration does not help; the message names
    the server and ends with its stderr."""

    error_type = ERR_MCP_SERVER_FAILED


class McpServerUnavailableError(McpError):
    """The server was reached, then lost during the call (its process died, the connection broke):
    retried; the next attempt starts it again."""

    error_type = ERR_MCP_SERVER_UNAVAILABLE


# -- the artifact store ----------------------------------------------------------------------------


class ArtifactStoreUnavailableError(ActivityError):
    """The artifact store (an S3-compatible bucket) did not answer in time, or answered with a
    server error: retried. A store that cannot work as configured (no such bucket, credentials
    refused) is a `BadRequestError` instead, naming the setting to fix."""

    error_type = ERR_ARTIFACT_STORE_UNAVAILABLE
