"""Where a run reports (Slack channel, webhooks): the deployment's default, the workflow's preset,
then the command line or API request, each overriding the one before.

The result becomes `RunOptions.notify`, part of the run's input, so the choice is fixed when the
run starts and visible in history. Only places go there; the Slack bot token and the webhook
signing secret stay on the worker, and a webhook URL may hold `${ITERLOOP_WEBHOOK_…}` references that the
worker resolves (a URL with a token in it never enters history that way).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.settings import Settings
from workflows.contract.vocabulary import NotifyEvent


class NotifySection(BaseModel):
    """The `notify:` block of a preset, and the `notify` field of an API start request."""

    model_config = ConfigDict(extra="forbid")

    slack_channel: str | None = Field(None, description="Channel for gate approvals and run results, e.g. #growth")
    webhooks: list[str] | None = Field(None, description="URLs that get signed JSON POSTs (`${ITERLOOP_WEBHOOK_…}` allowed)")
    events: list[NotifyEvent] | None = Field(None, description="Which events to send [default: all]")
    enabled: bool = Field(True, description="false: this run reports nowhere, whatever the defaults say")


def run_notify_options(settings: Settings, *, preset: NotifySection | None = None,
                       request: NotifySection | None = None, ui_base_url: str = "") -> dict[str, Any] | None:
    """`RunOptions.notify` for a run, or None when it reports nowhere."""
    channel, webhooks, events = settings.notify_slack_channel, list(settings.notify_webhooks), list(settings.notify_events)
    for layer in (preset, request):
        if layer is None:
            continue
        if not layer.enabled:
            return None
        if layer.slack_channel is not None:
            channel = layer.slack_channel
        if layer.webhooks is not None:
            webhooks = list(layer.webhooks)
        if layer.events is not None:
            events = list(layer.events)
    if not channel and not webhooks:
        return None
    options: dict[str, Any] = {"slack_channel": channel, "webhooks": webhooks,
                               "ui_base_url": settings.ui_url or ui_base_url}
    if events:
        options["events"] = events
    return options


def describe_notify(options: dict[str, Any]) -> str:
    """`Slack #growth and 2 webhooks (gate_opened, run_finished)`: one line for the user."""
    places = [f"Slack {options['slack_channel']}"] if options.get("slack_channel") else []
    hooks = len(options.get("webhooks") or [])
    if hooks:
        places.append(f"{hooks} webhook{'s' if hooks != 1 else ''}")
    events = options.get("events")
    return " and ".join(places) + (f" ({', '.join(events)})" if events else "")
