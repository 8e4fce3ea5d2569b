"""Workers for the runs: reuse one that polls the task queue and suits the run, or start one in the background.

Where the server is on this machine and no worker polls the task queue, the commands start one
(`python -m worker`, output in `.iterloop/worker.log`, pid in `.iterloop/worker.json`), so
`iterloop run FILE` works with nothing else running; `iterloop worker stop` and `iterloop server
stop` stop them.

A worker keeps the environment it was started with, so each one records the fingerprint of its
model settings (`runtime.worker_fingerprint`: offline or not, which model keys are set, base URLs,
model variables; never a key's value). A command that starts, answers or retries a run compares it
with what the run needs from the caller's environment: a background worker of ours that differs is
stopped (SIGTERM: it finishes its running activities, and runs are durable) and started again with
the caller's environment; another worker on this machine (with a local server) that publishes a
different fingerprint (in its Temporal identity) is refused, naming its pid, start time and
directory. Workers elsewhere keep their own environment: a deployment's workers hold the keys.
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runtime.command_errors import CommandError
from runtime.processes import pid_alive
from runtime.server_address import is_local_address
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, temporal_errors
from runtime.worker_fingerprint import WorkerFingerprint, is_offline_queue, parse_identity, worker_fingerprint

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription

WORKER_START_TIMEOUT_SECONDS = 60.0
#: How long a restart waits for the old worker to exit (its graceful shutdown takes up to 10 s).
WORKER_STOP_TIMEOUT_SECONDS = 20.0
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
    cwd: str = ""  # the directory it was started from (and runs shell commands in without a run's own)
    fingerprint: dict[str, Any] | None = None  # `WorkerFingerprint.to_json()`; None: an older iterloop's


class WorkerMismatch(CommandError):
    """A worker polls the run's task queue with settings the run cannot use, and it is not ours to restart."""


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


def stop_background_workers(settings: Settings, *, wait: bool = False) -> list[int]:
    """Stop the workers `iterloop run` started in the background; returns their pids.

    Called by `iterloop server stop` (a worker left polling a stopped server would only retry) and
    `iterloop worker stop` (``wait``: until they have exited). SIGTERM lets each one finish its
    running activities (the worker's graceful shutdown).
    """
    stopped = []
    for record in read_worker_records(settings):
        if _terminate(record.pid):
            stopped.append(record.pid)
    path = _worker_state_path(settings)
    if path.exists():
        _write_worker_records(settings, [])
    if wait:
        for pid in stopped:
            _wait_gone(pid, WORKER_STOP_TIMEOUT_SECONDS)
    return stopped


def _terminate(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def _stop_and_wait(record: WorkerRecord) -> None:
    """SIGTERM one of our workers and wait for it to exit (SIGKILL when it will not)."""
    _terminate(record.pid)
    if not await asyncio.to_thread(_wait_gone, record.pid, WORKER_STOP_TIMEOUT_SECONDS):
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await asyncio.to_thread(_wait_gone, record.pid, 5.0)


def _write_worker_records(settings: Settings, records: list[WorkerRecord]) -> None:
    path = _worker_state_path(settings)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"workers": [asdict(r) for r in records]}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _is_dead_local_poller(identity: str, hostname: str) -> bool:
    """A poller `PID@HOST` of this machine whose process is gone (the server remembers pollers for
    minutes after they stop; a killed worker must not count as a live one)."""
    pid, host, _ = parse_identity(identity)
    return host == hostname and pid is not None and not pid_alive(pid)


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


def spawn_worker(settings: Settings, task_queue: str, *, environment: Mapping[str, str] | None = None,
                 offline: bool | None = None, model_vars: list[str] | None = None) -> WorkerRecord:
    """Start `python -m worker` detached (own session: Ctrl-C here does not stop it), with
    ``environment`` (the caller's: the process environment over `.env`; default `os.environ`).

    ``offline`` defaults to the kind of the task queue (`<queue>-offline` is served offline).
    """
    import importlib.util

    offline = is_offline_queue(task_queue) if offline is None else offline
    settings.home.mkdir(parents=True, exist_ok=True)
    log_path = (settings.home / WORKER_LOG_FILE).resolve()
    base = dict(os.environ if environment is None else environment)
    env = {**base, "TEMPORAL_ADDRESS": settings.address, "TEMPORAL_NAMESPACE": settings.namespace,
           "ITERLOOP_TASK_QUEUE": task_queue, "ITERLOOP_OFFLINE": "1" if offline else "0"}
    spec = importlib.util.find_spec("worker")
    if spec is not None and spec.origin:  # a source checkout that is not installed still finds worker.py
        source_dir = str(Path(spec.origin).resolve().parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_dir, env.get("PYTHONPATH", "")]))
    cwd = os.getcwd()
    with open(log_path, "ab") as log:
        log.write(f"--- iterloop: {datetime.now(UTC).isoformat()} worker for {settings.address} "
                  f"namespace {settings.namespace} task queue {task_queue}"
                  f"{' (offline: scripted model)' if offline else ''} in {cwd}\n".encode())
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "worker"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    fingerprint = worker_fingerprint(env, offline=offline, model_vars=model_vars or [])
    record = WorkerRecord(pid=proc.pid, address=settings.address, namespace=settings.namespace, task_queue=task_queue,
                          offline=offline, log_path=str(log_path), started_at=datetime.now(UTC).isoformat(),
                          cwd=cwd, fingerprint=fingerprint.to_json())
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
    #: Our background workers stopped because their settings did not suit the run, and why.
    replaced: list[tuple[WorkerRecord, list[str]]] = field(default_factory=list)


@dataclass
class WorkerNeed:
    """What a command needs of the workers on a task queue: their fingerprint (None: any worker
    will do, e.g. for a query), and the environment to start one with."""

    fingerprint: WorkerFingerprint | None = None
    environment: Mapping[str, str] | None = None
    model_vars: list[str] = field(default_factory=list)


async def ensure_worker(client: Client, settings: Settings, task_queue: str, *, spawn: bool = True,
                        need: WorkerNeed | None = None) -> WorkerCheck:
    """Reuse a worker polling ``task_queue`` that suits ``need``; on a local server start one when there is
    none (unless ``spawn`` is False: the REST API only talks to the workers it is given).

    With ``need.fingerprint``, our background workers whose recorded fingerprint differs are
    restarted with ``need.environment``, and another worker that publishes a different fingerprint
    is `WorkerMismatch`.
    """
    need = need or WorkerNeed()
    async with temporal_errors(settings):
        pollers = await live_pollers(client, settings.namespace, task_queue)
    replaced: list[tuple[WorkerRecord, list[str]]] = []
    if pollers:
        if need.fingerprint is None or not spawn:
            return WorkerCheck("polling", pollers)
        replaced = _unsuitable_ours(settings, task_queue, pollers, need.fingerprint)
        if not replaced:
            return WorkerCheck("polling", pollers)
        for record, _ in replaced:
            await _stop_and_wait(record)
        gone = {r.pid for r, _ in replaced}
        _write_worker_records(settings, [r for r in read_worker_records(settings) if r.pid not in gone])
    if not spawn or not is_local_address(settings.address):
        return WorkerCheck("none", [], replaced=replaced)
    fingerprint = need.fingerprint
    record = spawn_worker(settings, task_queue, environment=need.environment,
                          offline=fingerprint.offline if fingerprint is not None else None,
                          model_vars=need.model_vars)
    hostname = socket.gethostname()
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while True:
        async with temporal_errors(settings):
            pollers = await live_pollers(client, settings.namespace, task_queue)
        if any(parse_identity(p)[:2] == (record.pid, hostname) for p in pollers):
            return WorkerCheck("started", pollers, record, replaced)
        if not pid_alive(record.pid):
            raise CommandError(f"the background worker (pid {record.pid}) exited while starting; "
                               f"its log {record.log_path} ends with:\n{_log_tail(record.log_path)}")
        if time.monotonic() > deadline:
            raise CommandError(f"the background worker (pid {record.pid}) did not start polling task queue "
                               f"'{task_queue}' within {WORKER_START_TIMEOUT_SECONDS:.0f}s; see {record.log_path}")
        await asyncio.sleep(0.2)


def _unsuitable_ours(settings: Settings, task_queue: str, pollers: list[str],
                     wanted: WorkerFingerprint) -> list[tuple[WorkerRecord, list[str]]]:
    """Our background workers among ``pollers`` whose settings differ from ``wanted`` (and why);
    `WorkerMismatch` for another worker whose published fingerprint differs."""
    hostname = socket.gethostname()
    local = is_local_address(settings.address)
    ours = {r.pid: r for r in read_worker_records(settings)
            if r.task_queue == task_queue and r.address == settings.address and r.namespace == settings.namespace}
    unsuitable = []
    for identity in pollers:
        pid, host, digest = parse_identity(identity)
        if host == hostname and pid in ours:
            recorded = WorkerFingerprint.from_json(ours[pid].fingerprint)
            reasons = (wanted.differences(recorded) if recorded is not None
                       else ["it was started by an earlier iterloop, which did not record its settings"])
            if reasons:
                unsuitable.append((ours[pid], reasons))
        elif host == hostname and local and digest is not None and digest != wanted.digest():
            # Only on this machine, with a local server: elsewhere a worker's environment is its own
            # (a deployment's workers hold the keys; the person typing the command need not).
            raise WorkerMismatch(_refusal(identity, pid, host, hostname, task_queue, wanted))
    return unsuitable


def _refusal(identity: str, pid: int | None, host: str, hostname: str, task_queue: str,
             wanted: WorkerFingerprint) -> str:
    if host == hostname and pid is not None:
        started, directory = process_started_at(pid), process_directory(pid)
        who = (f"pid {pid}, started {started or 'at an unknown time'}, in directory {directory or '(unknown)'}")
    else:
        who = f"{identity!r} on host {host or '(unknown)'}"
    kind = "an offline (scripted) run" if wanted.offline else "a run with this command's model settings"
    return (f"task queue '{task_queue}' is served by a worker iterloop did not start from here ({who}) whose "
            f"settings do not suit {kind} (model keys, base URLs or the offline flag differ); stop that worker "
            "and start it again with this environment, or use another --task-queue")


def process_started_at(pid: int) -> str | None:
    """When process ``pid`` started (ISO 8601, from /proc on Linux), or None."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")


def process_directory(pid: int) -> str | None:
    """The working directory of process ``pid`` (from /proc on Linux), or None."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def started_worker_notice(check: WorkerCheck, task_queue: str) -> str | None:
    """What to tell the user when a background worker was started or restarted for them (None otherwise)."""
    if check.state != "started" or check.record is None:
        return None
    if check.replaced:
        old = ", ".join(str(r.pid) for r, _ in check.replaced)
        reasons = "; ".join(dict.fromkeys(reason for _, why in check.replaced for reason in why))
        return (f"restarted the background worker for task queue '{task_queue}' (pid {old} → {check.record.pid}) "
                f"with this command's environment: {reasons}; log: {check.record.log_path}")
    kind = " (offline: scripted model)" if check.record.offline else ""
    return (f"started a background worker (pid {check.record.pid}) for task queue '{task_queue}'{kind}; "
            f"log: {check.record.log_path}")


async def ensure_worker_for_run(client: Client, settings: Settings, desc: WorkflowExecutionDescription,
                                need: WorkerNeed | None = None) -> WorkerCheck:
    """Queries, updates and retries need a worker on the run's task queue (of the run's kind: a
    `<queue>-offline` queue is served offline)."""
    return await ensure_worker(client, settings, desc.task_queue or settings.task_queue, need=need)


def worker_status_rows(settings: Settings) -> list[dict[str, Any]]:
    """The background workers of this directory, as `iterloop worker status` shows them."""
    rows = []
    for record in read_worker_records(settings):
        fingerprint = WorkerFingerprint.from_json(record.fingerprint)
        rows.append({**asdict(record), "fingerprint": fingerprint.to_json() if fingerprint else None,
                     "digest": fingerprint.digest() if fingerprint else None})
    return rows
