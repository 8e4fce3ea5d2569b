"""A tool call waiting for approval (`tool_approval:`) answered from Slack: the run posts the call
to a local Slack Web API, a signed Reject click opens a modal for the message to the model, and its
submission answers the opening on the real dev server (scripted model, real API app over ASGI)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from fakes.slack import FakeSlack
from runs import compile_ok, finish, poll, running_worker, wait_for
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.notify import NotifyConfig
from api.app import create_app
from api.settings import ApiSettings, ApiToken
from runtime.settings import Settings
from workflows.contract.slack_blocks import ACTIONS_BLOCK
from workflows.contract.state import WORKFLOW_TYPE, Event, NotifyOptions, RunInput, RunOptions, RunResult

SIGNING_SECRET = "iterloop-slack-signing-secret"
USER = {"id": "U42ADA", "username": "ada", "name": "ada", "team_id": "T1"}

SRC = """
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
SCRIPT = {"analyst": {"turns": [{"tool_calls": [{"name": "sum_values", "arguments": {"values": [1, 2]}}]},
                                {"summary": "done without summing"}]}}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest_asyncio.fixture
async def slack_api(temporal_env: WorkflowEnvironment, slack: FakeSlack) -> AsyncIterator[httpx.AsyncClient]:
    target = temporal_env.client.service_client.config.target_host
    runtime = Settings(address=target, address_configured=True, slack_bot_token=slack.token,
                       slack_api_url=slack.base_url)
    settings = ApiSettings(runtime=runtime, tokens=(ApiToken("ops", "ops-token-0123456789abcdef"),),
                           slack_signing_secret=SIGNING_SECRET)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client
    await app.state.background.drain()


def signed_form(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}",
                  "Content-Type": "application/x-www-form-urlencoded"}


def reject_click(blocks: list[dict[str, Any]], channel: str, ts: str) -> dict[str, Any]:
    actions = next(b for b in blocks if b.get("block_id") == ACTIONS_BLOCK)
    b = next(e for e in actions["elements"] if e["action_id"] == "iterloop_reject")
    return {"type": "block_actions", "user": USER, "api_app_id": "A1", "token": "legacy-unused",
            "trigger_id": "1337.42.abcdef", "team": {"id": "T1"},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": "growth"}, "message": {"type": "message", "ts": ts, "blocks": blocks},
            "response_url": "https://hooks.slack.invalid/actions/1", "actions": [
                {"type": "button", "action_id": "iterloop_reject", "block_id": ACTIONS_BLOCK, "value": b["value"],
                 "text": b["text"], "action_ts": f"{time.time():.6f}"}]}


async def test_a_slack_rejection_with_a_message_answers_the_tool_calls_opening(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client: Client = temporal_env.client
    async with running_worker(client, task_queue,
                              notify=NotifyConfig(slack_bot_token=slack.token, slack_api_url=slack.base_url)):
        options = RunOptions(script=SCRIPT, notify=NotifyOptions(slack_channel="#growth", events=["gate_opened"]))
        started = await client.start_workflow(WORKFLOW_TYPE, RunInput(workflow=compile_ok(SRC), options=options),
                                              id=f"slack-tool-{time.time_ns()}", task_queue=task_queue,
                                              result_type=RunResult)
        handle = client.get_workflow_handle(started.id, result_type=RunResult)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        await poll(lambda: slack.messages, "the gate message in Slack")
        (channel, ts), message = next(iter(slack.messages.items()))
        assert "sum_values" in json.dumps(message["blocks"])  # the call is shown
        body, headers = signed_form(reject_click(message["blocks"], channel, ts))
        assert (await slack_api.post("/slack/interactions", content=body, headers=headers)).status_code == 200
        [opened] = slack.calls_to("views.open")
        modal = opened.body["view"]
        assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == ["field:message"]
        body, headers = signed_form({"type": "view_submission", "user": USER, "team": {"id": "T1"}, "view": {
            **modal, "id": "V0FAKE", "state": {"values": {
                "field:message": {"value": {"type": "plain_text_input", "value": "not on the prod data"}}}}}})
        assert (await slack_api.post("/slack/interactions", content=body, headers=headers)).status_code == 200
        result = await finish(handle)
        events = await handle.query("events", 0, result_type=list[Event])
    assert result.status == "finished"
    assert [e.data for e in events if e.type == "tool_call_reviewed"] == [
        {"tool": "sum_values", "decision": "rejected", "by": "slack:U42ADA", "message": "not on the prod data"}]
