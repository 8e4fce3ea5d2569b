"""The `iterloop.llm_turn` activity: one model call for one node visit.

The worker calls `configure` once with its settings; `complete_turn` holds all the logic and
needs no activity context, so providers and the dispatch rule are unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import artifacts
from activities.env import expand_env
from activities.llm.provider import ANTHROPIC, OPENAI, SCRIPTED, ModelProvider, resolve_provider
from activities.llm.scripted import ScriptedProvider
from workflows.messages import ERR_BAD_REQUEST, LLM_TURN, LLMTurnRequest, LLMTurnResult


@dataclass(frozen=True)
class LLMSettings:
    """Worker-level choices for model calls, read once at the edge (CLI/worker)."""

    offline: bool = False


_settings = LLMSettings()

#: Provider name → factory. Real providers plug in here.
PROVIDERS: dict[str, Callable[[], ModelProvider]] = {SCRIPTED: ScriptedProvider}
_COMING_WITH_LLM_MILESTONE = (ANTHROPIC, OPENAI)


def configure(*, offline: bool) -> None:
    """Set by the worker before it starts polling."""
    global _settings
    _settings = LLMSettings(offline=offline)


def current_settings() -> LLMSettings:
    return _settings


async def complete_turn(req: LLMTurnRequest, *, offline: bool,
                        env: Mapping[str, str] | None = None) -> LLMTurnResult:
    """Resolve the node's model (`${ENV}` expanded here, on the worker) and call its provider."""
    try:
        name = resolve_provider(req.model, script_available=req.script is not None, offline=offline, env=env)
    except ValueError as e:
        raise ApplicationError(f"node '{req.node_id}': {e}", type=ERR_BAD_REQUEST, non_retryable=True) from None
    factory = PROVIDERS.get(name)
    if factory is None:
        later = " arrives with the LLM milestone" if name in _COMING_WITH_LLM_MILESTONE else " is not available"
        raise ApplicationError(
            f"node '{req.node_id}': the {name} provider (model {req.model!r}){later}; run offline with "
            "`--offline` or ITERLOOP_OFFLINE=1, or give the node a `scripted/…` model",
            type=ERR_BAD_REQUEST, non_retryable=True)
    model = expand_env(req.model, env)
    resolved = req if model == req.model else req.model_copy(update={"model": model})
    return await factory().complete(resolved)


@activity.defn(name=LLM_TURN)
async def llm_turn(req: LLMTurnRequest) -> LLMTurnResult:
    # Large values reach us as artifact references; the model sees the real content.
    cache: dict[str, object] = {}
    resolved = req.model_copy(update={"system": artifacts.resolve(req.system, cache),
                                      "user": artifacts.resolve(req.user, cache),
                                      "input": artifacts.resolve(req.input, cache)})
    result = await complete_turn(resolved, offline=_settings.offline)
    output = artifacts.offload(result.output, run_id=req.run_id, node_id=req.node_id,
                               threshold=req.offload_threshold_bytes)
    return result if output is result.output else result.model_copy(update={"output": output})
