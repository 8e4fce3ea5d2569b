"""GenAI attributes on the current OpenTelemetry span, so traces show model, tokens and cost.

With tracing enabled (docs/observability.md) every activity runs inside a `RunActivity:…` span
created by Temporal's tracing interceptor; the LLM activity calls `record_llm_usage` after each
model call and the span carries the OpenTelemetry GenAI semantic-convention attributes plus
iterloop's own (cost, cached tokens). Without tracing the current span does not record and this
costs nothing.
"""

from __future__ import annotations

from opentelemetry import trace

from workflows.contract.messages import Usage

# OpenTelemetry semantic conventions for generative AI (gen_ai.*).
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
# iterloop's own, for what the conventions do not cover.
ITERLOOP_NODE = "iterloop.node.id"
ITERLOOP_COST_USD = "iterloop.llm.cost_usd"
ITERLOOP_CACHED_TOKENS = "iterloop.llm.cached_tokens"
ITERLOOP_REASONING_TOKENS = "iterloop.llm.reasoning_tokens"
ITERLOOP_CACHE_SAVINGS_USD = "iterloop.llm.cache_savings_usd"
ITERLOOP_CALLS = "iterloop.llm.calls"


def record_llm_usage(usage: Usage, *, node_id: str, provider: str, model: str) -> None:
    """Put one model call's (or one turn's) usage on the current span.

    ``provider`` is iterloop's provider name (`anthropic`, `openai`, `scripted`) and ``model`` the
    model as the node wrote it: a `${MODEL}` reference stays one, as in history (spans leave the
    worker too, and console tracing prints them to its log). Calling it again on the same span overwrites the values, so
    call it once per span with the turn's total.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attributes({
        GEN_AI_SYSTEM: provider,
        GEN_AI_PROVIDER: provider,
        GEN_AI_OPERATION: "chat",
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_RESPONSE_MODEL: usage.model or model,
        GEN_AI_INPUT_TOKENS: usage.input_tokens,
        GEN_AI_OUTPUT_TOKENS: usage.output_tokens,
        GEN_AI_CACHE_READ_TOKENS: usage.cached_tokens,
        GEN_AI_CACHE_CREATION_TOKENS: usage.cache_write_tokens,
        ITERLOOP_NODE: node_id,
        ITERLOOP_COST_USD: usage.cost_usd,
        ITERLOOP_CACHED_TOKENS: usage.cached_tokens,
        ITERLOOP_REASONING_TOKENS: usage.reasoning_tokens,
        ITERLOOP_CACHE_SAVINGS_USD: usage.cache_savings_usd,
        ITERLOOP_CALLS: usage.calls,
    })
