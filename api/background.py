"""Work the API finishes after it has answered the request, tracked by the app.

Slack wants an answer to an interaction within 3 seconds, but answering a gate asks the run for
its state (a Temporal query, up to 20 s when no worker is up), signals it and updates the Slack
message. `api.slack` acknowledges first and hands that work to `BackgroundWork.start`. The app
holds one `BackgroundWork` (`app.state.background`): it keeps a reference to every task (so none
is garbage-collected half-way), logs the ones that fail, and lets the app wait for them when it
shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("iterloop.api")

#: How long a shutting-down API lets follow-up work finish before cancelling it.
DRAIN_SECONDS = 10.0


class BackgroundWork:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s failed: %s: %s", task.get_name(), type(exc).__name__, exc, exc_info=exc)

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait for the work in flight (at most ``timeout`` seconds), then cancel what is left."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            log.warning("%s did not finish within %.0f s of shutdown; cancelled", task.get_name(), timeout)
            task.cancel()
        if late:
            await asyncio.wait(late)
