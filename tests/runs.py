"""Starting, watching and finishing GraphRun runs on a real server: shared by the workflow tests
and the history capture script (`tests/histories/capture.py`).

Everything takes a `Client` rather than a test environment so the same helpers work against the
session dev server, a dedicated one (restart and continue-as-new tests) or the capture server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import temporal_binary
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

import dsl
from runtime.connect import DATA_CONVERTER
from workflows.contract.state import SEARCH_ATTRIBUTES, WORKFLOW_TYPE, RunInput, RunOptions, RunResult, RunView

ROOT = Path(__file__).resolve().parents[1]

_KEY_MAKERS = {"Keyword": SearchAttributeKey.for_keyword, "KeywordList": SearchAttributeKey.for_keyword_list,
               "Double": SearchAttributeKey.for_float}
#: iterloop's search attributes, as `WorkflowEnvironment.start_local` wants them.
SEARCH_ATTRIBUTE_KEYS = [_KEY_MAKERS[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()]
#: The same for `temporal server start-dev` flags.
SEARCH_ATTRIBUTE_FLAGS = [arg for name, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{name}={kind}")]


def compile_ok(src: str) -> dsl.Workflow:
    result = dsl.check_source(textwrap.dedent(src).lstrip("\n"))
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


@asynccontextmanager
async def running_worker(client: Client, task_queue: str, **build: Any) -> AsyncIterator[None]:
    """An in-process worker (offline: scripted model) for the duration of the block; ``build``
    goes to `worker.build_worker` (e.g. ``notify=NotifyConfig(…)``)."""
    from worker import build_worker

    async with build_worker(client, task_queue, **{"offline": True, **build}):
        yield


async def start(client: Client, task_queue: str, src: str | dsl.Workflow, *, inputs: dict[str, Any] | None = None,
                workflow_id: str | None = None, **options: Any) -> WorkflowHandle[Any, RunResult]:
    """Start a run of ``src`` (`.iter` text, or a workflow already compiled and perhaps edited)."""
    wf = src if isinstance(src, dsl.Workflow) else compile_ok(src)
    started = await client.start_workflow(
        WORKFLOW_TYPE, RunInput(workflow=wf, run_inputs=inputs or {}, options=RunOptions(**options)),
        id=workflow_id or f"test-{uuid.uuid4().hex[:10]}", task_queue=task_queue, result_type=RunResult)
    # A handle without a run id follows continue-as-new: queries reach the latest run.
    return client.get_workflow_handle(started.id, result_type=RunResult)


async def finish(handle: WorkflowHandle[Any, RunResult], timeout: float = 60) -> RunResult:
    """The run's result; on a hang, fail with the workflow task error instead of waiting forever."""
    try:
        return await asyncio.wait_for(handle.result(), timeout)
    except asyncio.TimeoutError:
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_failed_event_attributes"):
                raise AssertionError(event.workflow_task_failed_event_attributes.failure.message) from None
        raise


async def state(handle: WorkflowHandle[Any, RunResult]) -> RunView:
    return await handle.query("state", result_type=RunView)


async def poll(check: Callable[[], Any], what: str, timeout: float = 30, interval: float = 0.1) -> Any:
    """Call ``check`` (sync or async) until it returns something truthy; fail after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_for(handle: WorkflowHandle[Any, RunResult], predicate: Callable[[RunView], bool],
                   timeout: float = 30) -> RunView:
    """Poll the state query until ``predicate(view)`` holds (no fixed sleeps)."""
    last: list[RunView] = []

    async def check() -> RunView | None:
        view = await state(handle)
        last[:] = [view]
        return view if predicate(view) else None

    try:
        return await poll(check, "the run's state", timeout)
    except AssertionError:
        view = last[0] if last else None
        raise AssertionError(f"condition not reached; status={view and view.status} "
                             f"failures={view and view.failures}") from None


async def all_runs_history(client: Client, workflow_id: str) -> list[Any]:
    """Every run's history of a workflow id, oldest first, following continue-as-new."""
    first = await client.get_workflow_handle(workflow_id).describe()
    run_id = first.run_id
    # `describe` on a bare id gives the latest run; walk back to the first one.
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        start = history.events[0].workflow_execution_started_event_attributes
        if not start.continued_execution_run_id:
            break
        run_id = start.continued_execution_run_id
    chain = []
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        chain.append(history)
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return chain
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


# -- servers and worker processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_local_env(*extra_args: str) -> WorkflowEnvironment:
    """A dedicated in-memory dev server with iterloop's search attributes (and ``extra_args``)."""
    return await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true",
                               *extra_args],
    )


class DevServerProcess:
    """`temporal server start-dev` on a fixed port and a database file, so it can be restarted."""

    def __init__(self, db_file: Path, log_file: Path) -> None:
        self.db_file = db_file
        self.log_file = log_file
        self.port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60) -> Client:
        """Start the server and return a client once it answers."""
        args = [temporal_binary(), "server", "start-dev", "--headless", "--db-filename", str(self.db_file),
                "--ip", "127.0.0.1", "--port", str(self.port), "--http-port", str(self.http_port),
                *SEARCH_ATTRIBUTE_FLAGS, "--log-level", "error",
                "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
                "--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true"]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

        async def connected() -> Client | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"dev server exited with {self.proc.returncode}; see {self.log_file}")
            try:
                return await Client.connect(self.address, data_converter=DATA_CONVERTER)
            except RuntimeError:  # connection refused while it starts
                return None

        return await poll(connected, f"the dev server on {self.address}", timeout, interval=0.2)

    async def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait (SIGKILL if it does not exit in time)."""
        if self.proc is not None and self.proc.poll() is None:
            await stop_process(self.proc, timeout)
        self.proc = None


def start_worker_process(address: str, task_queue: str, log_file: Path, *,
                         extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`python -m worker` as its own process, configured through the environment: offline
    (scripted model) unless ``extra_env`` says otherwise (e.g. a fake provider's coordinates)."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default",
           "ITERLOOP_TASK_QUEUE": task_queue, "ITERLOOP_OFFLINE": "1", **(extra_env or {})}
    with log_file.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


async def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30,
                       sig: signal.Signals = signal.SIGTERM) -> int:
    """Send ``sig`` and wait for the process to exit; SIGKILL it after ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
    return proc.returncode


def events_with(history: Any, attribute: str) -> Sequence[Any]:
    """The ``<attribute>`` of every history event that has it (e.g. activity_task_scheduled_event_attributes)."""
    return [getattr(e, attribute) for e in history.events if e.HasField(attribute)]


def activity_spans(history: Any) -> dict[str, list[tuple[datetime, datetime]]]:
    """Node id → (started, closed) server times of each of its activities that closed (the final
    attempt's start), in history order: when activities ran, without reading a wall clock."""
    import json

    scheduled = {e.event_id: json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)["node_id"]
                 for e in history.events if e.HasField("activity_task_scheduled_event_attributes")}
    started = {e.event_id: e.event_time.ToDatetime() for e in history.events
               if e.HasField("activity_task_started_event_attributes")}
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for e in history.events:
        for kind in ("completed", "failed", "timed_out", "canceled"):
            if e.HasField(f"activity_task_{kind}_event_attributes"):
                closed = getattr(e, f"activity_task_{kind}_event_attributes")
                if closed.started_event_id in started:
                    spans.setdefault(scheduled[closed.scheduled_event_id], []).append(
                        (started[closed.started_event_id], e.event_time.ToDatetime()))
    return spans



def live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run, read from Linux's /proc (zombies waiting
    to be reaped do not count): the tests' own oracle, independent of `activities.shell_process`."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if fields[2] == str(pgid) and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


#: A writer/reviewer loop with a $0.025 budget: at $0.01 a scripted call, writer, reviewer and writer
#: spend 0.03 and the run parks on its budget before the second review (the live-control tests).
BUDGET_REVIEW = """\
schema verdict:
  approved: bool
  summary: string

agent writer:
  model: "scripted"
  output: verdict

judge reviewer:
  model: "scripted"
  output: verdict

workflow review:
  entry: writer
  budget:
    max_cost_usd: 0.025
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(3)
  reviewer -> fail
"""
