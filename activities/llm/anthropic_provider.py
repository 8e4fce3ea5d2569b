"""Anthropic's Messages API through the official `anthropic` SDK (async client, no SDK retries).

Translation of the neutral conversation:
- user messages → `user` text blocks; tool results → `tool_result` blocks in the next `user`
  message (consecutive messages of one role are merged, as the API wants);
- assistant messages this provider produced are replayed from their ``native`` blocks verbatim
  (thinking blocks keep their signatures, which the API checks in a tool-use loop); others are
  rebuilt from their text and tool calls;
- every `tool_use` is answered by a `tool_result` in the next user message: `conversation.paired`
  answers the calls the neutral conversation lists (a session inherited mid-loop, a repaired
  reply), and this module the ones only its native blocks hold (the answer tool's call, and
  calls made alongside it, which are not run).

Structured output is native where the model supports it (Claude 4.5 and later; the worker's
`ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT` can force either way): the answer's schema, in the strict
subset (`structured_output.strict_json_schema`), goes in `output_config.format`
(`{type: json_schema, schema}`, generally available, no beta header), so the model's final text
is constrained to JSON matching it, with or without tools (`tool_choice: auto`, or `none` when
the tool budget is spent) and with thinking on. The answer is that text, validated as usual; a
repair turn stays the fallback for what constrained decoding cannot prevent (an answer cut off
at the token limit, a rule the schema cannot express).

Otherwise (older models, a schema with free-form `json` fields, which has no strict form) it is
forced tool use: a synthetic tool, `final_answer`, whose input schema is the node's output
schema. Without other tools the model must call it (`tool_choice: tool`); with real tools offered
it must call some tool (`tool_choice: any`), and calling `final_answer` ends the loop. Extended
thinking forbids forcing a tool, so with a reasoning effort the choice is `auto` and the system
prompt asks for the answer tool (a JSON answer written as text is accepted too). A conversation
that already holds `final_answer` calls (an earlier turn, a session) keeps the tool declared,
since the API refuses `tool_use` blocks of undeclared tools.

Prompt caching: `cache_control` breakpoints on the last tool definition, on the system prompt
and on the conversation's last block, so each turn of a tool loop reads the previous turn's
prefix from the cache. Tools keep the node's declared order and the answer tool comes last, so
the prefix is stable.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from activities.errors import BadRequestError
from activities.llm.conversation import EMPTY_USER_TEXT, MISSING_RESULT_TEXT, result_text
from activities.llm.errors import context_length_error, model_error
from activities.llm.provider import ANTHROPIC, ModelCall, ModelReply, TokenCounts, api_key_or_fail, wire_name
from activities.llm.reasoning import ANTHROPIC_EFFORT, ANTHROPIC_THINKING_BUDGET, anthropic_adaptive, claude_version
from activities.llm.settings import ANTHROPIC_API_KEY_VAR, LLMSettings
from activities.llm.structured_output import strict_json_schema
from activities.llm.tool_specs import ToolNames
from workflows.contract.messages import ChatMessage, ToolCall

ANSWER_TOOL = "final_answer"
DEFAULT_BASE_URL = "https://api.anthropic.com"
ANSWER_RECEIVED = "Answer received."
_EPHEMERAL = {"type": "ephemeral"}

_clients: dict[tuple[str, str, float], anthropic.AsyncAnthropic] = {}


def client_for(base_url: str, api_key: str, timeout: float) -> anthropic.AsyncAnthropic:
    """One client per (base URL, key): connections are pooled across turns."""
    key = (base_url, api_key, timeout)
    if key not in _clients:
        _clients[key] = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)
    return _clients[key]


class AnthropicProvider:
    name = ANTHROPIC

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.base_url = settings.anthropic_base_url or DEFAULT_BASE_URL

    async def call(self, call: ModelCall) -> ModelReply:
        api_key = api_key_or_fail(self.settings.anthropic_api_key, base_url=self.settings.anthropic_base_url,
                                  provider="Anthropic", key_var=ANTHROPIC_API_KEY_VAR, node_id=call.request.node_id)
        params = request_params(call, structured_output=self.settings.anthropic_structured_output)
        client = client_for(self.base_url, api_key, self.settings.request_timeout_seconds)
        try:
            message = await client.messages.create(**params)
        except Exception as exc:
            err = model_error(exc, call, provider=ANTHROPIC, base_url=self.base_url, key_var=ANTHROPIC_API_KEY_VAR)
            if err is None:
                raise
            raise err from None
        return parse_message(call, message.model_dump(mode="json"))


# -- request -----------------------------------------------------------------------------------

def native_output_supported(model_id: str) -> bool:
    """Whether the Messages API takes `output_config.format` for this model: Claude 4.5 and later
    (`claude-haiku-4-5`, `claude-sonnet-4-5`, `claude-opus-4-5`, 4.6…); unknown names: no."""
    version = claude_version(model_id)
    return version is not None and version >= (4, 5)


def native_schema(call: ModelCall, structured_output: str = "auto") -> dict[str, Any] | None:
    """The strict JSON schema to send as `output_config.format`, or None when the turn uses the
    answer tool instead (no schema; an older model; a schema with no strict form; `tool` mode)."""
    if call.answer is None or structured_output == "tool":
        return None
    if structured_output == "auto" and not native_output_supported(call.model_id):
        return None
    return strict_json_schema(call.answer.json_schema)


def request_params(call: ModelCall, *, structured_output: str = "auto") -> dict[str, Any]:
    """The `messages.create` arguments for ``call`` (pure, so tests can inspect them).
    ``structured_output`` is the worker's `ITERLOOP_ANTHROPIC_STRUCTURED_OUTPUT` (auto | native | tool)."""
    if call.answer and any(wire_name(t.name) == ANSWER_TOOL for t in call.defined_tools):
        raise BadRequestError(f"node '{call.request.node_id}': a tool named '{ANSWER_TOOL}' clashes with the answer "
                               "tool iterloop adds for structured output; rename the tool")
    schema = native_schema(call, structured_output)
    messages = wire_messages(call.messages)
    tools: list[dict[str, Any]] = [{"name": wire_name(t.name), "description": t.description,
                                    "input_schema": t.parameters} for t in call.defined_tools]
    # Native: the answer tool is declared only for a conversation that already called it (the API
    # refuses tool_use blocks of undeclared tools); it is never forced, and its input still counts.
    answer_tool = call.answer is not None and (schema is None or _calls_answer_tool(messages))
    if answer_tool and call.answer:
        tools.append({"name": ANSWER_TOOL, "input_schema": call.answer.json_schema,
                      "description": f"Give your final answer ({call.answer.name}). Call this once, when you are done; "
                                     "its input is the answer."})
    budget = ANTHROPIC_THINKING_BUDGET.get(call.reasoning_effort, 0)
    offered = bool(call.tools)
    params: dict[str, Any] = {"model": call.model_id, "max_tokens": call.max_output_tokens + budget,
                              "messages": messages}
    system = call.system
    if call.answer and schema is None:
        system = (system + "\n\n" if system else "") + (
            f"When you have the answer, give it by calling the `{ANSWER_TOOL}` tool; do not write it as text.")
    elif schema is not None and call.defined_tools:  # not `offered`: the prefix stays cacheable
        system = (system + "\n\n" if system else "") + (
            "Use the tools as you need; when you have the answer, reply with it as the JSON object the response "
            "format asks for.")
    if system:
        block: dict[str, Any] = {"type": "text", "text": system}
        if call.prompt_caching:
            block["cache_control"] = dict(_EPHEMERAL)
        params["system"] = [block]
    if tools:
        if call.prompt_caching:
            tools[-1] = {**tools[-1], "cache_control": dict(_EPHEMERAL)}
        params["tools"] = tools
        if schema is not None:
            params["tool_choice"] = {"type": "auto"} if offered else {"type": "none"}
        elif call.answer and budget:
            params["tool_choice"] = {"type": "auto"}  # thinking forbids forcing a tool
        elif call.answer:
            params["tool_choice"] = {"type": "any"} if offered else {"type": "tool", "name": ANSWER_TOOL}
        else:
            params["tool_choice"] = {"type": "auto"} if offered else {"type": "none"}
    output_config: dict[str, Any] = {}
    if budget and anthropic_adaptive(call.model_id):
        params["thinking"] = {"type": "adaptive"}
        output_config["effort"] = ANTHROPIC_EFFORT[call.reasoning_effort]
    elif budget:
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": schema}
    if output_config:
        params["output_config"] = output_config
    if call.prompt_caching and params["messages"]:
        last = params["messages"][-1]["content"][-1]
        if last.get("type") in ("text", "tool_result"):
            last["cache_control"] = dict(_EPHEMERAL)
    return params


def _calls_answer_tool(turns: list[dict[str, Any]]) -> bool:
    return any(b.get("type") == "tool_use" and b.get("name") == ANSWER_TOOL
               for t in turns if t["role"] == "assistant" for b in t["content"])


def wire_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The neutral conversation (tool calls already paired with results by `conversation.paired`)
    as Messages API turns."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant":
            blocks = _assistant_blocks(m)
            _append(out, "assistant", blocks)
            _append(out, "user", _unlisted_tool_results(m, blocks))
        elif m.role == "tool":
            _append(out, "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": result_text(m),
                                   "is_error": m.is_error}])
        else:
            _append(out, "user", [{"type": "text", "text": m.text or EMPTY_USER_TEXT}])
    return out


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add ``blocks`` as a ``role`` turn, merged into the last turn when it has that role (the API
    wants the roles to alternate)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _assistant_blocks(m: ChatMessage) -> list[dict[str, Any]]:
    if m.provider == ANTHROPIC and m.native:
        return [dict(b) for b in m.native]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
    blocks += [{"type": "tool_use", "id": c.id, "name": wire_name(c.name), "input": c.arguments}
               for c in m.tool_calls]
    return blocks or [{"type": "text", "text": "(no reply)"}]


def _unlisted_tool_results(m: ChatMessage, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results for the `tool_use` blocks replayed from ``native`` that the neutral message does not
    list as tool calls, so `conversation.paired` never answered them: the `final_answer` call
    (answered as received) and calls made alongside it, which were not run. They go first in the
    next user turn, where the API wants a `tool_use`'s result."""
    listed = {c.id for c in m.tool_calls}
    return [{"type": "tool_result", "tool_use_id": b["id"],
             **({"content": ANSWER_RECEIVED} if b.get("name") == ANSWER_TOOL
                else {"content": MISSING_RESULT_TEXT, "is_error": True})}
            for b in blocks if b.get("type") == "tool_use" and b.get("id") not in listed]


# -- response ----------------------------------------------------------------------------------

def parse_message(call: ModelCall, message: dict[str, Any]) -> ModelReply:
    """A Messages API response (as JSON) as a neutral reply."""
    names = ToolNames(call.defined_tools)
    blocks = [_native_block(b) for b in message.get("content") or []]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    answer: dict[str, Any] | None = None
    calls: list[ToolCall] = []
    for b in blocks:
        if b["type"] != "tool_use":
            continue
        if b["name"] == ANSWER_TOOL and call.answer is not None:
            if answer is None:
                answer = dict(b.get("input") or {})
        else:
            calls.append(ToolCall(id=b["id"], name=names.registry_name(b["name"]), arguments=dict(b.get("input") or {})))
    if answer is not None:
        calls = []  # the answer ends the loop; tool calls made alongside it are not run
    stop = message.get("stop_reason")
    if stop == "model_context_window_exceeded":
        raise context_length_error(call, where=f"node '{call.request.node_id}' (anthropic model '{call.shown_model}')",
                                   detail="stop_reason model_context_window_exceeded")
    usage = message.get("usage") or {}
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    details = usage.get("output_tokens_details") or {}
    tokens = TokenCounts(input_tokens=(usage.get("input_tokens") or 0) + cached + written,
                         output_tokens=usage.get("output_tokens") or 0, cached_tokens=cached,
                         cache_write_tokens=written, reasoning_tokens=details.get("thinking_tokens") or 0)
    shown = json.dumps(answer, ensure_ascii=False) if answer is not None else text
    reply_message = ChatMessage(role="assistant", text=shown, tool_calls=calls, provider=ANTHROPIC, native=blocks)
    problem = "the model refused to answer" + (f": {text}" if text else "") if stop == "refusal" else ""
    return ModelReply(message=reply_message, text=shown, tool_calls=calls, answer=answer, tokens=tokens,
                      truncated=stop == "max_tokens", problem=problem)


def _native_block(block: dict[str, Any]) -> dict[str, Any]:
    """A content block as the API accepts it back (response-only fields dropped)."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": block.get("input") or {}}
    return {k: v for k, v in block.items() if v is not None}
