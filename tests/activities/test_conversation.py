"""How a conversation is stored: each turn adds one small object holding only what it added, linked
to the conversation it continued; a final answer nothing continues is not stored; objects of the
older whole-list format still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.artifacts import LocalArtifactStore
from activities.llm import conversation
from activities.llm.activity import complete_turn
from activities.llm.settings import LLMSettings
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import ChatMessage, LLMTurnRequest, LLMTurnResult

ANSWER = Schema(name="answer", fields=[SchemaField(name="summary", type="string")])
LOOP = {"analyst": {"turns": [{"tool_calls": [{"name": "sum_values", "arguments": {"values": [1, 2]}}]},
                              {"reply_text": "not json"},
                              {"summary": "done"}]}}


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


async def turn(store: LocalArtifactStore, **kw: Any) -> LLMTurnResult:
    req = LLMTurnRequest(**{"run_id": "run-c", "node_id": "analyst", "node_kind": "agent", "model": "scripted",
                            "user": "Find the drop.", "output_schema": ANSWER, "script": LOOP, "tools": ["sum_values"],
                            **kw})
    return await complete_turn(req, LLMSettings(), store=store)


def stored(store: LocalArtifactStore, ref: str) -> Any:
    return json.loads(store.get(ref))


def objects(store: LocalArtifactStore) -> list[Path]:
    return sorted(store.root.rglob("*.json"))


async def three_turns(store: LocalArtifactStore, **kw: Any) -> list[LLMTurnResult]:
    first = await turn(store, **kw)
    result = ChatMessage(role="tool", tool_call_id=first.tool_calls[0].id, tool_name="sum_values", result={"total": 3})
    second = await turn(store, turn=2, conversation_ref=first.conversation_ref, new_messages=[result], **kw)
    repair = ChatMessage(role="user", text="Answer with JSON.")
    third = await turn(store, turn=3, conversation_ref=second.conversation_ref, new_messages=[repair], **kw)
    return [first, second, third]


async def test_each_turn_stores_only_what_it_added_after_its_parent(store: LocalArtifactStore) -> None:
    first, second, third = await three_turns(store)

    assert stored(store, first.conversation_ref)["parent"] == ""
    assert stored(store, second.conversation_ref)["parent"] == first.conversation_ref
    assert stored(store, third.conversation_ref)["parent"] == second.conversation_ref
    added = [[m["role"] for m in stored(store, r.conversation_ref)["messages"]] for r in (first, second, third)]
    assert added == [["user", "assistant"], ["tool", "assistant"], ["user", "assistant"]]
    assert len(objects(store)) == 3


async def test_a_conversation_loads_whole_by_following_its_parents(store: LocalArtifactStore) -> None:
    *_, third = await three_turns(store)
    conversation._loaded.clear()  # a worker that did not run the earlier turns

    whole = conversation.load(third.conversation_ref, store)

    assert [m.role for m in whole] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert whole[0].text == "Find the drop." and whole[2].result == {"total": 3}
    assert conversation.load(third.conversation_ref, LocalArtifactStore(store.root)) == whole


async def test_a_final_answer_nothing_continues_is_not_stored(store: LocalArtifactStore) -> None:
    single = await turn(store, script={"analyst": {"summary": "at once"}}, keep_conversation=False)
    assert single.status == "final" and single.conversation_ref == "" and objects(store) == []


async def test_turns_that_a_loop_or_a_repair_continues_are_stored_anyway(store: LocalArtifactStore) -> None:
    first, second, third = await three_turns(store, keep_conversation=False)
    assert (first.status, second.status, third.status) == ("tool_calls", "invalid", "final")
    assert first.conversation_ref and second.conversation_ref and third.conversation_ref == ""
    assert len(objects(store)) == 2


async def test_a_conversation_stored_as_a_whole_list_by_an_older_worker_is_continued(
        store: LocalArtifactStore) -> None:
    old = [ChatMessage(role="user", text="Find the drop."),
           ChatMessage(role="assistant", tool_calls=[{"id": "c1", "name": "sum_values", "arguments": {}}])]
    old_ref = store.put("run-c", "analyst", json.dumps([m.model_dump(mode="json") for m in old]).encode())
    result = ChatMessage(role="tool", tool_call_id="c1", tool_name="sum_values", result={"total": 3})

    second = await turn(store, turn=2, conversation_ref=old_ref, new_messages=[result])

    assert stored(store, second.conversation_ref)["parent"] == old_ref
    conversation._loaded.clear()
    assert [m.role for m in conversation.load(second.conversation_ref, store)] == ["user", "assistant", "tool",
                                                                                   "assistant"]


def test_an_object_that_is_no_conversation_is_a_permanent_error(store: LocalArtifactStore) -> None:
    ref = store.put("run-c", "analyst", b'{"parent": "", "turns": []}')
    with pytest.raises(ApplicationError) as info:
        conversation.load(ref, store)
    assert info.value.non_retryable and f"conversation {ref} cannot be read" in str(info.value)
