"""Provider failures as Temporal errors: what is retried, after how long, and what to tell the user.

| what happened                               | error type              | retried                      |
|---------------------------------------------|-------------------------|------------------------------|
| 429 rate limit                              | `ModelRateLimited`      | yes, after the server's `retry-after-ms` / `Retry-After` |
| 529 overloaded, 5xx, 408, 409, 425, network | `ModelUnavailable`      | yes (after `Retry-After` when given) |
| 401 authentication                          | `ModelAuthFailed`       | no: set the API key variable named in the message |
| 403 permission                              | `ModelPermissionDenied` | no |
| 404 not found (unknown model)               | `ModelNotFound`         | no |
| the prompt does not fit the context window  | `ContextLengthExceeded` | no: the message names the node and the size |
| 400/422 and other 4xx                       | `BadRequest`            | no: the provider's message is quoted |

The status table and the words are `MODEL_FAILURES` in `activities.http_errors` (shared with the
other services); the classes are the `ModelError` branch of `activities.errors`. This module adds
what only model providers have: the SDKs' exception types and the context-window check.

The SDKs' own retries are off (`max_retries=0`): Temporal's retry policy is the only one, so a
retry shows in the workflow's history and survives a worker restart.
"""

from __future__ import annotations

import re
from typing import Any

import anthropic
import openai

from activities.errors import ContextLengthError, ModelError, ModelUnavailableError
from activities.http_errors import MODEL_FAILURES, HttpFailure, http_failure
from activities.http_retry import retry_delay_from_headers
from activities.llm.conversation import prompt_size
from activities.llm.provider import ModelCall

_STATUS_ERRORS = (anthropic.APIStatusError, openai.APIStatusError)
_CONNECTION_ERRORS = (anthropic.APIConnectionError, openai.APIConnectionError)
_RESPONSE_ERRORS = (anthropic.APIResponseValidationError, openai.APIResponseValidationError)
_CONTEXT_PATTERN = re.compile(r"prompt is too long|context (length|window)|maximum context|too many (input )?tokens|"
                              r"input is too long|reduce the length", re.I)


def model_error(exc: Exception, call: ModelCall, *, provider: str, base_url: str, key_var: str) -> ModelError | None:
    """The Temporal error for an SDK exception, or None if ``exc`` is not a provider failure."""
    where = f"node '{call.request.node_id}' ({provider} model '{call.shown_model}')"
    if isinstance(exc, _RESPONSE_ERRORS):
        return ModelUnavailableError(f"{where}: {provider} sent a response the client cannot read: {exc}")
    if isinstance(exc, _STATUS_ERRORS):
        return _status_error(exc, call, where=where, provider=provider, base_url=base_url, key_var=key_var)
    if isinstance(exc, _CONNECTION_ERRORS):
        cause = exc.__cause__ or exc.__context__
        detail = f"{exc}" + (f" ({type(cause).__name__}: {cause})" if cause else "")
        return ModelUnavailableError(f"{where}: cannot reach {provider} at {base_url}: {detail}")
    return None


def _status_error(exc: Any, call: ModelCall, *, where: str, provider: str, base_url: str, key_var: str) -> ModelError:
    status = int(exc.status_code)
    message = api_message(exc)
    quoted = f"HTTP {status}: {message}"
    if http_failure(status) is HttpFailure.REJECTED and (status == 413 or is_context_length(exc, message)):
        return context_length_error(call, where=where, detail=quoted)
    delay = retry_delay_from_headers(exc.response.headers)
    after = f" after {delay.total_seconds():g}s" if delay else ""
    return MODEL_FAILURES.error(status, next_retry_delay=delay, where=where, provider=provider,
                                quoted=quoted, after=after, key_var=key_var, base_url=base_url, model=call.shown_model)


def is_context_length(exc: Any, message: str) -> bool:
    """Whether a refusal is about the prompt's size (providers say so in a code or in words)."""
    return getattr(exc, "code", None) == "context_length_exceeded" or bool(_CONTEXT_PATTERN.search(message))


def context_length_error(call: ModelCall, *, where: str, detail: str) -> ContextLengthError:
    """What to do when the prompt does not fit: its size, and the ways to make it smaller."""
    chars = prompt_size(call.system, call.messages)
    return ContextLengthError(
        f"{where}: the prompt does not fit the model's context window ({detail}); the prompt holds {chars:,} "
        f"characters (about {chars // 4:,} tokens) in {len(call.messages)} messages. Shorten the prompts, start a "
        "fresh session instead of inheriting one, lower tool_max_steps, or use a model with a larger context window")


def api_message(exc: Any) -> str:
    """The provider's own explanation (Anthropic `error.message`, OpenAI `error.message`)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    if isinstance(body, str) and body:
        return body[:500]
    return str(getattr(exc, "message", "") or exc)
