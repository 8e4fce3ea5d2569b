"""The Anthropic fake streams when asked (`"stream": true`), as the Claude Code CLI asks: the
official `anthropic` client reads the events back into the same message a plain request gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from fakes.llm_servers import TEST_API_KEY, Failure, FakeAnthropic, Reply, ToolUse

ASK: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 1024,
                       "messages": [{"role": "user", "content": "Write an .iter workflow"}]}
TOOLS = [{"name": "Skill", "description": "Invoke a skill.",
          "input_schema": {"type": "object", "properties": {"skill": {"type": "string"}}}}]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=TEST_API_KEY) as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.base_url, api_key=TEST_API_KEY, max_retries=0)


def test_events_come_in_the_documented_order(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue(Reply(text="workflow growth { }", tool_calls=[ToolUse("Skill", {"skill": "iterloop"})]))
    events = list(client.messages.create(**ASK, tools=TOOLS, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert set(deltas) == {"text_delta", "input_json_delta"}
    assert events[0].message.content == [] and events[0].message.stop_reason is None


def test_a_streamed_answer_accumulates_to_the_plain_answer(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    reply = Reply(text="A workflow that plans, runs and reviews an experiment, step by step.",
                  thinking="The user wants a loop.",
                  tool_calls=[ToolUse("Skill", {"skill": "iterloop", "args": "x" * 40}, id="toolu_same")],
                  input_tokens=1200, cached_tokens=1000, output_tokens=90)
    fake.queue(reply, reply)
    plain = client.messages.create(**ASK, tools=TOOLS)
    with client.messages.stream(**ASK, tools=TOOLS) as stream:
        streamed = stream.get_final_message()
    assert fake.requests[1].body["stream"] is True
    assert streamed.model_dump(exclude={"id"}) == plain.model_dump(exclude={"id"})
    assert [b.type for b in streamed.content] == ["thinking", "text", "tool_use"]
    assert streamed.stop_reason == "tool_use" and streamed.usage.cache_read_input_tokens == 1000


def test_a_failure_stays_a_json_error_before_any_event(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue(Failure.overloaded())
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(**ASK, stream=True)
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"


def test_a_plain_request_still_gets_json(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue(Reply(text="hi"))
    raw = client.messages.with_raw_response.create(**ASK)
    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().content[0].text == "hi"
