"""A run's events as server-sent events (`GET /api/runs/{run_id}/events/stream`).

What to ask the run and when is the run service's (`runtime.run_service.watch_events`, which
`iterloop events --follow` uses too); this module is only the HTTP side of it: the SSE framing,
keepalive comments for proxies, and how the end and errors are told to the browser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from api.errors import api_error_from_command
from runtime.command_errors import CommandError
from runtime.run_service import FoundRun, watch_events

#: How often an event stream asks the run for new events (the `events` query, after the last seq).
STREAM_POLL_SECONDS = 0.5
#: How often an event stream without `run_*` events asks whether the run has ended (`describe` +
#: the `state` query): a run terminated from outside Temporal records no event.
STREAM_STATUS_SECONDS = 5.0
#: A comment line keeps proxies from closing a quiet event stream.
STREAM_KEEPALIVE_SECONDS = 15.0


def sse_message(data: Any, *, event: str | None = None, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, ensure_ascii=False, default=str)}")
    return "\n".join(lines) + "\n\n"


async def stream_events(found: FoundRun, after_seq: int, *, poll_seconds: float = STREAM_POLL_SECONDS,
                        status_seconds: float = STREAM_STATUS_SECONDS,
                        keepalive_seconds: float = STREAM_KEEPALIVE_SECONDS) -> AsyncIterator[str]:
    """The run's events as server-sent events, until it ends.

    Each run event is a default (`message`) event with `id: <seq>` and the event as JSON; when the
    run reaches a terminal status the stream sends `event: end` (`{"run_id", "status", "reason"}`)
    and closes. A problem reaching the run is `event: error` (`{"code", "message"}`), then close.
    How often the run is asked what: `watch_events` (``poll_seconds``, ``status_seconds``).
    """
    loop = asyncio.get_running_loop()
    yield f"retry: {int(poll_seconds * 4000)}\n\n"
    quiet_since = loop.time()
    try:
        async for batch in watch_events(found, after_seq, poll_seconds=poll_seconds, status_seconds=status_seconds):
            for event in batch.events:
                yield sse_message(event.model_dump(mode="json"), event_id=event.seq)
            if batch.end is not None:
                yield sse_message(batch.end.model_dump(mode="json"), event="end")
                return
            if batch.events:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= keepalive_seconds:
                quiet_since = loop.time()
                yield ": keepalive\n\n"
    except CommandError as exc:
        problem = api_error_from_command(exc)
        yield sse_message({"code": problem.code, "message": problem.message}, event="error")
