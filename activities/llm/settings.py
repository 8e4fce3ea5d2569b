"""Worker-level choices for model calls, read once at the edge (worker, CLI) into `LLMSettings`.

API keys and base URLs use the SDKs' standard environment variables, so a worker configured for
the official clients needs nothing else, and an OpenAI-compatible server is one base URL away.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workflows.contract.env_refs import truthy

ANTHROPIC_API_KEY_VAR = "ANTHROPIC_API_KEY"
ANTHROPIC_BASE_URL_VAR = "ANTHROPIC_BASE_URL"
OPENAI_API_KEY_VAR = "OPENAI_API_KEY"
OPENAI_BASE_URL_VAR = "OPENAI_BASE_URL"
PRICES_FILE_VAR = "ITERLOOP_PRICES_FILE"
OPENAI_API_VAR = "ITERLOOP_OPENAI_API"
MAX_OUTPUT_TOKENS_VAR = "ITERLOOP_LLM_MAX_OUTPUT_TOKENS"
REQUEST_TIMEOUT_VAR = "ITERLOOP_LLM_REQUEST_TIMEOUT"
PROMPT_CACHING_VAR = "ITERLOOP_PROMPT_CACHING"
ANTHROPIC_STRUCTURED_OUTPUT_VAR = "ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT"

DEFAULT_MAX_OUTPUT_TOKENS = 8192
#: Seconds one HTTP request to a provider may take. It must end before the activity's own
#: start-to-close timeout (the run option `llm_timeout_seconds`, 300 s by default): then a slow
#: call fails as a clear, retryable `ModelUnavailable` and the connection is closed, instead of
#: Temporal abandoning an attempt whose request goes on. `activity.llm_turn` also cuts it to fit
#: a shorter activity timeout.
DEFAULT_REQUEST_TIMEOUT = 270.0
OPENAI_APIS = ("chat", "responses")
#: How Anthropic nodes get a structured answer: `auto` = native structured outputs
#: (`output_config.format`) on the models that support them (Claude 4.5 and later), the answer
#: tool on others; `native` = always native (a gateway alias of a recent model); `tool` = always
#: the answer tool (an endpoint that refuses `output_config.format`).
ANTHROPIC_STRUCTURED_OUTPUTS = ("auto", "native", "tool")


class LLMSettingsError(ValueError):
    """An environment variable holds a value the model layer cannot use; the message names it."""


@dataclass(frozen=True)
class LLMSettings:
    """How the worker reaches model providers.

    ``*_base_url`` None means the provider's public endpoint. ``openai_api`` picks OpenAI's wire
    format for `openai/…` models (`chat` = Chat Completions, `responses` = Responses; an
    `openai-responses/…` model string always uses Responses). ``max_output_tokens`` bounds the
    visible answer; a reasoning budget comes on top (see `reasoning.py`). ``prices_file`` is a
    YAML/JSON price override (see `pricing.py`).
    """

    offline: bool = False
    anthropic_api_key: str = field(default="", repr=False)
    anthropic_base_url: str | None = None
    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str | None = None
    openai_api: str = "chat"
    prices_file: Path | None = None
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT
    prompt_caching: bool = True
    anthropic_structured_output: str = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, offline: bool | None = None) -> LLMSettings:
        """Settings from the standard variables (``env`` defaults to the process environment);
        ``offline`` overrides `ITERLOOP_OFFLINE`."""
        e = os.environ if env is None else env
        api = (e.get(OPENAI_API_VAR) or "chat").strip().lower()
        if api not in OPENAI_APIS:
            raise LLMSettingsError(f"{OPENAI_API_VAR}={api!r} is not one of {', '.join(OPENAI_APIS)}")
        structured = (e.get(ANTHROPIC_STRUCTURED_OUTPUT_VAR) or "auto").strip().lower()
        if structured not in ANTHROPIC_STRUCTURED_OUTPUTS:
            raise LLMSettingsError(f"{ANTHROPIC_STRUCTURED_OUTPUT_VAR}={structured!r} is not one of "
                                   f"{', '.join(ANTHROPIC_STRUCTURED_OUTPUTS)}")
        return cls(
            offline=truthy(e.get("ITERLOOP_OFFLINE")) if offline is None else offline,
            anthropic_api_key=(e.get(ANTHROPIC_API_KEY_VAR) or "").strip(),
            anthropic_base_url=(e.get(ANTHROPIC_BASE_URL_VAR) or "").strip() or None,
            openai_api_key=(e.get(OPENAI_API_KEY_VAR) or "").strip(),
            openai_base_url=(e.get(OPENAI_BASE_URL_VAR) or "").strip() or None,
            openai_api=api,
            prices_file=Path(e[PRICES_FILE_VAR]) if (e.get(PRICES_FILE_VAR) or "").strip() else None,
            max_output_tokens=_positive_int(e, MAX_OUTPUT_TOKENS_VAR, DEFAULT_MAX_OUTPUT_TOKENS),
            request_timeout_seconds=_positive_float(e, REQUEST_TIMEOUT_VAR, DEFAULT_REQUEST_TIMEOUT),
            prompt_caching=(e.get(PROMPT_CACHING_VAR) or "1").strip().lower() not in ("0", "false", "no", "off"),
            anthropic_structured_output=structured,
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise LLMSettingsError(f"{name}={raw!r} is not a positive whole number")
    return int(raw)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LLMSettingsError(f"{name}={raw!r} is not a positive number of seconds")
    return value
