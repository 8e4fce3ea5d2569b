"""Workers for the runs: reuse one that polls the task queue, or start one in the background.

Where the server is on this machine and no worker polls the task queue, the commands start one
(`python -m worker`, output in `.iterloop/worker.log`, pid in `.iterloop/worker.json`), so
`iterloop run FILE` works with nothing else running; `iterloop server stop` stops them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from runtime.command_errors import CommandError
from runtime.processes import pid_alive
from runtime.server_address import is_local_address
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, temporal_errors

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription

WORKER_START_TIMEOUT_SECONDS = 60.0
WORKER_STATE_FILE = "worker.json"
WORKER_LOG_FILE = "worker.log"


@dataclass
class WorkerRecord:
    """One worker `iterloop` started in the background; `.iterloop/worker.json` lists them."""

    pid: int
    address: str
    namespace: str
    task_queue: str
    offline: bool
    log_path: str
    started_at: str


def _worker_state_path(settings: Settings) -> Path:
    return settings.home / WORKER_STATE_FILE


def read_worker_records(settings: Settings) -> list[WorkerRecord]:
    """Background workers recorded in `.iterloop/worker.json` that are still alive."""
    try:
        data = json.loads(_worker_state_path(settings).read_text(encoding="utf-8"))
        records = [WorkerRecord(**item) for item in data.get("workers", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    return [r for r in records if pid_alive(r.pid)]


def stop_background_workers(settings: Settings) -> list[int]:
    """Stop the workers `iterloop run` started in the background; returns their pids.

    Called by `iterloop server stop`: a worker left polling a stopped server would only retry.
    SIGTERM lets each one finish its running activities (the worker's graceful shutdown).
    """
    stopped = []
    for record in read_worker_records(settings):
        try:
            os.kill(record.pid, signal.SIGTERM)
            stopped.append(record.pid)
        except ProcessLookupError:
            pass
    path = _worker_state_path(settings)
    if path.exists():
        _write_worker_records(settings, [])
    return stopped


def _write_worker_records(settings: Settings, records: list[WorkerRecord]) -> None:
    path = _worker_state_path(settings)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"workers": [asdict(r) for r in records]}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _is_dead_local_poller(identity: str, hostname: str) -> bool:
    """A poller `PID@HOST` of this machine whose process is gone (the server remembers pollers for
    minutes after they stop; a killed worker must not count as a live one)."""
    pid, _, host = identity.partition("@")
    return host == hostname and pid.isdigit() and not pid_alive(int(pid))


async def live_pollers(client: Client, namespace: str, task_queue: str) -> list[str]:
    """Identities of the workers polling ``task_queue`` for workflow tasks."""
    from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=namespace,
                                 task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        timeout=RPC_TIMEOUT)
    hostname = socket.gethostname()
    return [p.identity for p in response.pollers if not _is_dead_local_poller(p.identity, hostname)]


def spawn_worker(settings: Settings, task_queue: str) -> WorkerRecord:
    """Start `python -m worker` detached (own session: Ctrl-C here does not stop it)."""
    import importlib.util

    settings.home.mkdir(parents=True, exist_ok=True)
    log_path = (settings.home / WORKER_LOG_FILE).resolve()
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.address, "TEMPORAL_NAMESPACE": settings.namespace,
           "ITERLOOP_TASK_QUEUE": task_queue, "ITERLOOP_OFFLINE": "1" if settings.offline else "0"}
    spec = importlib.util.find_spec("worker")
    if spec is not None and spec.origin:  # a source checkout that is not installed still finds worker.py
        source_dir = str(Path(spec.origin).resolve().parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_dir, env.get("PYTHONPATH", "")]))
    with open(log_path, "ab") as log:
        log.write(f"--- iterloop: {datetime.now(UTC).isoformat()} worker for {settings.address} "
                  f"namespace {settings.namespace} task queue {task_queue}\n".encode())
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "worker"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    record = WorkerRecord(pid=proc.pid, address=settings.address, namespace=settings.namespace, task_queue=task_queue,
                          offline=settings.offline, log_path=str(log_path), started_at=datetime.now(UTC).isoformat())
    _write_worker_records(settings, [*read_worker_records(settings), record])
    return record


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(f"  {line}" for line in text.splitlines()[-lines:])


@dataclass
class WorkerCheck:
    state: Literal["polling", "started", "none"]  # someone polls; we started one; nobody polls (yet)
    pollers: list[str]
    record: WorkerRecord | None = None


async def ensure_worker(client: Client, settings: Settings, task_queue: str, *, spawn: bool = True) -> WorkerCheck:
    """Reuse a worker polling ``task_queue``; on a local server start one when there is none
    (unless ``spawn`` is False: the REST API only talks to the workers it is given)."""
    async with temporal_errors(settings):
        pollers = await live_pollers(client, settings.namespace, task_queue)
    if pollers:
        return WorkerCheck("polling", pollers)
    if not spawn or not is_local_address(settings.address):
        return WorkerCheck("none", [])
    record = spawn_worker(settings, task_queue)
    expected = f"{record.pid}@{socket.gethostname()}"
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while True:
        async with temporal_errors(settings):
            pollers = await live_pollers(client, settings.namespace, task_queue)
        if expected in pollers:
            return WorkerCheck("started", pollers, record)
        if not pid_alive(record.pid):
            raise CommandError(f"the background worker (pid {record.pid}) exited while starting; "
                               f"its log {record.log_path} ends with:\n{_log_tail(record.log_path)}")
        if time.monotonic() > deadline:
            raise CommandError(f"the background worker (pid {record.pid}) did not start polling task queue "
                               f"'{task_queue}' within {WORKER_START_TIMEOUT_SECONDS:.0f}s; see {record.log_path}")
        await asyncio.sleep(0.2)


def started_worker_notice(check: WorkerCheck, task_queue: str) -> str | None:
    """What to tell the user when a background worker was started for them (None otherwise)."""
    if check.state != "started" or check.record is None:
        return None
    return (f"started a background worker (pid {check.record.pid}) for task queue '{task_queue}'; "
            f"log: {check.record.log_path}")


async def ensure_worker_for_run(client: Client, settings: Settings, desc: WorkflowExecutionDescription) -> WorkerCheck:
    """Queries, updates and retries need a worker on the run's task queue."""
    return await ensure_worker(client, settings, desc.task_queue or settings.task_queue)
