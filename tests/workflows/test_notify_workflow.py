"""Notifications from real runs: the interpreter schedules `iterloop.notify` on the dev server and
the worker posts to the local Slack and webhook fakes; a refused delivery never stops the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.slack import FakeSlack  # noqa: E402
from fakes.webhook import WebhookReceiver  # noqa: E402
from runs import finish, poll, running_worker, start, state, wait_for
from temporalio.testing import WorkflowEnvironment

from activities.notify import NotifyConfig  # noqa: E402
from workflows.contract.state import Answer, Event, NotifyOptions  # noqa: E402

SECRET = "whsec-workflow-test"

GATED = """
schema decision:
  approved: bool
prompt ask:
  Ship {{input.plan}}?
agent planner:
  model: "scripted"
human approval:
  instructions: ask
  output: decision
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def notifying_worker(env: WorkflowEnvironment, task_queue: str, slack: FakeSlack):  # type: ignore[no-untyped-def]
    return running_worker(env.client, task_queue, notify=NotifyConfig(
        slack_bot_token=slack.token, slack_api_url=slack.base_url, webhook_secret=SECRET))


async def test_a_run_tells_slack_and_webhooks_when_its_gate_opens_and_when_it_ends(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, receiver: WebhookReceiver) -> None:
    notify = NotifyOptions(slack_channel="#growth", webhooks=[receiver.url()], ui_base_url="http://ui.test")
    async with notifying_worker(temporal_env, task_queue, slack):
        handle = await start(temporal_env.client, task_queue, GATED, script={"planner": {"text": "checkout-v2"}},
                             notify=notify)
        view = await wait_for(handle, lambda v: v.status == "waiting_human")
        await poll(lambda: len(receiver.deliveries) == 1 and slack.messages, "the gate notifications")
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True}, answered_by="ada"))
        result = await finish(handle)
        events = [e.type for e in await handle.query("events", 0, result_type=list[Event])]

    assert result.status == "finished"
    gate_hook, end_hook = receiver.deliveries
    assert gate_hook.signature_ok and end_hook.signature_ok
    assert gate_hook.payload["event"] == "gate_opened"
    assert gate_hook.payload["gate"]["interaction_id"] == view.open_gates[0].interaction_id
    assert gate_hook.payload["ui_url"] == f"http://ui.test/namespaces/default/workflows/{handle.id}"
    assert (end_hook.payload["event"], end_hook.payload["status"], end_hook.payload["gate"]) == (
        "run_finished", "finished", None)
    assert gate_hook.payload["id"] != end_hook.payload["id"]
    gate_post, end_post = slack.calls_to("chat.postMessage")
    assert "approval" in gate_post.body["text"] and "Ship checkout-v2?" in str(gate_post.body["blocks"])
    assert "finished" in end_post.body["text"]
    assert events.count("notified") == 2


async def test_a_refused_notification_is_an_event_and_the_run_goes_on(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, receiver: WebhookReceiver) -> None:
    receiver.answer_next(410)
    notify = NotifyOptions(slack_channel="#nowhere", webhooks=[receiver.url()], events=["gate_opened"])
    async with notifying_worker(temporal_env, task_queue, slack):
        handle = await start(temporal_env.client, task_queue, GATED, script={"planner": {"text": "v3"}},
                             notify=notify)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": False}))
        result = await finish(handle)
        view = await state(handle)
        events = await handle.query("events", 0, result_type=list[Event])

    assert result.status == "failed" and view.answers[0].answers == {"approved": False}
    [failed] = [e for e in events if e.type == "notify_failed"]
    assert failed.node == "approval" and failed.data["event"] == "gate_opened"
    assert "slack:#nowhere" in str(failed.data) and "HTTP 410" in str(failed.data)
    assert len(receiver.deliveries) == 1  # refused for good: not retried
