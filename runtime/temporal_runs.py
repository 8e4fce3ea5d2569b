"""Talking to Temporal about runs: connect, describe, query, and say what state a run is in.

The SDK's errors become `CommandError`s that say what to do (`temporal_errors`). temporalio is
imported inside the functions (start-up cost: `iterloop validate` must start fast, see cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from runtime.command_errors import CommandError, RunNotFound, TemporalUnavailable, short_error
from runtime.settings import Settings
from workflows.contract import vocabulary

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from workflows.contract.state import Event, RunInput, RunView

RUN_STATUSES = vocabulary.RUN_STATUSES
TERMINAL_STATUSES = tuple(s for s in RUN_STATUSES if s in vocabulary.FINAL_STATUSES)

POLL_INTERVAL_SECONDS = 0.5  # how often a command that follows a run asks it for news
RPC_TIMEOUT = timedelta(seconds=20)
CONNECT_TIMEOUT_SECONDS = 15.0


async def connect_or_fail(settings: Settings) -> Client:
    from runtime.connect import connect

    try:
        return await asyncio.wait_for(connect(settings), timeout=CONNECT_TIMEOUT_SECONDS)
    except (Exception, asyncio.TimeoutError) as exc:
        hint = ("start the local dev server with `iterloop server start` (or just `iterloop run FILE`), "
                "or point --address / TEMPORAL_ADDRESS at your cluster") if not settings.address_configured else (
                "check --address / TEMPORAL_ADDRESS and that the server is up")
        raise TemporalUnavailable(f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): "
                                  f"{short_error(exc)}; {hint}") from None


@contextlib.asynccontextmanager
async def temporal_errors(settings: Settings, run_id: str = "") -> AsyncIterator[None]:
    """Turn the SDK's RPC errors into messages that say what to do."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except WorkflowQueryFailedError as exc:
        raise CommandError(f"run '{run_id}' could not answer the query: {short_error(exc)}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and run_id:
            raise RunNotFound(f"no run '{run_id}' in namespace '{settings.namespace}' at {settings.address}; "
                              "see the runs with `iterloop list`") from None
        if exc.status == RPCStatusCode.UNAVAILABLE:
            raise TemporalUnavailable(f"Temporal at {settings.address} is unavailable: {short_error(exc)}") from None
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED or "no poller" in exc.message.lower():
            raise TemporalUnavailable(
                f"no worker answered for run '{run_id}' in time; queries, answers and retries need a worker "
                f"polling the run's task queue: start one with `iterloop worker` "
                f"(TEMPORAL_ADDRESS={settings.address} ITERLOOP_TASK_QUEUE=…)") from None
        raise CommandError(f"Temporal refused the request: {short_error(exc)}") from None


async def describe_run(client: Client, settings: Settings,
                       run_id: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The run's handle (following continue-as-new) and its description; RunNotFound if unknown."""
    from workflows.contract.state import WORKFLOW_TYPE

    handle = client.get_workflow_handle(run_id)
    async with temporal_errors(settings, run_id):
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    if desc.workflow_type != WORKFLOW_TYPE:
        raise RunNotFound(f"'{run_id}' is a {desc.workflow_type} workflow, not an iterloop run")
    return handle, desc


async def query_state(handle: WorkflowHandle[Any, Any], settings: Settings) -> RunView:
    from workflows.contract.state import RunView

    async with temporal_errors(settings, handle.id):
        return await handle.query("state", result_type=RunView, rpc_timeout=RPC_TIMEOUT)


async def query_events(handle: WorkflowHandle[Any, Any], settings: Settings, after_seq: int = 0) -> list[Event]:
    from workflows.contract.state import Event

    async with temporal_errors(settings, handle.id):
        return await handle.query("events", after_seq, result_type=list[Event], rpc_timeout=RPC_TIMEOUT)


async def read_run_input(client: Client, handle: WorkflowHandle[Any, Any]) -> RunInput | None:
    """The input of the run's current execution (it carries the compiled workflow); None if unreadable."""
    from workflows.contract.state import RunInput

    try:
        async for event in handle.fetch_history_events(page_size=1, rpc_timeout=RPC_TIMEOUT):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [decoded] = await client.data_converter.decode(payloads, [RunInput])
            return decoded if isinstance(decoded, RunInput) else None
    except Exception:  # the input only adds detail (kinds, limits); inspect works without it
        return None
    return None


def closed(desc: WorkflowExecutionDescription) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    return desc.status not in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)


def execution_status(desc: WorkflowExecutionDescription) -> str:
    """Temporal's word for the execution: running, completed, failed, canceled, terminated..."""
    return desc.status.name.lower() if desc.status is not None else "unknown"


def ended_as(desc: WorkflowExecutionDescription) -> str:
    """How a closed execution ended, in iterloop's words (`cancelled`, `terminated`...)."""
    return {"canceled": "cancelled", "completed": "finished"}.get(execution_status(desc), execution_status(desc))


def effective_status(view_status: str, desc: WorkflowExecutionDescription) -> str:
    """The run status, corrected when Temporal ended the execution behind the interpreter's back
    (terminated, timed out, or failed before it could record an end)."""
    from temporalio.client import WorkflowExecutionStatus

    if not closed(desc) or view_status in TERMINAL_STATUSES:
        return view_status
    return "cancelled" if desc.status == WorkflowExecutionStatus.CANCELED else "failed"


async def execution_failure(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> str:
    """Why a closed execution did not end normally (`terminated`, the workflow error...)."""
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

    if desc.status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(rpc_timeout=RPC_TIMEOUT)
        except WorkflowFailureError as exc:
            cause = exc.cause
            return getattr(cause, "message", None) or str(cause or exc)
        except Exception as exc:
            return short_error(exc)
    return f"the workflow execution was {execution_status(desc).replace('_', ' ')}"


def update_failure_message(exc: BaseException) -> str:
    """Why the workflow rejected an update (a gate refusing an answer), from the innermost cause."""
    cause = getattr(exc, "cause", None)
    while cause is not None and getattr(cause, "cause", None) is not None and not getattr(cause, "message", ""):
        cause = cause.cause
    return (getattr(cause, "message", None) or str(cause or exc)).strip()
