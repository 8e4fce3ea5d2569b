"""The conversation of a node visit (or of a session spanning several), kept in the artifact store.

History carries only its reference (`artifact://<run>/<node>/<sha256>.json`) and each turn's few
new messages, never the whole, growing transcript. A turn loads the conversation, appends its new
messages and the model's reply, and stores the result; the store is content-addressed, so a
retried turn that gets the same reply writes nothing new.

The stored form is a JSON list of `ChatMessage` (see `workflows/messages.py`). Tool results keep
their artifact stubs there; they are resolved only when sent to a model.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from activities import artifacts
from activities.artifacts import LocalArtifactStore
from workflows.messages import ERR_BAD_REQUEST, ChatMessage, LLMTurnRequest

_MESSAGES = TypeAdapter(list[ChatMessage])

#: Sent when a node's user prompt renders to nothing (APIs refuse empty messages).
EMPTY_USER_TEXT = "(no input)"
#: The result recorded for a tool call that never got one (the conversation moved on).
MISSING_RESULT_TEXT = "error: no result (the tool was not run)"


def load(ref: str, store: LocalArtifactStore) -> list[ChatMessage]:
    """The messages stored at ``ref`` ("" = a new conversation)."""
    if not ref:
        return []
    try:
        return _MESSAGES.validate_json(store.get(ref))
    except ValidationError as exc:
        raise ApplicationError(f"conversation {ref} is not a list of chat messages: {exc.errors()[0]['msg']}",
                               type=ERR_BAD_REQUEST, non_retryable=True) from None


def save(messages: list[ChatMessage], *, run_id: str, node_id: str, store: LocalArtifactStore) -> str:
    """Store ``messages``; returns the reference (the same for the same content)."""
    data = [m.model_dump(mode="json", exclude_defaults=True) for m in messages]
    body = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return store.put(run_id, node_id, body)


def with_turn_input(req: LLMTurnRequest, history: list[ChatMessage]) -> list[ChatMessage]:
    """The conversation this turn sends: turn 1 appends the node's user prompt (after an inherited
    session's messages); every turn appends the workflow's new messages (tool results, a repair
    request)."""
    messages = list(history)
    if req.turn <= 1:
        messages.append(ChatMessage(role="user", text=req.user or EMPTY_USER_TEXT))
    messages.extend(req.new_messages)
    return messages


def paired(messages: list[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with a result for every tool call.

    APIs insist that each tool call is answered right after the assistant message that made it.
    A conversation can hold unanswered calls — a session inherited from a node whose last reply
    used tools, a reply that was repaired instead of run — so the missing results are added as
    errors the model can read.
    """
    out: list[ChatMessage] = []
    pending: list[tuple[str, str]] = []

    def flush() -> None:
        for call_id, name in pending:
            out.append(ChatMessage(role="tool", tool_call_id=call_id, tool_name=name, text=MISSING_RESULT_TEXT,
                                   is_error=True))
        pending.clear()

    for m in messages:
        if m.role == "tool":
            if any(cid == m.tool_call_id for cid, _ in pending):
                pending[:] = [(cid, n) for cid, n in pending if cid != m.tool_call_id]
                out.append(m)
            continue  # a result for no pending call would be refused by every API: drop it
        flush()
        out.append(m)
        if m.role == "assistant":
            pending = [(c.id, c.name) for c in m.tool_calls]
    flush()
    return out


def resolved(messages: list[ChatMessage], cache: dict[str, Any] | None = None) -> list[ChatMessage]:
    """``messages`` with the artifact stubs in tool results replaced by their content."""
    cache = {} if cache is None else cache
    return [m.model_copy(update={"result": artifacts.resolve(m.result, cache)}) if m.result is not None else m
            for m in messages]


def result_text(message: ChatMessage) -> str:
    """A tool result as the model reads it: the output object as JSON, or the error text."""
    if message.result is None:
        return message.text or ("error" if message.is_error else "(empty result)")
    return json.dumps(message.result, ensure_ascii=False, sort_keys=True)


def prompt_size(system: str, messages: list[ChatMessage]) -> int:
    """Characters of prompt text (for error messages about context windows)."""
    return len(system) + sum(len(m.text) + (len(json.dumps(m.result)) if m.result is not None else 0) +
                             sum(len(json.dumps(c.arguments)) for c in m.tool_calls) for m in messages)
