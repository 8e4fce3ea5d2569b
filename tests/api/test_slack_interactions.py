"""Slack approvals end to end: a run posts its gate to a local Slack Web API, a signed click on the
posted button answers the gate on the real dev server, and forged, stale or replayed requests are
refused and change nothing.

The API is the real app (`create_app`) over an ASGI transport; the worker's notify activity and the
API both talk to `FakeSlack`; signatures are computed here with `hmac`, as Slack computes them. The
API acknowledges a click before it answers the gate (Slack wants a response within 3 s), so the
tests poll for the answer and the message update.
"""

from __future__ import annotations

import asyncio
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
from fakes.slack import FakeSlack  # noqa: E402
from runs import compile_ok, finish, poll, running_worker, state, wait_for
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.notify import NotifyConfig  # noqa: E402
from api.app import create_app  # noqa: E402
from api.errors import ApiError  # noqa: E402
from api.settings import ApiSettings, ApiToken  # noqa: E402
from api.slack import ReplayGuard, verify_slack_request  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from workflows.contract.slack_blocks import ACTIONS_BLOCK, ButtonValue  # noqa: E402
from workflows.contract.state import WORKFLOW_TYPE, Answer, NotifyOptions, RunInput, RunOptions, RunResult  # noqa: E402

SIGNING_SECRET = "iterloop-slack-signing-secret"
USER = {"id": "U42ADA", "username": "ada", "name": "ada", "team_id": "T1"}

APPROVAL = """
schema decision:
  approved: bool
prompt ask:
  Ship {{input.plan}} to everyone?
agent planner:
  model: "scripted"
human approval:
  instructions: ask
  output: decision
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}", lift: "{{outputs.planner.lift}}" }
  approval -> done when approved
  approval -> fail when not approved
"""

APPROVAL_WITH_NOTES = APPROVAL.replace("  approved: bool\n", "  approved: bool\n  reviewer_notes: string\n")


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
    await app.state.background.drain()  # answers acknowledged but still on their way


def worker(client: Client, task_queue: str, slack: FakeSlack):  # type: ignore[no-untyped-def]
    return running_worker(client, task_queue,
                          notify=NotifyConfig(slack_bot_token=slack.token, slack_api_url=slack.base_url))


async def start_gated(client: Client, task_queue: str, src: str = APPROVAL) -> WorkflowHandle[Any, RunResult]:
    wf = compile_ok(src)
    options = RunOptions(script={"planner": {"text": "checkout-v2", "lift": "4.2%"}},
                         notify=NotifyOptions(slack_channel="#growth", events=["gate_opened"]))
    started = await client.start_workflow(WORKFLOW_TYPE, RunInput(workflow=wf, options=options),
                                          id=f"slack-{time.time_ns()}", task_queue=task_queue, result_type=RunResult)
    return client.get_workflow_handle(started.id, result_type=RunResult)


async def posted_message(slack: FakeSlack) -> tuple[str, str, list[dict[str, Any]]]:
    """The gate message the run posted: (channel id, ts, blocks)."""
    await poll(lambda: slack.messages, "the gate message in Slack")
    (channel, ts), message = next(iter(slack.messages.items()))
    return channel, ts, message["blocks"]


def button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    actions = next(b for b in blocks if b.get("block_id") == ACTIONS_BLOCK)
    return next(e for e in actions["elements"] if e["action_id"] == action_id)


def click_payload(blocks: list[dict[str, Any]], action_id: str, channel: str, ts: str) -> dict[str, Any]:
    """A `block_actions` payload as Slack sends it for a click on one of the message's buttons."""
    b = button(blocks, action_id)
    return {"type": "block_actions", "user": USER, "api_app_id": "A1", "token": "legacy-unused",
            "trigger_id": "1337.42.abcdef", "team": {"id": "T1"},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": "growth"}, "message": {"type": "message", "ts": ts, "blocks": blocks},
            "response_url": "https://hooks.slack.invalid/actions/1", "actions": [
                {"type": "button", "action_id": action_id, "block_id": ACTIONS_BLOCK, "value": b["value"],
                 "text": b["text"], "action_ts": f"{time.time():.6f}"}]}


def form(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}",
            "Content-Type": "application/x-www-form-urlencoded"}


async def post(api: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await api.post("/slack/interactions", content=body, headers=headers)


async def assert_still_waiting(handle: WorkflowHandle[Any, RunResult], slack: FakeSlack) -> None:
    view = await state(handle)
    assert view.status == "waiting_human" and view.answers == [] and [g.gate for g in view.open_gates] == ["approval"]
    assert slack.calls_to("chat.update") == [] and slack.calls_to("views.open") == []


# -- the happy paths -------------------------------------------------------------------------------


async def test_signed_approve_click_answers_the_gate_and_updates_the_message(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue)
        channel, ts, blocks = await posted_message(slack)
        view = await wait_for(handle, lambda v: v.status == "waiting_human")
        value = ButtonValue.decode(button(blocks, "iterloop_approve")["value"])
        assert (value.run_id, value.gate, value.interaction_id) == (handle.id, "approval",
                                                                     view.open_gates[0].interaction_id)
        assert "Ship checkout-v2 to everyone?" in json.dumps(blocks) and "4.2%" in json.dumps(blocks)
        body = form(click_payload(blocks, "iterloop_approve", channel, ts))
        headers = signed(body)

        response = await post(slack_api, body, headers)
        result = await finish(handle)
        replay = await post(slack_api, body, headers)
        view = await state(handle)
        await poll(lambda: slack.calls_to("chat.update"), "the message update")

    assert response.status_code == 200
    assert result.status == "finished"
    [record] = view.answers
    assert (record.answered_by, record.answers, record.interaction_id) == (
        "slack:U42ADA", {"approved": True}, value.interaction_id)  # Slack's stable user id, not the name
    [update] = slack.calls_to("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (channel, ts)
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in update.body["blocks"])
    assert update.body["blocks"][-1]["elements"][0]["text"].startswith("✅ Approved by <@U42ADA> on <!date^")
    assert replay.status_code == 403 and replay.json()["error"]["code"] == "replayed_request"
    assert len(slack.calls_to("chat.update")) == 1 and len(view.answers) == 1


async def test_reject_with_notes_opens_a_modal_whose_submission_answers(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue, APPROVAL_WITH_NOTES)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        body = form(click_payload(blocks, "iterloop_reject", channel, ts))

        clicked = await post(slack_api, body, signed(body))
        [opened] = slack.calls_to("views.open")
        modal = opened.body["view"]
        still = await state(handle)
        submission = {"type": "view_submission", "user": USER, "team": {"id": "T1"}, "view": {
            **modal, "id": "V0FAKE", "state": {"values": {
                "field:reviewer_notes": {"value": {"type": "plain_text_input", "value": "guardrail too close"}}}}}}
        body = form(submission)
        submitted = await post(slack_api, body, signed(body))
        result = await finish(handle)
        view = await state(handle)
        await poll(lambda: slack.calls_to("chat.update"), "the message update")

    assert clicked.status_code == 200 and opened.body["trigger_id"] == "1337.42.abcdef"
    assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == ["field:reviewer_notes"]
    assert still.status == "waiting_human" and still.answers == []
    assert submitted.status_code == 200 and submitted.content == b""
    assert result.status == "failed"  # `approval -> fail when not approved`
    [record] = view.answers
    assert record.answers == {"approved": False, "reviewer_notes": "guardrail too close"}
    assert record.answered_by == "slack:U42ADA"
    [update] = slack.calls_to("chat.update")
    note = update.body["blocks"][-1]["elements"][0]["text"]
    assert note.startswith("⛔ Rejected by <@U42ADA>") and "reviewer_notes: guardrail too close" in note


async def test_a_click_on_a_gate_answered_elsewhere_changes_nothing(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": False}, answered_by="cli"))
        await finish(handle)
        body = form(click_payload(blocks, "iterloop_approve", channel, ts))

        response = await post(slack_api, body, signed(body))
        await poll(lambda: slack.calls_to("chat.update"), "the message update")
        view = await state(handle)

    assert response.status_code == 200
    assert [(a.answered_by, a.answers) for a in view.answers] == [("cli", {"approved": False})]
    [update] = slack.calls_to("chat.update")
    assert "Already answered by cli" in update.body["blocks"][-1]["elements"][0]["text"]


async def test_two_people_clicking_at_once_answer_once_and_both_messages_say_whose_answer_counts(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    """Issue 12 F2: Ada approves while Grace rejects; the gate opening takes one answer, and the
    message never claims the other decision."""
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        grace = {**USER, "id": "U77GRACE", "username": "grace", "name": "grace"}
        bodies = [form(click_payload(blocks, "iterloop_approve", channel, ts)),
                  form({**click_payload(blocks, "iterloop_reject", channel, ts), "user": grace})]

        responses = await asyncio.gather(*(post(slack_api, body, signed(body)) for body in bodies))
        await finish(handle)
        await poll(lambda: len(slack.calls_to("chat.update")) == 2, "both message updates")
        view = await state(handle)
        events = await handle.query("events", 0)

    assert [r.status_code for r in responses] == [200, 200]
    [record] = view.answers
    winner = record.answered_by[len("slack:"):]
    loser = "U77GRACE" if winner == "U42ADA" else "U42ADA"
    decision = "✅ Approved" if record.answers["approved"] else "⛔ Rejected"
    assert record.answers["approved"] is (winner == "U42ADA")
    notes = [u.body["blocks"][-1]["elements"][0]["text"] for u in slack.calls_to("chat.update")]
    assert all(n.startswith((f"{decision} by <@{winner}>", f"Already answered by <@{winner}>")) for n in notes), notes
    # The loser's click is refused by the run, or (when the winner's answer already closed the gate,
    # or ended the run) by the API before it is sent.
    assert [e["data"]["by"] for e in events if e["type"] == "answer_rejected"] in ([], [f"slack:{loser}"])


async def test_a_click_is_acknowledged_at_once_and_answers_when_a_worker_is_back(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    """Slack gives up after 3 s; asking the run for its state waits up to 20 s for a worker."""
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
    body = form(click_payload(blocks, "iterloop_approve", channel, ts))  # no worker polls now

    clicked_at = time.monotonic()
    response = await post(slack_api, body, signed(body))
    took = time.monotonic() - clicked_at
    async with worker(client, task_queue, slack):
        result = await finish(handle)
        view = await state(handle)
        await poll(lambda: slack.calls_to("chat.update"), "the message update")

    assert response.status_code == 200 and took < 2.5, took
    assert result.status == "finished"
    assert [(a.answered_by, a.answers) for a in view.answers] == [("slack:U42ADA", {"approved": True})]


async def test_a_modal_opens_at_once_even_when_no_worker_answers(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    """The gate's fields come from the run's compiled workflow, which the Temporal server keeps."""
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue, APPROVAL_WITH_NOTES)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
    body = form(click_payload(blocks, "iterloop_approve", channel, ts))

    clicked_at = time.monotonic()
    response = await post(slack_api, body, signed(body))
    took = time.monotonic() - clicked_at
    await handle.terminate("test over")

    assert response.status_code == 200 and took < 2.5, took
    [opened] = slack.calls_to("views.open")
    assert opened.body["trigger_id"] == "1337.42.abcdef"
    assert [b["block_id"] for b in opened.body["view"]["blocks"] if b["type"] == "input"] == ["field:reviewer_notes"]


# -- refused requests ------------------------------------------------------------------------------


async def test_forged_stale_and_unsigned_requests_are_refused_and_change_nothing(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        body = form(click_payload(blocks, "iterloop_approve", channel, ts))
        tampered = body.replace(b"ada", b"eve")
        attempts = {
            "wrong secret": (body, signed(body, secret="not-the-signing-secret")),
            "tampered body": (tampered, signed(body)),
            "stale timestamp": (body, signed(body, timestamp=int(time.time()) - 6 * 60)),
            "future timestamp": (body, signed(body, timestamp=int(time.time()) + 6 * 60)),
            "no signature": (body, {"Content-Type": "application/x-www-form-urlencoded"}),
        }

        responses = {name: await post(slack_api, b, h) for name, (b, h) in attempts.items()}

        await assert_still_waiting(handle, slack)
        await handle.terminate("test over")

    codes = {name: (r.status_code, r.json()["error"]["code"]) for name, r in responses.items()}
    assert codes == {"wrong secret": (401, "bad_signature"), "tampered body": (401, "bad_signature"),
                     "stale timestamp": (401, "stale_request"), "future timestamp": (401, "stale_request"),
                     "no signature": (401, "bad_signature")}


async def test_a_replayed_click_is_refused_before_it_reaches_slack_or_the_run(
        temporal_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, slack_api: httpx.AsyncClient) -> None:
    client = temporal_env.client
    async with worker(client, task_queue, slack):
        handle = await start_gated(client, task_queue, APPROVAL_WITH_NOTES)
        channel, ts, blocks = await posted_message(slack)
        await wait_for(handle, lambda v: v.status == "waiting_human")
        body = form(click_payload(blocks, "iterloop_approve", channel, ts))
        headers = signed(body)

        first = await post(slack_api, body, headers)
        replay = await post(slack_api, body, headers)
        view = await state(handle)
        await handle.terminate("test over")

    assert first.status_code == 200
    assert (replay.status_code, replay.json()["error"]["code"]) == (403, "replayed_request")
    assert len(slack.calls_to("views.open")) == 1  # the modal opened once
    assert view.status == "waiting_human" and view.answers == []


# -- the pure checks -------------------------------------------------------------------------------


def test_signature_check_follows_slacks_v0_scheme() -> None:
    """`v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`, computed here independently."""
    secret, body, timestamp = "iterloop-test-signing-secret", b"payload=%7B%22type%22%3A%22block_actions%22%7D", "1700000000"
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    verify_slack_request(secret, body=body, timestamp=timestamp, signature=f"v0={digest}", now=1700000000 + 10)
    for tampered in (dict(body=body + b"x", timestamp=timestamp), dict(body=body, timestamp="1700000001")):
        with pytest.raises(ApiError):
            verify_slack_request(secret, signature=f"v0={digest}", now=1700000000 + 10, **tampered)


def test_replay_guard_forgets_after_the_window() -> None:
    guard = ReplayGuard(window_seconds=300)

    assert guard.first_time("v0=a", 1000) and not guard.first_time("v0=a", 1100)
    assert guard.first_time("v0=a", 1401)
