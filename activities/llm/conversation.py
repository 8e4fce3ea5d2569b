"""The conversation of a node visit (or of a session spanning several), kept in the artifact store.

History carries only its reference (`artifact://<run>/<node>/<sha256>.json`) and each turn's few
new messages, never the whole, growing transcript. The store holds it the same way: each turn
stores only what it added — its new messages (the user prompt on turn 1, tool results, a repair
request) and the model's reply — with the reference of the conversation it continued:

    {"parent": "artifact://…" or "", "messages": [ChatMessage, …]}

so a conversation of n turns costs n small objects, not n growing copies. `load` follows the
parents back to the start. Objects are content-addressed, so a retried turn that gets the same
reply writes nothing new, and a session forked from a conversation shares its ancestors. Objects
written before this format (a JSON list of every message) are read as a whole conversation, so
runs already in flight continue theirs.

Tool results keep their artifact stubs in the store; they are resolved only when sent to a model.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from pydantic import TypeAdapter, ValidationError

from activities import artifacts
from activities.artifacts import ArtifactStore
from activities.errors import BadRequestError
from workflows.contract.messages import ChatMessage, LLMTurnRequest

_MESSAGES = TypeAdapter(list[ChatMessage])

#: Sent when a node's user prompt renders to nothing (APIs refuse empty messages).
EMPTY_USER_TEXT = "(no input)"
#: The result recorded for a tool call that never got one (the conversation moved on).
MISSING_RESULT_TEXT = "error: no result (the tool was not run)"

#: Loaded conversations kept in memory (stored objects never change, so they never go stale):
#: the next turn of a loop, usually on the same worker, reads one object instead of its chain.
_CACHE_SIZE = 64
_loaded: OrderedDict[tuple[str, str], tuple[ChatMessage, ...]] = OrderedDict()
_loaded_lock = threading.Lock()


def load(ref: str, store: ArtifactStore) -> list[ChatMessage]:
    """The whole conversation stored at ``ref`` ("" = a new conversation), oldest message first."""
    if not ref:
        return []
    root = store.location
    chain: list[tuple[str, list[ChatMessage]]] = []  # the objects read, newest first
    prefix: tuple[ChatMessage, ...] = ()
    current, seen = ref, set()
    while current:
        with _loaded_lock:
            cached = _loaded.get((root, current))
        if cached is not None:
            prefix = cached
            break
        if current in seen:
            raise BadRequestError(f"conversation {ref} refers back to itself through {current}")
        seen.add(current)
        parent, messages = _read(current, store)
        chain.append((current, messages))
        current = parent
    whole = prefix + tuple(m for _, messages in reversed(chain) for m in messages)
    _remember(root, ref, whole)
    return list(whole)


def save(parent: str, messages: list[ChatMessage], *, run_id: str, node_id: str, store: ArtifactStore) -> str:
    """Store ``messages`` as the continuation of the conversation at ``parent`` ("" = from the
    start); returns the new conversation's reference (the same for the same content)."""
    data = {"parent": parent, "messages": [m.model_dump(mode="json", exclude_defaults=True) for m in messages]}
    body = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ref = store.put(run_id, node_id, body)
    root = store.location
    with _loaded_lock:
        before = _loaded.get((root, parent)) if parent else ()
    if before is not None:  # the turn just loaded its parent: the next turn need not read anything
        _remember(root, ref, before + tuple(messages))
    return ref


def _read(ref: str, store: ArtifactStore) -> tuple[str, list[ChatMessage]]:
    """One stored object: its parent ("" for the first, or an old whole-conversation list) and messages."""
    problem = "expected {parent, messages} or a list of chat messages"
    try:
        data = json.loads(store.get(ref))
        if isinstance(data, list):
            return "", _MESSAGES.validate_python(data)
        if isinstance(data, dict) and set(data) == {"parent", "messages"} and isinstance(data["parent"], str):
            return data["parent"], _MESSAGES.validate_python(data["messages"])
    except ValueError as exc:  # not JSON, or messages that are not chat messages
        problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"not JSON ({exc})"
    raise BadRequestError(f"conversation {ref} cannot be read: {problem}")


def _remember(root: str, ref: str, messages: tuple[ChatMessage, ...]) -> None:
    with _loaded_lock:
        _loaded[(root, ref)] = messages
        _loaded.move_to_end((root, ref))
        while len(_loaded) > _CACHE_SIZE:
            _loaded.popitem(last=False)


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
