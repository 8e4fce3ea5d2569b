"""An agent's `max_tokens` (Iterion's property) reaches its model calls as their output limit."""

from __future__ import annotations

import json
from typing import Any

from runs import events_with, finish, running_worker, start

SRC = '''
agent writer:
  model: "anthropic/claude-test"
  max_tokens: 300
workflow w:
  entry: writer
  writer -> done
'''


async def test_an_agents_max_tokens_is_its_model_calls_limit(temporal_env: Any, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, SRC, script={})
        await finish(handle)
        history = await handle.fetch_history()
    [turn] = [e for e in events_with(history, "activity_task_scheduled_event_attributes")
              if e.activity_type.name == "iterloop.llm_turn"]
    request = json.loads(turn.input.payloads[0].data)
    assert request["max_output_tokens"] == 300
