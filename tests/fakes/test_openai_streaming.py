"""The OpenAI fake streams Responses when asked (`"stream": true`), as the Codex CLI asks: the
official `openai` client reads the events back into the same response a plain request gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from fakes.llm_servers import TEST_API_KEY, Failure, FakeOpenAI, Reply, ToolUse

ASK: dict[str, Any] = {"model": "gpt-5", "input": "Fix the checkout funnel"}
TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command.", "strict": False,
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=TEST_API_KEY) as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=TEST_API_KEY, max_retries=0)


def test_events_come_in_the_documented_order(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue(Reply(text="Looking at the funnel now.", tool_calls=[ToolUse("exec_command", {"cmd": "ls"})]))
    events = list(client.responses.create(**ASK, tools=TOOLS, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 2
    assert {"response.output_text.delta", "response.function_call_arguments.delta"} <= set(kinds)
    assert events[0].response.output == [] and events[0].response.status == "in_progress"


def test_a_streamed_response_accumulates_to_the_plain_response(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    reply = Reply(text="The mobile checkout step loses a third of its visitors.", thinking="Compare the steps.",
                  tool_calls=[ToolUse("exec_command", {"cmd": "cat funnel.csv | head -n 40"}, id="call_same")],
                  input_tokens=1200, cached_tokens=1000, output_tokens=90, reasoning_tokens=20)
    fake.queue(reply, reply)
    plain = client.responses.create(**ASK, tools=TOOLS)
    with client.responses.stream(**ASK, tools=TOOLS) as stream:
        streamed = stream.get_final_response()
    assert fake.requests[1].body["stream"] is True
    assert [i.type for i in streamed.output] == ["reasoning", "message", "function_call"]
    assert streamed.output_text == plain.output_text and streamed.output[2].arguments == plain.output[2].arguments
    assert streamed.usage == plain.usage and streamed.usage.input_tokens_details.cached_tokens == 1000


def test_a_truncated_answer_ends_incomplete(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue(Reply(text="cut off", stop="length"))
    events = list(client.responses.create(**ASK, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_a_failure_stays_a_json_error_before_any_event(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue(Failure.rate_limited(retry_after=7))
    with pytest.raises(openai.RateLimitError) as info:
        client.responses.create(**ASK, stream=True)
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "7"


def test_a_plain_request_still_gets_json(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue(Reply(text="hi"))
    raw = client.responses.with_raw_response.create(**ASK)
    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().output_text == "hi"
