"""The interface every model provider implements, and which provider serves a model string.

A provider performs one model call: it translates a provider-neutral `ModelCall` (system prompt,
the whole conversation as `ChatMessage`s, the tools offered, the answer's schema) into its wire
format, calls the API, and translates the answer back into a `ModelReply`. Everything around
the call — loading and storing the conversation, choosing the tools, validating the answer,
pricing it — lives in `activity.py` and is shared, so adding a provider is one module plus one
line in the activity's table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from workflows.contract.env_refs import expand_env
from workflows.contract.messages import ChatMessage, LLMTurnRequest, ToolCall

SCRIPTED = "scripted"
ANTHROPIC = "anthropic"
OPENAI = "openai"

#: `openai-responses/<model>` selects OpenAI's Responses API instead of Chat Completions.
OPENAI_RESPONSES_PREFIX = "openai-responses/"

_ACCEPTED_FORMS = (
    "'scripted' or 'scripted/<name>' (offline), 'anthropic/<model>' or a bare 'claude…' name, "
    "'openai/<model>', 'openai-responses/<model>' or a bare 'gpt-…', 'o1…', 'o3…' or 'o4…' name"
)
_OPENAI_BARE_PREFIXES = ("gpt-", "o1", "o3", "o4")


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
    if name.startswith((OPENAI + "/", OPENAI_RESPONSES_PREFIX)) or name.startswith(_OPENAI_BARE_PREFIXES):
        return OPENAI
    # The expanded value is not quoted: this message goes to history, which never holds `${…}` values.
    shown = repr(model) if expanded == model else f"{model!r} (as set in the worker's environment)"
    if not expanded:
        raise ValueError(f"model {shown} is empty: set `model:` on the node to one of {_ACCEPTED_FORMS}, "
                         "or run offline (--offline / ITERLOOP_OFFLINE=1)")
    raise ValueError(f"model {shown} names no known provider; expected {_ACCEPTED_FORMS}")


def model_id(model: str) -> str:
    """The model name the provider's API expects: the model string without its provider prefix
    (only the first `/` splits, so `openai/meta-llama/Llama-3-8b` keeps its slash)."""
    for prefix in (ANTHROPIC + "/", OPENAI + "/", OPENAI_RESPONSES_PREFIX):
        if model.lower().startswith(prefix):
            return model[len(prefix):]
    return model


def wire_name(name: str, *, fallback: str = "_") -> str:
    """``name`` as model APIs accept a tool's or an answer schema's name (`^[A-Za-z0-9_-]{1,64}$`):
    other characters become `_`, the rest is cut at 64; an empty name becomes ``fallback``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or fallback


@dataclass(frozen=True)
class ToolSpec:
    """A tool as a model sees it. ``name`` is the registry name; providers send it as
    `wire_name(name)` and map the model's calls back (`tool_specs.ToolNames`). ``parameters`` is
    shared between turns (cached per tool): read it, never change it. ``bound`` lists the run vars
    the workflow fills for the arguments the model is not shown (`ToolInfo.bound`)."""

    name: str
    description: str
    parameters: dict[str, Any]
    mutating: bool = False
    bound: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnswerSpec:
    """The structured answer a turn asks for: the schema's name, its JSON schema, and whether
    the JSON schema fits OpenAI's strict mode (no free-form `json` fields)."""

    name: str
    json_schema: dict[str, Any]
    strict: bool


@dataclass(frozen=True)
class ModelCall:
    """Everything one model call needs, provider-neutral.

    ``messages`` is the whole conversation to send (ending with the user's or the tools' latest
    messages); tool results in it are already resolved (no artifact stubs). ``tools`` are the tools
    the model may call this turn; ``defined_tools`` are those to declare (a superset: a turn whose
    tool budget is spent still declares them, with calls turned off, so the prompt prefix stays
    cacheable and providers that insist on declarations for earlier tool calls are satisfied).
    """

    request: LLMTurnRequest  # the original request (node, visit, turn, script…), for errors and the scripted provider
    model: str  # the full, expanded model string
    system: str
    messages: list[ChatMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    defined_tools: list[ToolSpec] = field(default_factory=list)
    answer: AnswerSpec | None = None
    reasoning_effort: str = ""  # low | medium | high | extra_high | ""
    max_output_tokens: int = 8192
    prompt_caching: bool = True
    cache_key: str = ""

    @property
    def model_id(self) -> str:
        return model_id(self.model)

    @property
    def shown_model(self) -> str:
        """The model as failure messages name it: the node's `model:` as written when it refers to
        the environment (`${MODEL}`: its value stays on the worker, out of history), else the id."""
        written = self.request.model.strip()
        return written if "$" in written else self.model_id


@dataclass(frozen=True)
class TokenCounts:
    """What one call consumed, normalised: ``input_tokens`` counts every prompt token, cached and
    cache-write ones included; ``reasoning_tokens`` are part of ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ModelReply:
    """What came back, provider-neutral.

    ``answer`` is a structured answer the provider got as an object (Anthropic's answer tool, a
    scripted output); otherwise the answer is parsed from ``text``. ``tool_calls`` carry registry
    names. ``message`` is the assistant message to append to the conversation (with the
    provider's ``native`` blocks for same-provider replay). ``problem`` explains a reply that
    cannot be used as it is (a refusal, malformed tool arguments); ``truncated`` is set when the
    output token limit cut the answer short. ``cost_usd`` overrides the price table (scripted).
    """

    message: ChatMessage
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    tokens: TokenCounts = field(default_factory=TokenCounts)
    truncated: bool = False
    problem: str = ""
    cost_usd: float | None = None


@runtime_checkable
class ModelProvider(Protocol):
    """One model backend. Implementations must not read the environment, and must raise
    `ModelError`s (see `errors.py`) for failures: non-retryable for permanent ones."""

    name: str

    async def call(self, call: ModelCall) -> ModelReply: ...


def api_key_or_fail(key: str, *, base_url: str | None, provider: str, key_var: str, node_id: str) -> str:
    """The key to send: the configured one; a placeholder for a custom (compatible) server that
    wants none; without a key for the provider's own endpoint, a non-retryable error naming the
    variable to set."""
    from activities.errors import ModelAuthError  # temporalio: imported only when a key is looked up

    if key:
        return key
    if base_url is None:
        raise ModelAuthError(
            f"node '{node_id}': no {provider} API key; set {key_var} in the worker's environment, or run offline "
            "(--offline / ITERLOOP_OFFLINE=1)")
    return "unused"  # OpenAI-compatible and other custom servers often want no key

