"""The interface every model provider implements, and which provider serves a model string.

A provider turns one `LLMTurnRequest` (one node visit) into one `LLMTurnResult`. The activity
chooses the provider from the node's model string, so adding a real provider is one module plus
one line in the activity's table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from activities.env import expand_env
from workflows.messages import LLMTurnRequest, LLMTurnResult

SCRIPTED = "scripted"
ANTHROPIC = "anthropic"
OPENAI = "openai"

_ACCEPTED_FORMS = (
    "'scripted' or 'scripted/<name>' (offline), 'anthropic/<model>' or a bare 'claude…' name, "
    "'openai/<model>' or a bare 'gpt-…', 'o1…', 'o3…' or 'o4…' name"
)
_OPENAI_BARE_PREFIXES = ("gpt-", "o1", "o3", "o4")


@runtime_checkable
class ModelProvider(Protocol):
    """One model backend. Implementations must not read the environment except to resolve
    `${ENV}` on purpose, and must raise non-retryable `ApplicationError`s for permanent failures."""

    async def complete(self, req: LLMTurnRequest) -> LLMTurnResult: ...


def resolve_provider(model: str, *, script_available: bool, offline: bool,
                     env: Mapping[str, str] | None = None) -> str:
    """The name of the provider that serves ``model`` (after `${ENV}` expansion).

    Offline runs and runs that carry a script always use the scripted provider, whatever the
    model says, so the same workflow runs with and without an API key. ``env`` defaults to the
    worker's environment.
    """
    expanded = expand_env(model, env).strip()
    name = expanded.lower()
    if offline or script_available or name == SCRIPTED or name.startswith(SCRIPTED + "/"):
        return SCRIPTED
    if name.startswith(ANTHROPIC + "/") or name.startswith("claude"):
        return ANTHROPIC
    if name.startswith(OPENAI + "/") or name.startswith(_OPENAI_BARE_PREFIXES):
        return OPENAI
    shown = repr(model) if expanded == model else f"{model!r} (expanded to {expanded!r})"
    if not expanded:
        raise ValueError(f"model {shown} is empty: set `model:` on the node to one of {_ACCEPTED_FORMS}, "
                         "or run offline (--offline / ITERLOOP_OFFLINE=1)")
    raise ValueError(f"model {shown} names no known provider; expected {_ACCEPTED_FORMS}")
