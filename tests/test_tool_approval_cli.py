"""`tool_approval:` through the CLI: `--skip-gates` leaves a tool call waiting, and `iterloop
answer` edits its arguments as FIELD=VALUE text (the real CLI in a subprocess, an offline worker
with the scripted model on the dev server)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from cli_harness import Cli

WORKFLOW = """\
schema finding:
  summary: string

agent analyst:
  model: "scripted"
  output: finding
  tools: [sum_values]
  tool_approval: [sum_values]

workflow approving:
  entry: analyst
  analyst -> done
"""

SCRIPT = """\
analyst:
  turns:
    - tool_calls: [{name: sum_values, arguments: {values: [1, 2]}}]
    - {summary: "summed"}
"""


async def inspect_json(cli: Cli, run_id: str) -> dict[str, Any]:
    result = await cli("inspect", run_id, "--json")
    assert result.code == 0, result.err
    return result.json()


async def until_finished(cli: Cli, run_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = await inspect_json(cli, run_id)
        if doc["status"] == "finished":
            return doc
        assert time.monotonic() < deadline, f"run {run_id} still {doc['status']}"
        await asyncio.sleep(0.2)


async def test_skip_gates_stops_at_a_tool_call_that_iterloop_answer_then_edits(cli: Cli) -> None:
    cli.write("approving.iter", WORKFLOW)
    cli.write("script.yaml", SCRIPT)
    started = await cli("run", "approving.iter", "--script", "script.yaml", "--skip-gates", "--run-id", "ta-cli")
    assert started.code == 3, started.out + started.err  # waiting for a person: --skip-gates approved nothing
    gate = (await inspect_json(cli, "ta-cli"))["open_gates"][0]
    assert gate["gate"] == "analyst" and gate["questions"] == {"tool": "sum_values", "arguments": {"values": [1, 2]}}
    answered = await cli("answer", "ta-cli", "--gate", "analyst", "--answer", "decision=edit",
                         "--answer", 'arguments={"values": [5, 6]}', "--by", "ada")
    assert answered.code == 0, answered.err
    await until_finished(cli, "ta-cli")
    events = await cli("events", "ta-cli", "--json")
    assert events.code == 0, events.err
    reviewed = [e["data"] for e in map(json.loads, events.out.splitlines()) if e["type"] == "tool_call_reviewed"]
    assert reviewed == [{"tool": "sum_values", "decision": "edited", "by": "ada", "arguments": {"values": [5, 6]}}]
