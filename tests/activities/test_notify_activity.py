"""The `iterloop.notify` activity against a local Slack Web API and a local webhook receiver.

The activity's body (`Notifier.deliver`) is called directly; one test runs the registered
activity in Temporal's `ActivityEnvironment` to cover what it takes from the activity's info.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fakes.slack import FakeSlack
from fakes.webhook import WebhookReceiver
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.http_retry import MAX_RETRY_AFTER
from activities.notify import ERR_NOTIFY_REJECTED, ERR_NOTIFY_UNAVAILABLE, Notifier, NotifyConfig
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import NotifyRequest, Usage
from workflows.contract.slack_blocks import ACTION_APPROVE, ACTION_OPEN_RUN, ACTION_REJECT, ButtonValue

SECRET = "whsec-test-secret"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def config(slack: FakeSlack | None = None, **changes: object) -> NotifyConfig:
    base = NotifyConfig(slack_bot_token=slack.token if slack else "", slack_api_url=slack.base_url if slack else
                        "http://127.0.0.1:9/api/", webhook_secret=SECRET, timeout_seconds=5)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def gate_request(**changes: object) -> NotifyRequest:
    req = NotifyRequest(
        event="gate_opened", run_id="growth-42", workflow="growth_loop", gate="approve_plan",
        interaction_id="growth-42:approve_plan:1", instructions="Launch *checkout-v2* to 50% of traffic?",
        questions={"experiment": "checkout-v2", "expected_lift": 0.0423, "sample_size": 12345,
                   "plan": {"arms": 2, "owner": "growth"}, "history": [1, 2, 3], "notes": "x" * 500},
        answer_schema=Schema(name="approval", fields=[SchemaField(name="approved", type="bool")]),
        usage=Usage(input_tokens=1200, output_tokens=300, cost_usd=0.0123),
        slack_channel="#growth", ui_url="http://localhost:8233/namespaces/default/workflows/growth-42")
    return req.model_copy(update=changes)


def end_request(event: str = "run_finished", **changes: object) -> NotifyRequest:
    return NotifyRequest(event=event, run_id="growth-42", workflow="growth_loop",  # type: ignore[arg-type]
                         status="finished" if event == "run_finished" else "failed",
                         reason="" if event == "run_finished" else "node 'analyst' failed: boom",
                         usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.5)).model_copy(update=changes)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def failure(notifier: Notifier, req: NotifyRequest, occurrence: str = "a") -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await notifier.deliver(req, occurrence=occurrence)
    return info.value


# -- Slack -----------------------------------------------------------------------------------------


async def test_gate_opened_posts_a_block_kit_message_with_decision_buttons(slack: FakeSlack) -> None:
    result = await Notifier(config(slack)).deliver(gate_request(), occurrence="a")

    assert result.delivered == ["slack:#growth"] and result.failed == []
    (call,) = slack.calls_to("chat.postMessage")
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    assert call.body["channel"] == "#growth"
    assert "approve_plan" in call.body["text"]
    blocks = call.body["blocks"]
    text = json.dumps(blocks)
    assert "Launch *checkout-v2* to 50% of traffic?" in text
    fields = next(b["fields"] for b in blocks if b["type"] == "section" and "fields" in b)
    shown = [f["text"] for f in fields]
    assert shown == ["*experiment*\ncheckout-v2", "*expected_lift*\n0.0423", "*sample_size*\n12,345",
                     "*plan.arms*\n2", "*plan.owner*\ngrowth"]  # the list and the long text are left out
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    by_action = {a["action_id"]: a for a in actions}
    assert set(by_action) == {ACTION_APPROVE, ACTION_REJECT, ACTION_OPEN_RUN}
    assert by_action[ACTION_APPROVE]["style"] == "primary" and by_action[ACTION_REJECT]["style"] == "danger"
    assert ButtonValue.decode(by_action[ACTION_APPROVE]["value"]) == ButtonValue(
        "growth-42", "approve_plan", "growth-42:approve_plan:1", "approve")
    assert ButtonValue.decode(by_action[ACTION_REJECT]["value"]).decision == "reject"
    assert by_action[ACTION_OPEN_RUN]["url"] == "http://localhost:8233/namespaces/default/workflows/growth-42"


async def test_run_end_posts_status_reason_and_cost(slack: FakeSlack) -> None:
    await Notifier(config(slack)).deliver(end_request("run_failed", slack_channel="#growth"), occurrence="a")

    (call,) = slack.calls_to("chat.postMessage")
    text = json.dumps(call.body["blocks"])
    assert "failed" in call.body["text"]
    assert "node 'analyst' failed: boom" in text and "$0.5000" in text
    assert "actions" not in text


async def test_slack_rate_limit_is_retried_after_slacks_retry_after(slack: FakeSlack) -> None:
    notifier = Notifier(config(slack))
    slack.fail_next("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "7"})

    err = await failure(notifier, gate_request())

    assert err.type == ERR_NOTIFY_UNAVAILABLE and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)
    assert "ratelimited" in str(err)
    result = await notifier.deliver(gate_request(), occurrence="a")  # the retry
    assert result.delivered == ["slack:#growth"]
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_slack_internal_error_is_retryable(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", "internal_error", status=500)

    err = await failure(Notifier(config(slack)), gate_request())

    assert err.type == ERR_NOTIFY_UNAVAILABLE and not err.non_retryable


async def test_unreachable_slack_is_retryable() -> None:
    cfg = config(None, slack_bot_token="xoxb-x", slack_api_url=f"http://127.0.0.1:{unused_port()}/api/")

    err = await failure(Notifier(cfg), gate_request())

    assert err.type == ERR_NOTIFY_UNAVAILABLE and not err.non_retryable
    assert "could not be reached" in str(err)


async def test_unknown_channel_is_permanent_and_not_tried_again(slack: FakeSlack) -> None:
    notifier = Notifier(config(slack))
    req = gate_request(slack_channel="#nowhere")

    err = await failure(notifier, req)
    again = await failure(notifier, req)

    assert err.type == ERR_NOTIFY_REJECTED and err.non_retryable
    assert "slack:#nowhere" in str(err) and "invite the bot" in str(err)
    assert str(again) == str(err)
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_bad_bot_token_is_permanent_and_names_the_setting(slack: FakeSlack) -> None:
    err = await failure(Notifier(config(slack, slack_bot_token="xoxb-wrong")), gate_request())

    assert err.type == ERR_NOTIFY_REJECTED and err.non_retryable
    assert "ITERLOOP_SLACK_BOT_TOKEN" in str(err) and "xoxb-wrong" not in str(err)


async def test_missing_bot_token_fails_without_calling_slack(slack: FakeSlack) -> None:
    err = await failure(Notifier(config(slack, slack_bot_token="")), gate_request())

    assert err.non_retryable and "set ITERLOOP_SLACK_BOT_TOKEN" in str(err)
    assert slack.calls == []


async def test_a_retry_after_a_failed_webhook_does_not_post_to_slack_again(slack: FakeSlack,
                                                                              receiver: WebhookReceiver) -> None:
    notifier = Notifier(config(slack))
    req = gate_request(webhooks=[receiver.url()])
    receiver.answer_next(503)

    err = await failure(notifier, req)
    result = await notifier.deliver(req, occurrence="a")

    assert not err.non_retryable and err.details[0]["delivered"] == ["slack:#growth"]
    assert result.delivered == ["slack:#growth", f"webhook:{receiver.url()}"]
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(receiver.deliveries) == 2


async def test_deliveries_are_remembered_across_workers_sharing_the_store(slack: FakeSlack, tmp_path: Path) -> None:
    store = tmp_path / "notify.sqlite3"
    req = gate_request()

    await Notifier(config(slack, store_path=store)).deliver(req, occurrence="a")
    result = await Notifier(config(slack, store_path=store)).deliver(req, occurrence="a")  # another process
    await Notifier(config(slack, store_path=store)).deliver(req, occurrence="b")  # a new occurrence

    assert result.delivered == ["slack:#growth"]
    assert len(slack.calls_to("chat.postMessage")) == 2


# -- webhooks --------------------------------------------------------------------------------------


async def test_webhook_is_signed_and_carries_the_documented_payload(receiver: WebhookReceiver) -> None:
    req = gate_request(slack_channel="", webhooks=[receiver.url()])
    answer_schema = Schema(name="approval", fields=[SchemaField(name="approved", type="bool"),
                                                    SchemaField(name="reviewer_notes", type="string")])

    result = await Notifier(config()).deliver(req.model_copy(update={"answer_schema": answer_schema}),
                                              occurrence="a")

    assert result.delivered == [f"webhook:{receiver.url()}"]
    (d,) = receiver.deliveries
    assert d.signature_ok
    assert d.headers["content-type"] == "application/json"
    assert d.headers["x-iterloop-event"] == "gate_opened"
    assert d.headers["idempotency-key"] == d.headers["x-iterloop-event-id"] == d.payload["id"]
    assert d.payload["id"].startswith("evt_")
    p = d.payload
    assert (p["event"], p["run_id"], p["workflow"], p["status"]) == (
        "gate_opened", "growth-42", "growth_loop", "waiting_human")
    assert p["gate"]["id"] == "approve_plan" and p["gate"]["interaction_id"] == "growth-42:approve_plan:1"
    assert p["gate"]["questions"]["sample_size"] == 12345
    assert p["gate"]["answer_schema"]["fields"] == [{"name": "approved", "type": "bool", "enum": None},
                                                    {"name": "reviewer_notes", "type": "string", "enum": None}]
    assert p["usage"]["cost_usd"] == 0.0123 and p["ui_url"].endswith("/growth-42")
    for stamp in (p["occurred_at"], p["sent_at"]):
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None
    assert abs(int(d.headers["x-iterloop-timestamp"]) - datetime.now(timezone.utc).timestamp()) < 60


async def test_run_end_webhooks_have_no_gate(receiver: WebhookReceiver) -> None:
    await Notifier(config()).deliver(end_request("run_failed", webhooks=[receiver.url()]), occurrence="a")

    p = receiver.deliveries[0].payload
    assert (p["event"], p["status"], p["reason"], p["gate"]) == (
        "run_failed", "failed", "node 'analyst' failed: boom", None)


async def test_webhook_5xx_is_retried_with_the_same_event_id(receiver: WebhookReceiver) -> None:
    notifier = Notifier(config())
    req = end_request(webhooks=[receiver.url()])
    receiver.answer_next(502, {"Retry-After": "3"})

    err = await failure(notifier, req)
    await notifier.deliver(req, occurrence="a")

    assert err.type == ERR_NOTIFY_UNAVAILABLE and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=3) and "HTTP 502" in str(err)
    first, second = receiver.deliveries
    assert first.payload["id"] == second.payload["id"] and second.signature_ok


@pytest.mark.parametrize(("header", "delay"), [("inf", None), ("nan", None), ("1e20", MAX_RETRY_AFTER)])
async def test_a_webhooks_absurd_retry_after_is_ignored_or_capped(receiver: WebhookReceiver, header: str,
                                                                   delay: timedelta | None) -> None:
    receiver.answer_next(429, {"Retry-After": header})

    err = await failure(Notifier(config()), end_request(webhooks=[receiver.url()]))

    assert err.type == ERR_NOTIFY_UNAVAILABLE and err.next_retry_delay == delay


async def test_webhook_4xx_is_not_retried(receiver: WebhookReceiver) -> None:
    notifier = Notifier(config())
    req = end_request(webhooks=[receiver.url()])
    receiver.answer_next(404)

    err = await failure(notifier, req)
    await failure(notifier, req)  # a retry anyway: the refusal is remembered

    assert err.type == ERR_NOTIFY_REJECTED and err.non_retryable
    assert "HTTP 404" in str(err) and receiver.url() in str(err)
    assert len(receiver.deliveries) == 1


async def test_webhook_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.answer_next(302, {"Location": "http://example.invalid/"})

    err = await failure(Notifier(config()), end_request(webhooks=[receiver.url()]))

    assert err.non_retryable and "redirects are not followed" in str(err)


async def test_env_references_in_webhook_urls_are_expanded_on_the_worker_and_never_reported(
        receiver: WebhookReceiver) -> None:
    configured = receiver.url("/hooks/${ITERLOOP_WEBHOOK_TOKEN}")
    notifier = Notifier(config(), env={"ITERLOOP_WEBHOOK_TOKEN": "t0ps3cret"})
    receiver.answer_next(400)

    err = await failure(notifier, end_request(webhooks=[configured]))

    assert receiver.deliveries[0].path == "/hooks/t0ps3cret"
    assert "t0ps3cret" not in str(err) and "${ITERLOOP_WEBHOOK_TOKEN}" in str(err)


@pytest.mark.parametrize("reference", ["${ANTHROPIC_API_KEY}", "$ANTHROPIC_API_KEY", "${ITERLOOP_WEBHOOK_UNSET}"])
async def test_a_webhook_url_cannot_read_other_worker_variables(receiver: WebhookReceiver, reference: str) -> None:
    configured = receiver.url(f"/hooks?k={reference}")
    notifier = Notifier(config(), env={"ANTHROPIC_API_KEY": "sk-ant-secret", "ITERLOOP_WEBHOOK_TOKEN": "t"})

    err = await failure(notifier, end_request(webhooks=[configured]))

    name = reference.strip("${}")
    assert err.type == ERR_NOTIFY_REJECTED and err.non_retryable
    assert f"'{name}'" in str(err) and "sk-ant-secret" not in str(err)
    assert receiver.deliveries == []  # nothing was sent


async def test_a_webhook_failure_reports_the_status_never_the_receivers_body(receiver: WebhookReceiver) -> None:
    receiver.answer_next(404)
    refused = await failure(Notifier(config()), end_request(webhooks=[receiver.url()]))
    receiver.answer_next(503)
    later = await failure(Notifier(config()), end_request(webhooks=[receiver.url("/other")]))

    assert "HTTP 404 Not Found" in str(refused) and "HTTP 503 Service Unavailable" in str(later)
    assert all("nope" not in str(e) and "nope" not in json.dumps(e.details) for e in (refused, later))


async def test_webhooks_are_unsigned_without_a_secret(receiver: WebhookReceiver) -> None:
    await Notifier(config(webhook_secret="")).deliver(end_request(webhooks=[receiver.url()]), occurrence="a")

    assert "x-iterloop-signature" not in receiver.deliveries[0].headers


async def test_one_refused_target_does_not_stop_the_others(slack: FakeSlack, receiver: WebhookReceiver) -> None:
    req = gate_request(slack_channel="#nowhere", webhooks=[receiver.url()])

    err = await failure(Notifier(config(slack)), req)

    assert err.non_retryable
    assert err.details[0] == {"delivered": [f"webhook:{receiver.url()}"], "failed": ["slack:#nowhere"]}


async def test_the_registered_activity_keys_retries_by_execution_and_activity_id(receiver: WebhookReceiver) -> None:
    notifier = Notifier(config())
    req = end_request(webhooks=[receiver.url()])
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_run_id="exec-1", activity_id="7")

    result = await env.run(notifier.notify, req)
    await env.run(notifier.notify, req)  # a retry of the same activity: already delivered
    env.info = dataclasses.replace(env.info, activity_id="8")  # the run failed again later: a new notification
    await env.run(notifier.notify, req)

    assert result.delivered == [f"webhook:{receiver.url()}"]
    first, second = receiver.deliveries
    assert first.payload["id"] != second.payload["id"]
