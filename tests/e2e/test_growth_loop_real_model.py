"""The growth loop with a real model provider: the official Anthropic client, pointed at a local
server that speaks the Messages API (tests/fakes), answering each agent with the text of the
offline script. No `--script`, no `--offline`: what runs is what runs with ANTHROPIC_API_KEY set.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from cli_harness import Cli, cli_env
from e2e.test_growth_loop import FIRST_FLAG, LOOP, SCRIPT, inspect, preset
from fakes.llm_servers import FakeAnthropic, Recorded, Reply

ROLES = {"You are the Analyst": "analyst", "You are the Planner": "planner", "You are the Critic": "critic",
         "You are the Synthesizer": "synthesizer"}


def agent_of(request: Recorded) -> str:
    system = json.dumps(request.body.get("system"))
    return next(role for marker, role in ROLES.items() if marker in system)


@pytest.fixture
def anthropic() -> Any:
    script = yaml.safe_load(Path(SCRIPT).read_text())

    def answer(request: Recorded) -> Reply:
        out = script[agent_of(request)]
        return Reply(answer=out[0] if isinstance(out, list) else out, input_tokens=1200, output_tokens=150)

    with FakeAnthropic() as server:
        server.default = answer
        yield server


@pytest_asyncio.fixture
async def cli(temporal_env: Any, task_queue: str, tmp_path: Path, anthropic: Any,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cli]:
    """The CLI, with a worker (real providers, not offline) whose environment has the API key."""
    from worker import build_worker

    for name, value in {**anthropic.env(), "ITERLOOP_OFFLINE": ""}.items():
        monkeypatch.setenv(name, value)
    address = temporal_env.client.service_client.config.target_host
    async with build_worker(temporal_env.client, task_queue, offline=False, artifact_dir=tmp_path / "artifacts"):
        yield Cli(cli_env(address, task_queue, tmp_path / ".iterloop"), tmp_path)


async def test_the_loop_runs_on_a_real_provider_with_the_presets_models(cli: Cli, anthropic: Any) -> None:
    run = f"loop-{uuid.uuid4().hex[:6]}"
    result = await cli("run", LOOP, "--config", preset(cli, cycles=1), "--skip-gates", "--run-id", run, timeout=120)
    assert result.code == 0, result.out + result.err
    assert "(scripted model)" not in result.out

    calls = [(agent_of(r), r.body["model"], sorted(t["name"] for t in r.body.get("tools", []))) for r in anthropic.requests]
    # One call per agent visit; the preset's model; read-only tools offered, nothing that changes anything.
    assert [c[0] for c in calls] == ["analyst", "planner", "critic", "synthesizer"]
    assert {c[1] for c in calls} == {"claude-sonnet-4-6"}
    offered = {name for c in calls for name in c[2]}
    assert {"get_funnel_data", "detect_anomalies", "get_historical_experiments", "calculate_sample_size"} <= offered
    assert not offered & {"create_feature_flag", "write_learning_doc"}

    doc = await inspect(cli, run)
    verdict = doc["outputs"]["significance"]
    # The models received the tools' numbers, and the loop acted on the tool's verdict.
    critic_prompt = json.dumps(anthropic.requests[2].body["messages"])
    assert verdict["headline"] in critic_prompt and verdict["decision"] == "SHIP_WINNER"
    assert doc["outputs"]["executor"]["flag_key"] == FIRST_FLAG
    assert doc["usage"]["provider"] == "anthropic" and doc["usage"]["calls"] == 4
