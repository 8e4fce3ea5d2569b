"""The `iterloop.llm_turn` activity: one model turn of one node visit.

A turn loads the conversation from the artifact store, appends this turn's messages, offers the
tools the node may use, calls the provider the model string names, and judges the reply:

- ``tool_calls``: the model asked for tools (registry names); the workflow runs them and calls
  again with their results;
- ``final``: the answer matches the output schema (or is free text for a schemaless node);
- ``invalid``: it does not (invalid JSON, a field of the wrong type, a refusal…); the workflow
  asks for a repair quoting ``invalid_reason``.

Usage and USD cost are computed per turn. The turn's additions to the conversation (its new
messages and the reply) are stored after the conversation they continue (content-addressed, see
`conversation.py`) and the new reference returned; a final answer that nothing will continue
(``keep_conversation`` false: no tool loop, no session) is not stored at all.

The worker calls `configure` once with its settings; `complete_turn` holds all the logic and
needs no activity context, so it is unit-tested directly against local fake APIs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity

from activities import artifacts
from activities.artifacts import ArtifactStore
from activities.errors import BadRequestError
from activities.llm import anthropic_provider, conversation, openai_provider
from activities.llm.anthropic_provider import AnthropicProvider
from activities.llm.mcp_tools import ToolLister, listed_mcp_tools
from activities.llm.openai_provider import OpenAIProvider
from activities.llm.pricing import price_table, turn_price_table
from activities.llm.provider import ANTHROPIC, OPENAI, SCRIPTED, ModelCall, ModelProvider, ModelReply, resolve_provider
from activities.llm.reasoning import effort_of
from activities.llm.scripted import ScriptedProvider
from activities.llm.settings import LLMSettings
from activities.llm.structured_output import (
    NEEDS_HUMAN_INPUT,
    answer_schema,
    answer_spec,
    extra_problem,
    optional_fields,
    system_instructions,
)
from activities.llm.tool_specs import node_tools, permitted_tools, tool_infos
from activities.telemetry import record_llm_usage
from workflows.contract.env_refs import expand_env
from workflows.contract.messages import LLM_TURN, LLMTurnRequest, LLMTurnResult, Usage
from workflows.contract.output_validation import find_violation, parse_json_object

#: Provider name → factory. A new provider is one module plus one line here.
PROVIDERS: dict[str, Callable[[LLMSettings], ModelProvider]] = {
    SCRIPTED: ScriptedProvider,
    ANTHROPIC: AnthropicProvider,
    OPENAI: OpenAIProvider,
}

TEXT_LIMIT = 4000  # characters of the reply kept in the result (events, failure messages)

_settings = LLMSettings()


def configure(*, offline: bool | None = None, settings: LLMSettings | None = None) -> None:
    """Set by the worker before it starts polling.

    ``settings`` None reads them from the process environment (`LLMSettings.from_env`);
    ``offline`` overrides the settings' flag. A broken price file fails here, at start-up.
    """
    global _settings
    chosen = LLMSettings.from_env(offline=offline) if settings is None else settings
    if offline is not None and chosen.offline != offline:
        chosen = replace(chosen, offline=offline)
    price_table(chosen.prices_file)  # raises PriceFileError naming the file and the problem
    _settings = chosen


def current_settings() -> LLMSettings:
    return _settings


async def close_clients() -> None:
    """Close the pooled provider clients (worker shutdown)."""
    for pool in (anthropic_provider._clients, openai_provider._clients):
        clients = list(pool.values())
        pool.clear()
        for client in clients:
            await client.close()


async def complete_turn(req: LLMTurnRequest, settings: LLMSettings | None = None, *,
                        env: Mapping[str, str] | None = None, store: ArtifactStore | None = None,
                        heartbeat: Callable[[str], None] | None = None,
                        list_mcp_tools: ToolLister | None = None) -> LLMTurnResult:
    """One model turn for ``req``: resolve the model (`${ENV}` expanded here, on the worker),
    call its provider, store the conversation and judge the reply.

    ``settings`` default to the worker's (`configure`); ``env`` to the process environment;
    ``store`` to the configured artifact store. ``heartbeat`` is called every
    ``req.heartbeat_seconds`` while the provider works. ``list_mcp_tools`` lists an MCP server's
    tools (default: the worker's server pool); scripted turns list none.
    """
    settings = _settings if settings is None else settings
    store = artifacts.store() if store is None else store
    if req.backend and not expand_env(req.model, env).strip() and not (settings.offline or req.script is not None):
        raise BadRequestError(
            f"node '{req.node_id}' uses backend '{req.backend}', which does not run for this node (a router, or "
            "not a delegation backend: validate warns with C111); set `model:` on the node so it calls the model "
            "directly")
    try:
        name = resolve_provider(req.model, script_available=req.script is not None, offline=settings.offline, env=env)
    except ValueError as e:
        raise BadRequestError(f"node '{req.node_id}': {e}") from None
    provider = PROVIDERS[name](settings)
    model = expand_env(req.model, env).strip()

    history = conversation.load(req.conversation_ref, store)
    messages = conversation.with_turn_input(req, history)
    mcp_tools = [] if name == SCRIPTED else await _beating(
        listed_mcp_tools(req, list_tools=list_mcp_tools), req.heartbeat_seconds, heartbeat,
        f"{req.node_id} · turn {req.turn}: listing MCP tools")
    defined = permitted_tools(node_tools(req, skip_unknown=name == SCRIPTED, mcp_tools=mcp_tools), req)
    offered = defined if req.allow_tools else []
    schema = answer_schema(req)
    system = "\n\n".join(part for part in (req.system, system_instructions(req)) if part)
    call = ModelCall(
        request=req, model=model, system=system,
        messages=conversation.paired(conversation.resolved(messages)),
        tools=offered, defined_tools=defined, answer=answer_spec(schema) if schema else None,
        reasoning_effort=effort_of(req), max_output_tokens=req.max_output_tokens or settings.max_output_tokens,
        prompt_caching=settings.prompt_caching, cache_key=_cache_key(system, defined),
    )
    reply = await _beating(provider.call(call), req.heartbeat_seconds, heartbeat,
                           f"{req.node_id} · turn {req.turn}: waiting for {name}")
    result = judge(req, reply)
    ref = ""
    if req.keep_conversation or result.status != "final":  # a tool loop or a repair continues it
        added = [*messages[len(history):], reply.message]
        ref = conversation.save(req.conversation_ref, added, run_id=req.run_id, node_id=req.node_id, store=store)
    # Priced with the resolved model; recorded as the node wrote it, so a `${MODEL}` value stays on
    # the worker (docs/language.md §6): usage goes to history, events and reports.
    usage = usage_of(name, model, reply, settings).model_copy(update={"model": req.model.strip() or name})
    return result.model_copy(update={"usage": usage, "conversation_ref": ref,
                                     "tools": tool_infos(offered, req.tool_approval)})


def judge(req: LLMTurnRequest, reply: ModelReply) -> LLMTurnResult:
    """The turn's status and output from the reply (usage and references are added by the caller)."""
    text = _clip(reply.text)
    if reply.tool_calls:
        if not req.allow_tools:
            return _invalid("tools are no longer available (the node's tool_max_steps budget is spent); answer now, "
                            "without calling tools", text or _calls_text(reply))
        if reply.problem:
            return _invalid(reply.problem, text or _calls_text(reply))
        return LLMTurnResult(output={}, status="tool_calls", tool_calls=reply.tool_calls, text=text)
    if reply.problem:
        return _invalid(reply.problem, text)
    schema = answer_schema(req)
    if schema is None:
        output = reply.answer if reply.answer is not None else {"text": reply.text}
        return LLMTurnResult(output=output, status="final", text=text)
    if reply.answer is not None:
        obj: dict[str, Any] | None = reply.answer
        shown = _clip(json.dumps(reply.answer, ensure_ascii=False))
    else:
        obj, problem = parse_json_object(reply.text)
        shown = text
        if obj is None:
            if reply.truncated:
                problem = "the answer was cut off at the output token limit before it was complete; answer more briefly"
            return _invalid(problem, shown)
    if req.purpose == "auto_or_pause" and obj.get(NEEDS_HUMAN_INPUT) is True:
        return LLMTurnResult(output=obj, status="final", text=shown)  # a human answers: the rest is discarded
    violation = find_violation(schema, obj, optional=optional_fields(req, schema, obj))
    if violation is not None:
        return _invalid(violation.describe(), shown)
    problem = extra_problem(req, obj)
    if problem:
        return _invalid(problem, shown)
    return LLMTurnResult(output=obj, status="final", text=shown)


def usage_of(provider: str, model: str, reply: ModelReply, settings: LLMSettings) -> Usage:
    t = reply.tokens
    unpriced = 0
    if reply.cost_usd is not None:
        cost, saved = reply.cost_usd, 0.0
    else:
        # Never a failure: the call is paid for, and a failed turn would be paid for again.
        priced = turn_price_table(settings.prices_file).cost(provider, model, t)
        cost, saved = priced.usd, priced.cache_savings_usd
        unpriced = int(priced.source == "unknown")  # costed at 0 USD: the run's cost is incomplete
    return Usage(model=model or provider, provider=provider, input_tokens=t.input_tokens, output_tokens=t.output_tokens,
                 cached_tokens=t.cached_tokens, cache_write_tokens=t.cache_write_tokens,
                 reasoning_tokens=t.reasoning_tokens, cost_usd=cost, cache_savings_usd=saved, calls=1,
                 unpriced_calls=unpriced)


def _invalid(reason: str, text: str) -> LLMTurnResult:
    return LLMTurnResult(output={}, status="invalid", invalid_reason=reason, text=text)


def _calls_text(reply: ModelReply) -> str:
    return _clip(json.dumps([c.model_dump() for c in reply.tool_calls], ensure_ascii=False))


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + f"… ({len(text) - TEXT_LIMIT} more characters)"


def _cache_key(system: str, tools: list[Any]) -> str:
    """Calls that share a prompt prefix (system prompt and tools) share a cache key."""
    digest = hashlib.sha256((system + "\x00" + "\x00".join(t.name for t in tools)).encode()).hexdigest()
    return f"iterloop:{digest[:32]}"


T = TypeVar("T")


async def _beating(work: Awaitable[T], every: float, heartbeat: Callable[[str], None] | None, detail: str) -> T:
    """Await ``work``, calling ``heartbeat(detail)`` every ``every`` seconds until it is done."""
    if every <= 0 or heartbeat is None:
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            heartbeat(detail)
    finally:
        if not task.done():
            task.cancel()


def within_activity_timeout(settings: LLMSettings, start_to_close: timedelta | None) -> LLMSettings:
    """``settings`` with the per-request timeout cut to end before the activity's own timeout
    (10 % of it, at most 30 s, earlier), so the HTTP timeout fires first and says what happened."""
    if not start_to_close:
        return settings
    total = start_to_close.total_seconds()
    limit = max(total * 0.9, total - 30.0)
    if settings.request_timeout_seconds <= limit:
        return settings
    return replace(settings, request_timeout_seconds=limit)


@activity.defn(name=LLM_TURN)
async def llm_turn(req: LLMTurnRequest) -> LLMTurnResult:
    # Large values reach us as artifact references; the model sees the real content. Only the
    # tokens the workflow placed are expanded, never token-shaped text inside a value.
    cache: dict[str, object] = {}
    tokens = req.artifact_tokens
    resolved = req.model_copy(update={"system": await artifacts.resolve_async(req.system, cache, tokens=tokens),
                                      "user": await artifacts.resolve_async(req.user, cache, tokens=tokens),
                                      "input": await artifacts.resolve_async(req.input, cache, tokens=tokens)})
    settings = within_activity_timeout(_settings, activity.info().start_to_close_timeout)
    result = await complete_turn(resolved, settings, heartbeat=activity.heartbeat)
    record_llm_usage(result.usage, node_id=req.node_id, provider=result.usage.provider, model=result.usage.model)
    output = await artifacts.offload_async(result.output, run_id=req.run_id, node_id=req.node_id,
                               threshold=req.offload_threshold_bytes)
    return result if output is result.output else result.model_copy(update={"output": output})
