"""OpenAI (and OpenAI-compatible servers) through the official `openai` SDK (async client, no SDK
retries), on either wire format:

- **Chat Completions** (`POST /chat/completions`), the default: what OpenAI-compatible servers
  (vLLM, Ollama, LiteLLM, Azure-style gateways…) implement;
- **Responses** (`POST /responses`): for `openai-responses/<model>` model strings, or for every
  `openai/…` model when the worker sets `ITERLOOP_OPENAI_API=responses`. Requests are sent with
  `store: false` (iterloop keeps the conversation itself).

Structured output uses the JSON-schema response format (`response_format` / `text.format`),
strict when the schema allows it (no free-form `json` fields). Tools are functions; tool calls
and their results are paired as the APIs require. A turn whose tool budget is spent still
declares the tools, with `tool_choice: none`, so the prompt prefix stays the same and OpenAI's
automatic prompt caching keeps hitting; `prompt_cache_key` groups a node's calls on one cache.
Reasoning models (`o1/o3/o4/gpt-5…`) get `reasoning_effort` and a `developer` system message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import openai

from activities.llm.conversation import result_text
from activities.llm.errors import model_error
from activities.llm.provider import (
    OPENAI,
    OPENAI_RESPONSES_PREFIX,
    ModelCall,
    ModelReply,
    TokenCounts,
    api_key_or_fail,
    wire_name,
)
from activities.llm.reasoning import ANTHROPIC_THINKING_BUDGET, OPENAI_EFFORT, openai_reasons
from activities.llm.settings import OPENAI_API_KEY_VAR, LLMSettings
from activities.llm.tool_specs import ToolNames
from workflows.contract.messages import ChatMessage, ToolCall

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_clients: dict[tuple[str, str, float], openai.AsyncOpenAI] = {}


def client_for(base_url: str, api_key: str, timeout: float) -> openai.AsyncOpenAI:
    """One client per (base URL, key): connections are pooled across turns."""
    key = (base_url, api_key, timeout)
    if key not in _clients:
        _clients[key] = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)
    return _clients[key]


def uses_responses_api(model: str, settings: LLMSettings) -> bool:
    return model.lower().startswith(OPENAI_RESPONSES_PREFIX) or settings.openai_api == "responses"


class OpenAIProvider:
    name = OPENAI

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.base_url = settings.openai_base_url or DEFAULT_BASE_URL

    async def call(self, call: ModelCall) -> ModelReply:
        api_key = api_key_or_fail(self.settings.openai_api_key, base_url=self.settings.openai_base_url,
                                  provider="OpenAI", key_var=OPENAI_API_KEY_VAR, node_id=call.request.node_id)
        client = client_for(self.base_url, api_key, self.settings.request_timeout_seconds)
        responses = uses_responses_api(call.model, self.settings)
        try:
            if responses:
                response = await client.responses.create(**responses_params(call))
            else:
                response = await client.chat.completions.create(**chat_params(call))
        except Exception as exc:
            err = model_error(exc, call, provider=OPENAI, base_url=self.base_url, key_var=OPENAI_API_KEY_VAR)
            if err is None:
                raise
            raise err from None
        data = response.model_dump(mode="json")
        return parse_response(call, data) if responses else parse_chat_completion(call, data)


# -- shared ------------------------------------------------------------------------------------

def _common(call: ModelCall) -> tuple[bool, str]:
    reasons = openai_reasons(call.model_id)
    effort = OPENAI_EFFORT.get(call.reasoning_effort, "") if reasons else ""
    return reasons, effort


def _max_tokens(call: ModelCall, effort: str) -> int:
    # Reasoning tokens count towards the limit: give them the same budget Anthropic's thinking gets.
    return call.max_output_tokens + (ANTHROPIC_THINKING_BUDGET.get(call.reasoning_effort, 0) if effort else 0)


def cache_key(call: ModelCall) -> str:
    key = call.cache_key or f"iterloop:{call.request.node_id}"
    return key if len(key) <= 64 else "iterloop:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _tool_choice(call: ModelCall) -> str | None:
    if call.tools:
        return "auto"
    return "none" if call.defined_tools else None


def _arguments(raw: str | None, name: str) -> tuple[dict[str, Any], str]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as e:
        return {}, f"the arguments of the call to tool '{name}' are not valid JSON ({e.msg}): {raw!r}"
    if not isinstance(value, dict):
        return {}, f"the arguments of the call to tool '{name}' are not a JSON object: {raw!r}"
    return value, ""


# -- Chat Completions --------------------------------------------------------------------------

def chat_params(call: ModelCall) -> dict[str, Any]:
    """The `chat.completions.create` arguments for ``call`` (pure, so tests can inspect them)."""
    reasons, effort = _common(call)
    messages: list[dict[str, Any]] = []
    if call.system:
        messages.append({"role": "developer" if reasons else "system", "content": call.system})
    for m in call.messages:
        if m.role == "user":
            messages.append({"role": "user", "content": m.text})
        elif m.role == "tool":
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": result_text(m)})
        else:
            msg: dict[str, Any] = {"role": "assistant", "content": m.text or ("" if not m.tool_calls else None)}
            if m.tool_calls:
                msg["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": wire_name(c.name), "arguments": json.dumps(c.arguments)}}
                                     for c in m.tool_calls]
            messages.append(msg)
    params: dict[str, Any] = {"model": call.model_id, "messages": messages,
                              "max_completion_tokens": _max_tokens(call, effort)}
    if call.defined_tools:
        params["tools"] = [{"type": "function", "function": {"name": wire_name(t.name), "description": t.description,
                                                             "parameters": t.parameters}}
                           for t in call.defined_tools]
        params["tool_choice"] = _tool_choice(call)
    if call.answer:
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": call.answer.name, "schema": call.answer.json_schema, "strict": call.answer.strict}}
    if effort:
        params["reasoning_effort"] = effort
    if call.prompt_caching:
        params["prompt_cache_key"] = cache_key(call)
    return params


def parse_chat_completion(call: ModelCall, data: dict[str, Any]) -> ModelReply:
    names = ToolNames(call.defined_tools)
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = message.get("content") or ""
    calls: list[ToolCall] = []
    problems: list[str] = []
    for c in message.get("tool_calls") or []:
        fn = c.get("function") or {}
        name = names.registry_name(fn.get("name", ""))
        args, problem = _arguments(fn.get("arguments"), name)
        if problem:
            problems.append(problem)
        calls.append(ToolCall(id=c.get("id") or f"call_{len(calls)}", name=name, arguments=args))
    if message.get("refusal"):
        problems.append(f"the model refused to answer: {message['refusal']}")
    if choice.get("finish_reason") == "content_filter":
        problems.append("the provider's content filter stopped the answer")
    usage = data.get("usage") or {}
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    tokens = TokenCounts(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0,
                         cached_tokens=prompt.get("cached_tokens") or 0,
                         cache_write_tokens=prompt.get("cache_write_tokens") or 0,
                         reasoning_tokens=completion.get("reasoning_tokens") or 0)
    reply = ChatMessage(role="assistant", text=text, tool_calls=calls, provider=OPENAI)
    return ModelReply(message=reply, text=text, tool_calls=calls, tokens=tokens,
                      truncated=choice.get("finish_reason") == "length", problem="; ".join(problems))


# -- Responses ---------------------------------------------------------------------------------

def responses_params(call: ModelCall) -> dict[str, Any]:
    """The `responses.create` arguments for ``call`` (pure, so tests can inspect them)."""
    _, effort = _common(call)
    items: list[dict[str, Any]] = []
    for m in call.messages:
        if m.role == "user":
            items.append({"role": "user", "content": m.text})
        elif m.role == "tool":
            items.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": result_text(m)})
        else:
            if m.text:
                items.append({"role": "assistant", "content": m.text})
            items += [{"type": "function_call", "call_id": c.id, "name": wire_name(c.name),
                       "arguments": json.dumps(c.arguments)} for c in m.tool_calls]
    params: dict[str, Any] = {"model": call.model_id, "input": items, "store": False,
                              "max_output_tokens": _max_tokens(call, effort)}
    if call.system:
        params["instructions"] = call.system
    if call.defined_tools:
        params["tools"] = [{"type": "function", "name": wire_name(t.name), "description": t.description,
                            "parameters": t.parameters, "strict": False} for t in call.defined_tools]
        params["tool_choice"] = _tool_choice(call)
    if call.answer:
        params["text"] = {"format": {"type": "json_schema", "name": call.answer.name,
                                     "schema": call.answer.json_schema, "strict": call.answer.strict}}
    if effort:
        params["reasoning"] = {"effort": effort}
    if call.prompt_caching:
        params["prompt_cache_key"] = cache_key(call)
    return params


def parse_response(call: ModelCall, data: dict[str, Any]) -> ModelReply:
    names = ToolNames(call.defined_tools)
    texts: list[str] = []
    calls: list[ToolCall] = []
    problems: list[str] = []
    for item in data.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text") or "")
                elif part.get("type") == "refusal":
                    problems.append(f"the model refused to answer: {part.get('refusal', '')}")
        elif kind == "function_call":
            name = names.registry_name(item.get("name", ""))
            args, problem = _arguments(item.get("arguments"), name)
            if problem:
                problems.append(problem)
            calls.append(ToolCall(id=item.get("call_id") or item.get("id") or f"call_{len(calls)}", name=name,
                                  arguments=args))
    if data.get("status") == "failed" and data.get("error"):
        problems.append(f"the response failed: {data['error'].get('message', data['error'])}")
    incomplete = (data.get("incomplete_details") or {}).get("reason", "")
    if incomplete == "content_filter":
        problems.append("the provider's content filter stopped the answer")
    usage = data.get("usage") or {}
    inp = usage.get("input_tokens_details") or {}
    out = usage.get("output_tokens_details") or {}
    tokens = TokenCounts(input_tokens=usage.get("input_tokens") or 0, output_tokens=usage.get("output_tokens") or 0,
                         cached_tokens=inp.get("cached_tokens") or 0, cache_write_tokens=inp.get("cache_write_tokens") or 0,
                         reasoning_tokens=out.get("reasoning_tokens") or 0)
    text = "".join(texts)
    reply = ChatMessage(role="assistant", text=text, tool_calls=calls, provider=OPENAI)
    return ModelReply(message=reply, text=text, tool_calls=calls, tokens=tokens,
                      truncated=incomplete == "max_output_tokens", problem="; ".join(problems))
