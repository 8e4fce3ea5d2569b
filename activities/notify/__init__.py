"""Notifications: Slack messages with Approve / Reject buttons and signed webhooks.

`Notifier(config).notify` is the `iterloop.notify` activity; `slack_blocks` builds the Slack
messages and maps clicks back to a gate's answer (the interactivity endpoint, `api/slack.py`,
uses it too); `webhooks` builds, signs and sends the JSON POSTs. See docs/notifications.md.
"""

from activities.notify.activity import Notifier, NotifyConfig, notification_key
from workflows.contract.vocabulary import ERR_NOTIFY_REJECTED, ERR_NOTIFY_UNAVAILABLE

__all__ = ["ERR_NOTIFY_REJECTED", "ERR_NOTIFY_UNAVAILABLE", "NotifyConfig", "Notifier", "notification_key"]
