"""The `iterloop.notify` activity: tell Slack and webhooks that a gate opened or a run ended.

The workflow schedules it beside the run (never in its way) when the run's options ask for
notifications. Where to send comes from the request; the bot token, the signing secret and the
`${ITERLOOP_WEBHOOK_…}` values in webhook URLs stay on the worker, in `NotifyConfig` and the
environment (no other variable is expanded in a URL: see `webhooks.expand_webhook_url`).

One attempt tries every target concurrently and remembers each outcome in the `DeliveryStore`
under the notification's key, so a retry only redoes what has not landed: the Slack message is
posted once even when a webhook needed three attempts. Then it raises one error if anything is
missing: `NotifyUnavailable` (retryable, after the longest `Retry-After` given) while some target
may still succeed, else `NotifyRejected` (non-retryable) naming each refused target and why.
A result therefore means every target got the notification: its ``failed`` list is always empty
(the field stays in the contract, which never drops a field).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from temporalio import activity

from activities.notify.delivery_store import DeliveryStore
from activities.notify.errors import Outcome, Permanent, Transient, failure_error
from activities.notify.slack_poster import SlackPoster
from activities.notify.webhooks import WebhookSender, expand_webhook_url, webhook_payload
from workflows.contract.messages import NOTIFY, NotifyRequest, NotifyResult
from workflows.contract.slack_blocks import gate_message, run_end_message

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class NotifyConfig:
    """The worker's side of notifications (read from the environment by `worker.py`)."""

    slack_bot_token: str = field(default="", repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    webhook_secret: str = field(default="", repr=False)
    store_path: Path | None = None  # None: remember deliveries in memory (one process)
    timeout_seconds: float = 10.0  # per HTTP request; the activity's start-to-close is larger


def notification_key(req: NotifyRequest, occurrence: str) -> str:
    """Identifies one notification across its retries; ``occurrence`` tells repeated events apart
    (in the activity: the workflow execution and the activity id, which retries keep)."""
    raw = json.dumps([req.run_id, req.event, req.interaction_id, occurrence])
    return hashlib.sha256(raw.encode()).hexdigest()


class Notifier:
    """Holds the configuration and the delivery store; `notify` is the registered activity."""

    def __init__(self, config: NotifyConfig, *, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.store = DeliveryStore(config.store_path)
        self.env = env  # for `${ENV}` in webhook URLs; None = the worker's environment

    @activity.defn(name=NOTIFY)
    async def notify(self, req: NotifyRequest) -> NotifyResult:
        info = activity.info()
        try:
            result = await self.deliver(req, occurrence=f"{info.workflow_run_id}/{info.activity_id}",
                                        occurred_at=info.scheduled_time)
        except Exception as err:
            _count(req, "retrying" if not getattr(err, "non_retryable", True) else "failed")
            raise
        _count(req, "delivered")
        return result

    async def deliver(self, req: NotifyRequest, *, occurrence: str = "",
                      occurred_at: datetime | None = None) -> NotifyResult:
        """Send ``req`` to its targets; the activity's body, callable without a worker."""
        key = notification_key(req, occurrence)
        now = datetime.now(timezone.utc)
        sends: dict[str, Callable[[], Awaitable[str]]] = {}
        if req.slack_channel:
            sends[f"slack:{req.slack_channel}"] = lambda: self._post_slack(req)
        payload = webhook_payload(req, event_id=f"evt_{key[:32]}", occurred_at=occurred_at or now, sent_at=now)
        async with WebhookSender(self.config.webhook_secret, timeout_seconds=self.config.timeout_seconds) as sender:
            for url in dict.fromkeys(req.webhooks):
                label = f"webhook:{url}"
                sends[label] = lambda label=label, url=url: self._post_webhook(sender, label, url, payload)
            outcomes = await asyncio.gather(*(self._once(key, label, send) for label, send in sends.items()))
        delivered = [o.target for o in outcomes if isinstance(o, Outcome) and o.delivered]
        refused = [o for o in outcomes if isinstance(o, Outcome) and not o.delivered]
        transient = [o for o in outcomes if isinstance(o, Transient)]
        if transient or refused:
            raise failure_error(transient, refused, delivered)
        # `NotifyResult.failed` stays empty: a target that was not delivered fails the activity
        # (above), so Temporal retries what may still pass and records why the rest was refused.
        return NotifyResult(delivered=delivered)

    async def _once(self, key: str, label: str, send: Callable[[], Awaitable[str]]) -> Outcome | Transient:
        """One target: skipped when an earlier attempt settled it, else sent and remembered."""
        earlier = self.store.get(key, label)
        if earlier is not None:
            return earlier
        try:
            detail = await send()
        except Transient as err:
            activity.logger.warning("notification not delivered yet: %s", err)
            return err
        except Permanent as err:
            outcome = Outcome(label, False, err.reason)
        else:
            outcome = Outcome(label, True, detail)
        self.store.put(key, outcome)
        return outcome

    async def _post_slack(self, req: NotifyRequest) -> str:
        target = f"slack:{req.slack_channel}"
        if not self.config.slack_bot_token:
            raise Permanent(target, "no Slack bot token on the worker: set ITERLOOP_SLACK_BOT_TOKEN")
        text, blocks = gate_message(req) if req.event == "gate_opened" else run_end_message(req)
        poster = SlackPoster(self.config.slack_bot_token, self.config.slack_api_url,
                             timeout_seconds=self.config.timeout_seconds)
        return await poster.post(target, req.slack_channel, text, blocks)

    async def _post_webhook(self, sender: WebhookSender, label: str, url: str, payload: dict) -> str:
        await sender.send(label, expand_webhook_url(label, url, self.env), payload)
        return ""


def _count(req: NotifyRequest, outcome: str) -> None:
    """`iterloop_notifications{event, outcome}`: exported with the worker's other metrics."""
    activity.metric_meter().create_counter(
        "iterloop_notifications", "Notification activity attempts, by outcome", "1").add(
        1, {"event": req.event, "outcome": outcome})
