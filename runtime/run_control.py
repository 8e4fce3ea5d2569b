"""The commands that act on a run: `answer` a gate, `retry` parked nodes, `cancel` it.

Each command is a thin printing layer over a function the REST API shares (`update_answer`,
`signal_answer`, `request_retry`, `request_cancel`), which raises the `CommandError` subclass
that says what went wrong.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from runtime.background_workers import ensure_worker_for_run
from runtime.command_errors import EXIT_OK, AnswerRejected, NodeNotParked, NothingToRetry, RunEnded
from runtime.console import print_json
from runtime.run_views import load_run
from runtime.settings import Settings
from runtime.temporal_runs import (
    RPC_TIMEOUT,
    closed,
    connect_or_fail,
    describe_run,
    ended_as,
    execution_status,
    query_state,
    temporal_errors,
    update_failure_message,
)

if TYPE_CHECKING:
    from temporalio.client import WorkflowExecutionDescription, WorkflowHandle

    from workflows.contract.state import Answer, AnswerRecord, RunView


# -- answer --------------------------------------------------------------------------------------


async def send_answer(settings: Settings, run_id: str, gate: str, values: dict[str, Any], *, by: str,
                      use_signal: bool, as_json: bool) -> int:
    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    if closed(desc):
        raise RunEnded(f"run '{run_id}' has ended ({ended_as(desc)}); there is no gate to answer")
    await ensure_worker_for_run(client, settings, desc)
    view = await query_state(handle, settings)
    open_gate = next((g for g in view.open_gates if g.gate == gate), None)
    if use_signal:
        await signal_answer(handle, settings, view, gate, values, by=by)
        note = ("" if open_gate else f" (gate '{gate}' is not open now: the run keeps the answer until it opens, "
                "or records a rejection in its events if it is not valid)")
        if as_json:
            print_json({"run_id": run_id, "gate": gate, "sent": "signal", "answers": values, "answered_by": by,
                         "gate_open": open_gate is not None})
        else:
            print(f"sent the answer for gate '{gate}' of run {run_id} as a signal{note}")
            print(f"check it with: iterloop events {run_id}")
        return EXIT_OK
    record = await update_answer(handle, settings, view, gate, values, by=by)
    if as_json:
        print_json({"run_id": run_id, **record.model_dump(mode="json"), "gate_open": open_gate is not None})
    elif open_gate is None:
        print(f"gate '{gate}' of run {run_id} is not open yet; the answer is kept and used when it opens")
    else:
        print(f"recorded the answer for gate '{gate}' of run {run_id} (by {record.answered_by}): "
              f"{json.dumps(record.answers, ensure_ascii=False)}")
    return EXIT_OK


def _answer_message(view: RunView, gate: str, values: dict[str, Any], by: str, interaction_id: str | None) -> Answer:
    """The answer for the gate's current opening (``interaction_id`` pins one; stale ones are refused)."""
    from workflows.contract.state import Answer

    if interaction_id is None:
        open_gate = next((g for g in view.open_gates if g.gate == gate), None)
        interaction_id = open_gate.interaction_id if open_gate else ""
    return Answer(gate=gate, answers=values, answered_by=by, interaction_id=interaction_id)


async def update_answer(handle: WorkflowHandle[Any, Any], settings: Settings, view: RunView, gate: str,
                        values: dict[str, Any], *, by: str, interaction_id: str | None = None) -> AnswerRecord:
    """Answer a gate through the validated `answer` update: `AnswerRejected` (nothing recorded) when
    the run refuses it. A gate that is not open yet keeps the answer for when it opens."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.contract.state import AnswerRecord

    message = _answer_message(view, gate, values, by, interaction_id)
    try:
        async with temporal_errors(settings, handle.id):
            return await handle.execute_update("answer", message, result_type=AnswerRecord, rpc_timeout=RPC_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise AnswerRejected(f"answer rejected: {update_failure_message(exc)}") from None


async def signal_answer(handle: WorkflowHandle[Any, Any], settings: Settings, view: RunView, gate: str,
                        values: dict[str, Any], *, by: str, interaction_id: str | None = None) -> None:
    """Answer a gate through the idempotent `answer` signal (fire and forget)."""
    message = _answer_message(view, gate, values, by, interaction_id)
    async with temporal_errors(settings, handle.id):
        await handle.signal("answer", message, rpc_timeout=RPC_TIMEOUT)


# -- retry ---------------------------------------------------------------------------------------


async def retry_run(settings: Settings, run_id: str, node: str | None, *, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    targets = await request_retry(handle, settings, desc, view, node)
    if as_json:
        print_json({"run_id": run_id, "retried": targets})
    else:
        print(f"retrying {', '.join(targets)} in run {run_id}; follow it with `iterloop events {run_id} --follow`")
    return EXIT_OK


async def request_retry(handle: WorkflowHandle[Any, Any], settings: Settings, desc: WorkflowExecutionDescription,
                        view: RunView, node: str | None) -> list[str]:
    """Ask the run to re-run ``node`` (every parked node when None); the nodes retried."""
    run_id = handle.id
    if closed(desc):
        raise RunEnded(f"run '{run_id}' has ended ({view.status}); there is nothing to retry")
    parked = [f.node for f in view.failures]
    if node and node not in parked:
        raise NodeNotParked(f"node '{node}' of run '{run_id}' is not parked; "
                            f"parked nodes: {', '.join(parked) or '(none)'}")
    if not parked:
        raise NothingToRetry(f"run '{run_id}' has no parked node to retry (status {view.status})")
    async with temporal_errors(settings, run_id):
        await handle.signal("retry", node or "", rpc_timeout=RPC_TIMEOUT)
    return [node] if node else parked


# -- cancel --------------------------------------------------------------------------------------

CANCEL_WAIT_SECONDS = 10.0


async def cancel_run(settings: Settings, run_id: str, *, as_json: bool) -> int:
    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    desc = await request_cancel(handle, settings, desc, wait_seconds=CANCEL_WAIT_SECONDS)
    ended = closed(desc)
    if as_json:
        print_json({"run_id": run_id, "cancel_requested": True, "ended": ended,
                     "execution_status": execution_status(desc)})
    elif ended:
        print(f"cancelled run {run_id}")
    else:
        print(f"asked run {run_id} to cancel; it ends as cancelled when a worker picks up the request")
    return EXIT_OK


async def request_cancel(handle: WorkflowHandle[Any, Any], settings: Settings, desc: WorkflowExecutionDescription,
                         *, wait_seconds: float) -> WorkflowExecutionDescription:
    """Ask the run to cancel and wait up to ``wait_seconds`` for it to end; its latest description."""
    run_id = handle.id
    if closed(desc):
        raise RunEnded(f"run '{run_id}' has already ended ({ended_as(desc)}); nothing to cancel")
    async with temporal_errors(settings, run_id):
        await handle.cancel(rpc_timeout=RPC_TIMEOUT)
    deadline = time.monotonic() + wait_seconds
    while not closed(desc) and time.monotonic() < deadline:  # a worker makes it end within moments
        await asyncio.sleep(0.2)
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    return desc
