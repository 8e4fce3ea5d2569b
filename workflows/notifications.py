"""Notifications a run sends to Slack and webhooks, delivered beside the run, never in its way.

Each delivery is one `iterloop.notify` activity started as its own task: a slow or failing Slack
never holds the walk up, a delivery that fails after its retries becomes a `notify_failed` event,
and at its end the run gives pending deliveries a bounded time to land (`drain`). Continue-as-new
waits until nothing is pending (`pending`), because a task cannot cross into the next execution.

Workflow code: it only schedules. Stateless at module level, so the worker passes it through the
sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.contract.activities import NOTIFY
from workflows.contract.messages import NotifyEvent, NotifyRequest, Usage
from workflows.contract.state import NotifyOptions

#: How long a finished run waits for its last notifications.
DRAIN_TIMEOUT = timedelta(seconds=90)


class Notifications:
    """The run's notification deliveries; ``emit`` records their outcome as run events."""

    def __init__(self, options: NotifyOptions | None, emit: Callable[..., None]) -> None:
        self.options = options
        self.emit = emit
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def pending(self) -> bool:
        return not all(t.done() for t in self.tasks)

    def send(self, event: NotifyEvent, *, workflow_name: str, usage: Usage, **fields: Any) -> None:
        """Start delivering ``event`` when the run's options ask for it (else do nothing)."""
        opts = self.options
        if opts is None or event not in opts.events or not (opts.slack_channel or opts.webhooks):
            return
        info = workflow.info()
        ui_url = (f"{opts.ui_base_url.rstrip('/')}/namespaces/{info.namespace}/workflows/{info.workflow_id}"
                  if opts.ui_base_url else "")
        req = NotifyRequest(event=event, run_id=info.workflow_id, workflow=workflow_name, usage=usage,
                            slack_channel=opts.slack_channel, webhooks=list(opts.webhooks), ui_url=ui_url, **fields)
        self.tasks.append(asyncio.create_task(self._deliver(req)))

    async def _deliver(self, req: NotifyRequest) -> None:
        try:
            result = await workflow.execute_activity(
                NOTIFY.name, req, result_type=NOTIFY.result, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1),
                                         maximum_interval=timedelta(seconds=10)),
                summary=f"notify · {req.event}" + (f" · {req.gate}" if req.gate else ""))
        except ActivityError as err:
            self.emit("notify_failed", req.gate, data={"event": req.event, "error": str(err.cause or err)})
            return
        self.emit("notified", req.gate, data={"event": req.event, "delivered": result.delivered})

    async def drain(self) -> None:
        """Give pending notifications a bounded time to land before the run ends."""
        if not self.tasks:
            return
        try:
            await workflow.wait_condition(lambda: not self.pending, timeout=DRAIN_TIMEOUT,
                                          timeout_summary="notifications")
        except TimeoutError:
            self.emit("notify_failed", data={"error": "notifications still pending when the run ended"})
