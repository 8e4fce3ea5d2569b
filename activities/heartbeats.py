"""Waiting for long work inside an activity while heartbeating.

Temporal delivers a cancel (and notices a dead worker) only through heartbeats, and the details
show progress in the Web UI, so every activity that waits on something slow (a command, an MCP
tool) waits here: in slices of at most the heartbeat interval, never cancelling what it waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity


async def wait_heartbeating(work: asyncio.Future[Any], *, started: float, timeout_seconds: float,
                            every_seconds: float, details: Callable[[], Any]) -> bool:
    """Wait for ``work``, heartbeating ``details()`` every ``every_seconds``; False when
    ``timeout_seconds`` (counted from ``started``, a `time.monotonic()`) ran out first."""
    deadline = started + timeout_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        done, _ = await asyncio.wait({work}, timeout=min(every_seconds, remaining))
        if done:
            return True
        activity.heartbeat(details())
