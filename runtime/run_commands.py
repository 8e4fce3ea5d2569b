"""The runtime commands: `iterloop run`, `answer`, `inspect`, `list`, `events`, `report`, `retry`, `cancel`.

cli.py registers them with `register(app)`. `iterloop validate` must start fast, so at import time
this module loads only the standard library, typer, `runtime.settings` and the pure `dsl`; the
Temporal client, the workflow modules and the worker are imported inside the commands.

Exit codes (`docs/runtime.md` lists them for users):

    0    the run finished (or was started with --detach; or the command did what it was asked)
    1    the run failed, the file has compile errors, or an answer was rejected
    2    usage error: bad option or value, unknown run id, Temporal unreachable
    3    the run waits for a human answer (and there is no terminal to ask on)
    4    the run is parked as failed_resumable (fix the cause, then `iterloop retry`)
    5    the run stopped because a budget was exceeded
    130  the run was cancelled (or Ctrl-C stopped following it; the run itself goes on)

Where the server is on this machine and no worker polls the task queue, the commands start one
in the background (`python -m worker`, output in `.iterloop/worker.log`, pid in
`.iterloop/worker.json`), so `iterloop run FILE` works with nothing else running.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

from dsl.ir import SchemaField, Var, Workflow
from runtime.settings import Settings

if TYPE_CHECKING:  # imported for real inside the commands (start-up cost, see the module docstring)
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from workflows.state import Event, Gate, RunInput, RunView

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
EXIT_PARKED = 4
EXIT_BUDGET = 5
EXIT_CANCELLED = 130

RUN_STATUSES = ("running", "waiting_human", "failed_resumable", "finished", "failed", "cancelled", "budget_exceeded")
STATUS_EXIT_CODES = {"running": EXIT_OK, "finished": EXIT_OK, "failed": EXIT_FAILED, "waiting_human": EXIT_WAITING,
                     "failed_resumable": EXIT_PARKED, "budget_exceeded": EXIT_BUDGET, "cancelled": EXIT_CANCELLED}
TERMINAL_STATUSES = ("finished", "failed", "cancelled", "budget_exceeded")

POLL_INTERVAL_SECONDS = 0.5
RPC_TIMEOUT = timedelta(seconds=20)
CONNECT_TIMEOUT_SECONDS = 15.0
WORKER_START_TIMEOUT_SECONDS = 60.0
WORKER_STATE_FILE = "worker.json"
WORKER_LOG_FILE = "worker.log"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


# -- errors --------------------------------------------------------------------------------------


class CommandError(Exception):
    """A problem to report to the user as `iterloop: message`, ending the command with ``exit_code``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """The command line asks for something impossible: a bad option value, an unknown var."""

    exit_code = EXIT_USAGE


class RunNotFound(UsageError):
    """No run with that id in the namespace."""


class TemporalUnavailable(UsageError):
    """The Temporal server cannot be reached, or no worker answers for the run."""


# -- settings, addresses, links ------------------------------------------------------------------


def command_settings(address: str | None, namespace: str | None, task_queue: str | None,
                     *, offline: bool | None = None) -> Settings:
    """The environment (read once, here) with the command line's overrides on top."""
    return Settings.from_env().with_overrides(address=address, namespace=namespace, task_queue=task_queue,
                                              offline=offline)


def is_local_address(address: str) -> bool:
    host = address.rpartition(":")[0] if ":" in address else address
    return host in LOCAL_HOSTS


def settings_for_existing_runs(settings: Settings) -> Settings:
    """With no address configured, the dev server this directory started (if it runs) is the one to ask."""
    if settings.address_configured:
        return settings
    from runtime import devserver

    current = devserver.status(settings)
    if current.state == "running" and current.server is not None:
        return settings.with_overrides(address=current.server.address)
    return settings


def web_ui_base(settings: Settings) -> str:
    """Where the Temporal Web UI is: the dev server's UI, else the same host on ``settings.ui_port``."""
    if not settings.address_configured or is_local_address(settings.address):
        from runtime import devserver

        current = devserver.status(settings)
        server = current.server
        same_port = server is not None and server.address.rpartition(":")[2] == settings.address.rpartition(":")[2]
        if server is not None and server.ui_url and (same_port or not settings.address_configured):
            return server.ui_url.rstrip("/")
        return f"http://localhost:{settings.ui_port}"
    host = settings.address.rpartition(":")[0] or settings.address
    return f"http://{host}:{settings.ui_port}"


def web_ui_link(settings: Settings, run_id: str) -> str:
    from urllib.parse import quote

    return f"{web_ui_base(settings)}/namespaces/{quote(settings.namespace)}/workflows/{quote(run_id, safe='')}"


# -- inputs: --var, --input, ${ENV} defaults, answers ---------------------------------------------

_JSON_TYPED = ("int", "float", "bool", "json", "string[]")
_ENV_REF = re.compile(r"\$\{([^}]+)\}")


def _type_problem(var: Var, value: Any) -> str | None:
    """Why ``value`` is not a ``var.type``, or None."""
    t = var.type
    if t == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "an integer, e.g. 28"
    if t == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "a number, e.g. 0.05"
    if t == "bool" and not isinstance(value, bool):
        return "true or false"
    if t == "string[]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return 'a JSON array of strings, e.g. ["a","b"]'
    if t == "string" and not isinstance(value, str):
        return "a string"
    return None


def parse_var_assignments(assignments: list[str], wf: Workflow) -> dict[str, Any]:
    """`--var NAME=VALUE` values, typed by the var's declaration.

    int, float, bool, json and string[] vars take a JSON value (`--var days=28`,
    `--var metrics='["a","b"]'`); string vars take the text as it is.
    """
    values: dict[str, Any] = {}
    declared = ", ".join(wf.vars) or "(none)"
    for item in assignments:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--var '{item}' is not NAME=VALUE (e.g. --var topic=checkout)")
        var = wf.vars.get(name)
        if var is None:
            raise UsageError(f"--var {name}: workflow '{wf.name}' declares no var '{name}'; declared vars: {declared}")
        if var.type not in _JSON_TYPED:
            values[name] = text
            continue
        try:
            value = json.loads(text)
        except ValueError:
            raise UsageError(f"--var {name}: '{text}' is not valid JSON; var '{name}' is {var.type}, so give "
                             f"{_type_problem(var, object()) or 'a JSON value'}") from None
        problem = _type_problem(var, value)
        if problem:
            raise UsageError(f"--var {name}: var '{name}' is {var.type}, so give {problem}; got {text}")
        values[name] = float(value) if var.type == "float" else value
    return values


def parse_input_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--input is not valid JSON ({exc}); give an object, "
                         "e.g. --input '{\"plan\": \"v2\"}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"--input must be a JSON object of run inputs, got {type(value).__name__}")
    return value


def resolve_env_defaults(wf: Workflow, given: Mapping[str, Any],
                         env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """`${NAME}` in string var defaults, resolved now, by the client (so visible in history).

    Returns the resolved values of vars not given on the command line, and warnings for
    references to environment variables that are not set (they resolve to "").
    """
    from activities.env import expand_env  # pure: the same expansion the worker uses

    resolved: dict[str, str] = {}
    warnings: list[str] = []
    for name, var in wf.vars.items():
        if name in given or not var.has_default or not isinstance(var.default, str) or "${" not in var.default:
            continue
        for ref in _ENV_REF.findall(var.default):
            if ref not in env:
                warnings.append(f"var {name}: environment variable {ref} is not set; ${{{ref}}} becomes \"\"")
        resolved[name] = expand_env(var.default, env)
    return resolved, warnings


def parse_answer_assignments(assignments: list[str]) -> dict[str, str]:
    """`--answer FIELD=VALUE` pairs; values stay text (the gate converts them to the field's type)."""
    answers: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--answer '{item}' is not FIELD=VALUE (e.g. --answer approved=true)")
        if name in answers:
            raise UsageError(f"--answer {name} is given twice")
        answers[name] = value
    return answers


def load_answers_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML mapping of field → value."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise UsageError(f"'{path}' is neither JSON nor YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"'{path}' must hold a mapping of field → value, e.g. {{\"approved\": true}}")
    return {str(k): v for k, v in data.items()}


def field_hint(field: SchemaField) -> str:
    """What a gate field expects, as the prompt and the inspect output show it."""
    if field.enum_values:
        return f"{field.type}, one of {', '.join(field.enum_values)}"
    return {"bool": "bool: true/false", "int": "int", "float": "number", "string": "text",
            "string[]": "list: comma-separated", "json": "JSON value"}.get(field.type, field.type)


def default_answerer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in containers without /etc/passwd entries
        return "cli"


# -- talking to Temporal ------------------------------------------------------------------------


async def connect_or_fail(settings: Settings) -> Client:
    from runtime.connect import connect

    try:
        return await asyncio.wait_for(connect(settings), timeout=CONNECT_TIMEOUT_SECONDS)
    except (Exception, asyncio.TimeoutError) as exc:
        hint = ("start the local dev server with `iterloop server start` (or just `iterloop run FILE`), "
                "or point --address / TEMPORAL_ADDRESS at your cluster") if not settings.address_configured else (
                "check --address / TEMPORAL_ADDRESS and that the server is up")
        raise TemporalUnavailable(f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): "
                                  f"{_short_error(exc)}; {hint}") from None


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


@contextlib.asynccontextmanager
async def temporal_errors(settings: Settings, run_id: str = "") -> AsyncIterator[None]:
    """Turn the SDK's RPC errors into messages that say what to do."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except WorkflowQueryFailedError as exc:
        raise CommandError(f"run '{run_id}' could not answer the query: {_short_error(exc)}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and run_id:
            raise RunNotFound(f"no run '{run_id}' in namespace '{settings.namespace}' at {settings.address}; "
                              "see the runs with `iterloop list`") from None
        if exc.status == RPCStatusCode.UNAVAILABLE:
            raise TemporalUnavailable(f"Temporal at {settings.address} is unavailable: {_short_error(exc)}") from None
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED or "no poller" in exc.message.lower():
            raise TemporalUnavailable(
                f"no worker answered for run '{run_id}' in time; queries, answers and retries need a worker "
                f"polling the run's task queue: start one with `iterloop worker` "
                f"(TEMPORAL_ADDRESS={settings.address} ITERLOOP_TASK_QUEUE=…)") from None
        raise CommandError(f"Temporal refused the request: {_short_error(exc)}") from None


async def describe_run(client: Client, settings: Settings,
                       run_id: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The run's handle (following continue-as-new) and its description; RunNotFound if unknown."""
    from workflows.state import WORKFLOW_TYPE

    handle = client.get_workflow_handle(run_id)
    async with temporal_errors(settings, run_id):
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    if desc.workflow_type != WORKFLOW_TYPE:
        raise UsageError(f"'{run_id}' is a {desc.workflow_type} workflow, not an iterloop run")
    return handle, desc


async def query_state(handle: WorkflowHandle[Any, Any], settings: Settings) -> RunView:
    from workflows.state import RunView

    async with temporal_errors(settings, handle.id):
        return await handle.query("state", result_type=RunView, rpc_timeout=RPC_TIMEOUT)


async def query_events(handle: WorkflowHandle[Any, Any], settings: Settings, after_seq: int = 0) -> list[Event]:
    from workflows.state import Event

    async with temporal_errors(settings, handle.id):
        return await handle.query("events", after_seq, result_type=list[Event], rpc_timeout=RPC_TIMEOUT)


async def read_run_input(client: Client, handle: WorkflowHandle[Any, Any]) -> RunInput | None:
    """The input of the run's current execution (it carries the compiled workflow); None if unreadable."""
    from workflows.state import RunInput

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
            return _short_error(exc)
    return f"the workflow execution was {execution_status(desc).replace('_', ' ')}"


# -- the background worker ----------------------------------------------------------------------


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_worker_records(settings: Settings) -> list[WorkerRecord]:
    """Background workers recorded in `.iterloop/worker.json` that are still alive."""
    try:
        data = json.loads(_worker_state_path(settings).read_text(encoding="utf-8"))
        records = [WorkerRecord(**item) for item in data.get("workers", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    return [r for r in records if _pid_alive(r.pid)]


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
    return host == hostname and pid.isdigit() and not _pid_alive(int(pid))


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
    state: str  # "polling" (someone polls), "started" (we started one), "none" (remote, nobody polls)
    pollers: list[str]
    record: WorkerRecord | None = None


async def ensure_worker(client: Client, settings: Settings, task_queue: str) -> WorkerCheck:
    """Reuse a worker polling ``task_queue``; on a local server start one when there is none."""
    async with temporal_errors(settings):
        pollers = await live_pollers(client, settings.namespace, task_queue)
    if pollers:
        return WorkerCheck("polling", pollers)
    if not is_local_address(settings.address):
        return WorkerCheck("none", [])
    record = spawn_worker(settings, task_queue)
    expected = f"{record.pid}@{socket.gethostname()}"
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while True:
        async with temporal_errors(settings):
            pollers = await live_pollers(client, settings.namespace, task_queue)
        if expected in pollers:
            return WorkerCheck("started", pollers, record)
        if not _pid_alive(record.pid):
            raise CommandError(f"the background worker (pid {record.pid}) exited while starting; "
                               f"its log {record.log_path} ends with:\n{_log_tail(record.log_path)}")
        if time.monotonic() > deadline:
            raise CommandError(f"the background worker (pid {record.pid}) did not start polling task queue "
                               f"'{task_queue}' within {WORKER_START_TIMEOUT_SECONDS:.0f}s; see {record.log_path}")
        await asyncio.sleep(0.2)


async def ensure_worker_for_run(client: Client, settings: Settings, desc: WorkflowExecutionDescription) -> None:
    """Queries, updates and retries need a worker on the run's task queue."""
    queue = desc.task_queue or settings.task_queue
    check = await ensure_worker(client, settings, queue)
    if check.state == "started" and check.record is not None:
        print(f"iterloop: started a background worker (pid {check.record.pid}) for task queue '{queue}'; "
              f"log: {check.record.log_path}", file=sys.stderr)


# -- terminal output -----------------------------------------------------------------------------


def print_columns(headers: tuple[str, ...], rows: list[tuple[str, ...]], *, right: set[int]) -> None:
    """A plain-text table: columns as wide as their widest cell, numbers (``right``) right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        print("  ".join(cells).rstrip())


def _local_time(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S") if iso else ""


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Terminal:
    """Event lines on stdout, and on a terminal a progress line rewritten in place below them."""

    def __init__(self, stream: TextIO, *, progress: bool) -> None:
        self.stream = stream
        self.progress_enabled = progress
        self._shown = False

    def line(self, text: str = "") -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        if not self.progress_enabled:
            return
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 1)
        self.stream.write("\r\x1b[2K" + text[:width])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


def event_text(event: Event, *, as_json: bool) -> str:
    """One event as a terminal line, or as one JSON Lines record."""
    from runtime.report import format_event_line

    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False) if as_json else format_event_line(event)


def progress_text(view: RunView, wf: Workflow) -> str:
    """`[3/7 nodes] reviewer · llm node`."""
    from runtime.report import kind_label

    steps = [n for n, node in wf.nodes.items() if node.kind not in ("done", "fail")]
    visited = sum(1 for n in steps if view.nodes.get(n) is not None and view.nodes[n].visits > 0)
    current = ", ".join(f"{n} · {kind_label(wf.nodes[n].kind) if n in wf.nodes else 'node'}"
                        for n in view.current_nodes) or view.status.replace("_", " ")
    return f"[{visited}/{len(steps)} nodes] {current}"


def gate_fields(gate: Gate) -> list[SchemaField]:
    return list(gate.schema_.fields) if gate.schema_ is not None else []


def gate_answer_command(run_id: str, gate: Gate) -> str:
    from runtime.report import answer_command

    return answer_command(run_id, gate.gate, [f.name for f in gate_fields(gate)])


def describe_gate(gate: Gate) -> list[str]:
    """Instructions, questions and expected fields of an open gate, as indented lines."""
    from runtime.report import preview

    out: list[str] = []
    if gate.instructions:
        out += [f"  {line}" for line in gate.instructions.rstrip().splitlines()]
    for key, value in gate.questions.items():
        if not key.startswith("_"):
            out.append(f"  · {key}: {preview(value, 200)}")
    fields = gate_fields(gate)
    if fields:
        out.append("  expected: " + ", ".join(f"{f.name} ({field_hint(f)})" for f in fields))
    else:
        out.append("  expected: text (free-form answer)")
    return out


def print_failure(term: Terminal, run_id: str, view: RunView) -> None:
    term.line(f"run {run_id} is parked: a node failed after its retries (status failed_resumable)")
    for failure in view.failures:
        first, *rest = failure.error.splitlines() or [""]
        term.line(f"  {failure.node}: {first}")
        for line in rest:
            term.line(f"    {line}")
    term.line("fix the cause, then retry the node:")
    for failure in view.failures:
        term.line(f"  iterloop retry {run_id} --node {failure.node}")


def print_waiting(term: Terminal, run_id: str, view: RunView) -> None:
    for gate in sorted(view.open_gates, key=lambda g: g.gate):
        term.line(f"run {run_id} waits for a human answer at gate '{gate.gate}':")
        for line in describe_gate(gate):
            term.line(line)
        term.line("answer it with:")
        term.line(f"  {gate_answer_command(run_id, gate)}")


def final_line(run_id: str, status: str, view: RunView, events: list[Event]) -> str:
    from runtime.report import format_cost, format_duration, run_duration_seconds

    duration = run_duration_seconds(events)
    took = f" in {format_duration(duration)}" if duration is not None else ""
    usage = view.usage
    spend = f" · {usage.total_tokens:,} tokens · {format_cost(usage.cost_usd)}"
    if usage.provider == "scripted":
        spend += " (scripted model)"
    if status == "finished":
        return f"run {run_id} finished{took}{spend}"
    if status == "budget_exceeded":
        return f"run {run_id} stopped{took}: {view.reason}{spend}"
    if status == "cancelled":
        return f"run {run_id} was cancelled{took}"
    return f"run {run_id} {status.replace('_', ' ')}{took}" + (f": {view.reason}" if view.reason else "") + spend


# -- interactive answers -------------------------------------------------------------------------


async def prompt_gate(handle: WorkflowHandle[Any, Any], settings: Settings, gate: Gate, *, by: str,
                      ask: Callable[[str], str], say: Callable[[str], None]) -> bool:
    """Ask for each field of an open gate and send the answer as a validated update.

    A rejected answer shows the gate's reason and asks again. Returns False when the gate was
    closed meanwhile (answered elsewhere), True once our answer is recorded.
    """
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.state import Answer, AnswerRecord

    say(f"── human gate '{gate.gate}' ──")
    for line in describe_gate(gate):
        say(line)
    fields = gate_fields(gate)
    while True:
        answers: dict[str, Any] = {}
        for field in fields or [SchemaField(name="text", type="string")]:
            answers[field.name] = ask(f"  {field.name} ({field_hint(field)}): ").strip()
        view = await query_state(handle, settings)
        if not any(g.interaction_id == gate.interaction_id for g in view.open_gates):
            say(f"  gate '{gate.gate}' was answered meanwhile; your answer was not sent")
            return False
        try:
            async with temporal_errors(settings, handle.id):
                record = await handle.execute_update(
                    "answer", Answer(gate=gate.gate, answers=answers, answered_by=by,
                                     interaction_id=gate.interaction_id),
                    result_type=AnswerRecord, rpc_timeout=RPC_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            say(f"  rejected: {_update_failure_message(exc)}; try again")
            continue
        say(f"  recorded: {json.dumps(record.answers, ensure_ascii=False)} (by {record.answered_by})")
        return True


def _update_failure_message(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    while cause is not None and getattr(cause, "cause", None) is not None and not getattr(cause, "message", ""):
        cause = cause.cause
    return (getattr(cause, "message", None) or str(cause or exc)).strip()


# -- running a command ---------------------------------------------------------------------------


#: End the process with `os._exit` once a command that used Temporal is done. The SDK's Rust threads
#: can abort interpreter shutdown ("Fatal Python error: PyGILState_Release ... finalizing",
#: temporalio/sdk-python#300; seen here when a worker stops), which would turn the command's exit
#: code into 134. Code that calls the commands in-process (a test harness) sets this to False.
HARD_EXIT = True


def exit_command(code: int) -> NoReturn:
    if HARD_EXIT and "temporalio" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def execute(main: Coroutine[Any, Any, int], *, as_json: bool,
            on_interrupt: Callable[[], str] | None = None) -> NoReturn:
    """Run a command's coroutine and exit with its code; errors become `iterloop: message`."""
    try:
        code = asyncio.run(main)
    except CommandError as exc:
        if as_json:
            print(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
        print(f"iterloop: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        message = on_interrupt() if on_interrupt else "interrupted"
        print(f"\niterloop: {message}", file=sys.stderr)
        code = EXIT_CANCELLED
    exit_command(code)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


# -- options shared by the commands --------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Temporal host:port [env TEMPORAL_ADDRESS; default: the local dev server].",
    show_default=False)]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", help="Temporal namespace [env TEMPORAL_NAMESPACE; default: default].", show_default=False)]
TaskQueueOpt = Annotated[str | None, typer.Option(
    "--task-queue", help="Task queue of the workers [env ITERLOOP_TASK_QUEUE; default: iterloop].",
    show_default=False)]
RunArg = Annotated[str, typer.Argument(help="The run id (its Temporal workflow id).", metavar="RUN",
                                       show_default=False)]


# -- run -----------------------------------------------------------------------------------------


def run_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The .iter file to run.", show_default=False)],
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="Set a var: NAME=VALUE (repeatable). int/float/bool/json/string[] vars take JSON.",
        show_default=False)] = None,
    input_json: Annotated[str | None, typer.Option(
        "--input", help="Run inputs as a JSON object (--var wins for the same name).", show_default=False)] = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Workflow id of the run [default: <workflow>-<8 hex>].", show_default=False)] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the run and return; do not follow it.")] = False,
    as_json: JsonOpt = False,
    script: Annotated[Path | None, typer.Option(
        "--script", help="YAML script of model outputs (offline scripted model).", show_default=False)] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call (no API key needed).")] = False,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who answers gates at the prompt [default: your user name].", show_default=False)] = None,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a workflow on Temporal and follow it: events as they happen, prompts at human gates.

    Exit codes: 0 finished, 1 failed or compile errors, 2 usage error, 3 waiting for a human,
    4 parked (failed_resumable: fix, then `iterloop retry`), 5 budget exceeded, 130 cancelled.
    """
    import cli  # its diagnostics rendering and compile options, the same as `iterloop validate`

    result = cli.check_or_exit(ctx, file)
    wf = result.workflow
    assert wf is not None
    settings = command_settings(address, namespace, task_queue, offline=True if offline else None)
    try:
        inputs = {**parse_input_json(input_json), **parse_var_assignments(var or [], wf)}
        env_values, warnings = resolve_env_defaults(wf, inputs, os.environ)
        missing = [n for n, v in wf.vars.items() if not v.has_default and n not in inputs]
        if missing:
            raise UsageError(f"workflow '{wf.name}' needs a value for var(s) {', '.join(missing)}; "
                             + " ".join(f"--var {n}=…" for n in missing))
        loaded_script = load_script_option(script)
    except CommandError as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    for warning in warnings:
        print(f"iterloop: warning: {warning}", file=sys.stderr)
    request = RunRequest(file=file, wf=wf, inputs={**env_values, **inputs}, run_id=run_id,
                         script=loaded_script if loaded_script is not None else ({} if settings.offline else None),
                         detach=detach, as_json=as_json, by=by or default_answerer())
    started: list[str] = []
    execute(start_and_follow(settings, request, started), as_json=as_json, on_interrupt=lambda: (
        f"stopped following; run {started[0]} goes on. Follow it again with `iterloop events {started[0]} "
        f"--follow`, stop it with `iterloop cancel {started[0]}`" if started else "interrupted"))


def load_script_option(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from activities.llm.scripted import ScriptLoadError, load_script

    try:
        return load_script(path)
    except ScriptLoadError as exc:
        raise UsageError(str(exc)) from None


@dataclass
class RunRequest:
    file: Path
    wf: Workflow
    inputs: dict[str, Any]
    run_id: str | None
    script: dict[str, Any] | None
    detach: bool
    as_json: bool
    by: str


async def start_and_follow(settings: Settings, req: RunRequest, started: list[str]) -> int:
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.state import SA_STATUS, SA_WORKFLOW, WORKFLOW_TYPE, RunInput, RunOptions, RunResult

    settings = await server_for_run(settings)
    client = await connect_or_fail(settings)
    check = await ensure_worker(client, settings, settings.task_queue)
    if check.state == "started" and check.record is not None:
        print(f"iterloop: started a background worker (pid {check.record.pid}) for task queue "
              f"'{settings.task_queue}'; log: {check.record.log_path}", file=sys.stderr)
    elif check.state == "none":
        print(f"iterloop: warning: no worker polls task queue '{settings.task_queue}' at {settings.address}; the run "
              "waits until one does (start one with `iterloop worker`)", file=sys.stderr)

    run_id = req.run_id or f"{req.wf.name}-{uuid.uuid4().hex[:8]}"
    run_input = RunInput(workflow=req.wf, run_inputs=req.inputs, source=str(req.file),
                         options=RunOptions(script=req.script))
    attributes = TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKFLOW), req.wf.name),
                                        SearchAttributePair(SearchAttributeKey.for_keyword(SA_STATUS), "running")])
    async with temporal_errors(settings):
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, run_input, id=run_id, task_queue=settings.task_queue, result_type=RunResult,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, search_attributes=attributes,
                static_summary=f"{req.wf.name} · {req.file.name}",
                static_details=f"`iterloop run {req.file}`\n\nworkflow **{req.wf.name}** from `{req.file.resolve()}`"
                               + (f"\n\ncontent hash `{req.wf.content_hash}`" if req.wf.content_hash else "")
                               + ("\n\nscripted model (offline run)" if req.script is not None else ""),
                rpc_timeout=RPC_TIMEOUT)
        except WorkflowAlreadyStartedError:
            raise UsageError(f"a run with id '{run_id}' already exists; choose another --run-id "
                             f"(or look at it: `iterloop inspect {run_id}`)") from None
        except Exception as exc:
            if "search attribute" in str(exc).lower():
                raise CommandError(
                    f"namespace '{settings.namespace}' lacks iterloop's search attributes ({_short_error(exc)}); "
                    "`iterloop server start` registers them on the dev server; on a cluster run "
                    "`temporal operator search-attribute create --name IterloopWorkflow --type Keyword` "
                    "(and IterloopStatus Keyword, IterloopOpenGates KeywordList, IterloopCostUsd Double)") from None
            raise
    started.append(run_id)
    link = web_ui_link(settings, run_id)
    handle = client.get_workflow_handle(run_id)
    if req.detach:
        if req.as_json:
            _print_json({"run_id": run_id, "workflow": req.wf.name, "file": str(req.file), "status": "running",
                         "task_queue": settings.task_queue, "address": settings.address,
                         "namespace": settings.namespace, "ui_url": link,
                         "worker": {"state": check.state, "pid": check.record.pid if check.record else None}})
        else:
            print(f"started run {run_id} (workflow {req.wf.name}, file {req.file})")
            print(f"  follow:  iterloop events {run_id} --follow")
            print(f"  inspect: iterloop inspect {run_id}")
            print(f"  Web UI:  {link}")
        return EXIT_OK
    if not req.as_json:
        print(f"started run {run_id} (workflow {req.wf.name}, file {req.file})")
        print(f"  Web UI: {link}")
    interactive = not req.as_json and _is_tty(sys.stdin)
    return await follow_run(handle, settings, run_id, req.wf, as_json=req.as_json, interactive=interactive,
                            by=req.by)


async def server_for_run(settings: Settings) -> Settings:
    """With no address configured, the local dev server (started here if it is not running)."""
    if settings.address_configured:
        return settings
    from runtime import devserver

    try:
        info = await asyncio.to_thread(devserver.ensure_running, settings)
    except devserver.DevServerError as exc:
        raise UsageError(f"cannot start the local Temporal dev server: {exc}") from None
    print(f"iterloop: using the local Temporal dev server at {info.address}"
          + (f" (Web UI {info.ui_url})" if info.ui_url else ""), file=sys.stderr)
    return settings.with_overrides(address=info.address)


async def follow_run(handle: WorkflowHandle[Any, Any], settings: Settings, run_id: str, wf: Workflow, *,
                     as_json: bool, interactive: bool, by: str) -> int:
    """Stream the run's events until it ends, parks, or waits for an answer nobody can give here."""
    term = Terminal(sys.stdout, progress=not as_json and _is_tty(sys.stdout))
    after = 0
    seen: list[Event] = []
    while True:
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        view = await query_state(handle, settings)
        events = await query_events(handle, settings, after)
        for event in events:
            after = max(after, event.seq)
            seen.append(event)
            term.line(event_text(event, as_json=as_json))
        status = effective_status(view.status, desc)
        if status in TERMINAL_STATUSES:
            reason = view.reason if view.status in TERMINAL_STATUSES else await execution_failure(handle, desc)
            view = view.model_copy(update={"status": status, "reason": reason})
            return finish_follow(term, run_id, status, view, seen, as_json=as_json)
        if status == "failed_resumable":
            if as_json:
                _print_summary(run_id, status, view, seen)
            else:
                print_failure(term, run_id, view)
            return EXIT_PARKED
        if status == "waiting_human":
            if not interactive:
                if as_json:
                    _print_summary(run_id, status, view, seen)
                else:
                    print_waiting(term, run_id, view)
                return EXIT_WAITING
            term.clear()
            for gate in sorted(view.open_gates, key=lambda g: g.gate):
                try:
                    await prompt_gate(handle, settings, gate, by=by, ask=input, say=term.line)
                except EOFError:
                    term.line()
                    print_waiting(term, run_id, await query_state(handle, settings))
                    return EXIT_WAITING
            continue
        term.progress(progress_text(view, wf))
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


def finish_follow(term: Terminal, run_id: str, status: str, view: RunView, events: list[Event], *,
                  as_json: bool) -> int:
    if as_json:
        _print_summary(run_id, status, view, events)
    else:
        term.line(final_line(run_id, status, view, events))
        if status == "finished":
            term.line(f"report: iterloop report {run_id}")
    return STATUS_EXIT_CODES[status]


def _print_summary(run_id: str, status: str, view: RunView, events: list[Event]) -> None:
    """The last JSON line of `run --json`: where the run stands and what to do next."""
    doc: dict[str, Any] = {"run_id": run_id, "status": status, "reason": view.reason,
                           "exit_code": STATUS_EXIT_CODES.get(status, EXIT_OK),
                           "usage": view.usage.model_dump(mode="json"), "outputs": view.outputs}
    if view.open_gates:
        doc["answer_commands"] = [gate_answer_command(run_id, g) for g in view.open_gates]
    if view.failures:
        doc["retry_commands"] = [f"iterloop retry {run_id} --node {f.node}" for f in view.failures]
    print(json.dumps(doc, ensure_ascii=False, default=str), flush=True)


# -- answer --------------------------------------------------------------------------------------


def answer_command(
    run_id: RunArg,
    gate: Annotated[str, typer.Option("--gate", help="The human node to answer.", show_default=False)],
    answer: Annotated[list[str] | None, typer.Option(
        "--answer", help="FIELD=VALUE (repeatable); values are converted to the field's type.",
        show_default=False)] = None,
    answers_file: Annotated[Path | None, typer.Option(
        "--answers-file", help="A JSON or YAML mapping of field → value.", show_default=False)] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who answers (recorded with the answer) [default: your user name].", show_default=False)] = None,
    use_signal: Annotated[bool, typer.Option(
        "--signal", help="Send a signal (fire and forget, idempotent) instead of a validated update.")] = False,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Answer a human gate (a validated update; --signal for fire and forget).

    The update is checked before anything is recorded: a wrong field, type or gate is refused at
    once with the reason (exit 1).
    """
    if answer and answers_file is not None:
        _usage_exit("give the answers with --answer or with --answers-file, not both", as_json)
    try:
        values: dict[str, Any] = (load_answers_file(answers_file) if answers_file is not None
                                  else parse_answer_assignments(answer or []))
    except CommandError as exc:
        _usage_exit(str(exc), as_json)
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(send_answer(settings, run_id, gate, values, by=by or default_answerer(), use_signal=use_signal,
                        as_json=as_json), as_json=as_json)


def _usage_exit(message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "exit_code": EXIT_USAGE}))
    print(f"iterloop: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE)


async def send_answer(settings: Settings, run_id: str, gate: str, values: dict[str, Any], *, by: str,
                      use_signal: bool, as_json: bool) -> int:
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.state import Answer, AnswerRecord

    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    if closed(desc):
        raise CommandError(f"run '{run_id}' has ended ({ended_as(desc)}); there is no gate to answer")
    await ensure_worker_for_run(client, settings, desc)
    view = await query_state(handle, settings)
    open_gate = next((g for g in view.open_gates if g.gate == gate), None)
    message = Answer(gate=gate, answers=values, answered_by=by,
                     interaction_id=open_gate.interaction_id if open_gate else "")
    if use_signal:
        async with temporal_errors(settings, run_id):
            await handle.signal("answer", message, rpc_timeout=RPC_TIMEOUT)
        note = ("" if open_gate else f" (gate '{gate}' is not open now: the run keeps the answer until it opens, "
                "or records a rejection in its events if it is not valid)")
        if as_json:
            _print_json({"run_id": run_id, "gate": gate, "sent": "signal", "answers": values, "answered_by": by,
                         "gate_open": open_gate is not None})
        else:
            print(f"sent the answer for gate '{gate}' of run {run_id} as a signal{note}")
            print(f"check it with: iterloop events {run_id}")
        return EXIT_OK
    try:
        async with temporal_errors(settings, run_id):
            record = await handle.execute_update("answer", message, result_type=AnswerRecord, rpc_timeout=RPC_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise CommandError(f"answer rejected: {_update_failure_message(exc)}") from None
    if as_json:
        _print_json({"run_id": run_id, **record.model_dump(mode="json"), "gate_open": open_gate is not None})
    elif open_gate is None:
        print(f"gate '{gate}' of run {run_id} is not open yet; the answer is kept and used when it opens")
    else:
        print(f"recorded the answer for gate '{gate}' of run {run_id} (by {record.answered_by}): "
              f"{json.dumps(record.answers, ensure_ascii=False)}")
    return EXIT_OK


# -- inspect -------------------------------------------------------------------------------------


def inspect_command(
    run_id: RunArg,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Show a run: status, nodes, open gates, failures, budget and its Web UI link.

    The node table has each node's visits, status, tokens and cost; open gates show their
    instructions and expected fields; failures show the retry command.
    """
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(inspect_run(settings, run_id, as_json=as_json), as_json=as_json)


async def load_run(settings: Settings, run_id: str) -> tuple[Client, WorkflowHandle[Any, Any],
                                                              WorkflowExecutionDescription, RunView]:
    """Connect, find the run, make sure a worker can answer for it, and query its state."""
    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    await ensure_worker_for_run(client, settings, desc)
    view = await query_state(handle, settings)
    status = effective_status(view.status, desc)
    if status != view.status:
        view = view.model_copy(update={"status": status, "reason": await execution_failure(handle, desc)})
    return client, handle, desc, view


def budget_rows(view: RunView, wf: Workflow | None, elapsed_seconds: float | None) -> list[dict[str, Any]]:
    """Each budget dimension: used, and the limit when the workflow sets one."""
    b = wf.budget if wf is not None else None
    used = view.budget_used
    rows = [
        {"dimension": "tokens", "used": int(used.get("tokens", view.usage.total_tokens)),
         "limit": (b.max_tokens or None) if b else None},
        {"dimension": "cost_usd", "used": round(used.get("cost_usd", view.usage.cost_usd), 6),
         "limit": (b.max_cost_usd or None) if b else None},
        {"dimension": "iterations", "used": int(used.get("iterations", 0)),
         "limit": (b.max_iterations or None) if b else None},
        {"dimension": "duration_s", "used": round(elapsed_seconds, 1) if elapsed_seconds is not None else None,
         "limit": (b.max_duration_seconds or None) if b else None},
    ]
    if b is not None and b.max_parallel_branches:
        rows.append({"dimension": "parallel_branches", "used": None, "limit": b.max_parallel_branches})
    return rows


def _elapsed(desc: WorkflowExecutionDescription) -> float | None:
    if desc.start_time is None:
        return None
    end = desc.close_time or datetime.now(UTC)
    return max(0.0, (end - desc.start_time).total_seconds())


def inspect_document(run_id: str, settings: Settings, desc: WorkflowExecutionDescription, view: RunView,
                     run_input: RunInput | None) -> dict[str, Any]:
    wf = run_input.workflow if run_input is not None else None
    nodes = {}
    for name, state in view.nodes.items():
        nodes[name] = {"kind": wf.nodes[name].kind if wf is not None and name in wf.nodes else "",
                       "visits": state.visits, "status": state.status, "attempts": state.attempts,
                       "tokens": state.usage.total_tokens, "cost_usd": round(state.usage.cost_usd, 6),
                       "model": state.usage.model, "error": state.error}
    return {
        "run_id": run_id,
        "workflow": view.workflow,
        "source": view.source,
        "status": view.status,
        "reason": view.reason,
        "execution_status": execution_status(desc),
        "task_queue": desc.task_queue,
        "started_at": desc.start_time.isoformat() if desc.start_time else None,
        "closed_at": desc.close_time.isoformat() if desc.close_time else None,
        "current_nodes": view.current_nodes,
        "nodes": nodes,
        "open_gates": [{"gate": g.gate, "interaction_id": g.interaction_id, "instructions": g.instructions,
                        "questions": g.questions, "opened_at": g.opened_at, "timeout_seconds": g.timeout_seconds,
                        "fields": [f.model_dump(mode="json") for f in gate_fields(g)],
                        "answer_command": gate_answer_command(run_id, g)} for g in view.open_gates],
        "failures": [{**f.model_dump(mode="json"), "retry_command": f"iterloop retry {run_id} --node {f.node}"}
                     for f in view.failures],
        "answers": [a.model_dump(mode="json") for a in view.answers],
        "usage": view.usage.model_dump(mode="json"),
        "budget": budget_rows(view, wf, _elapsed(desc)),
        "loop_counters": view.loop_counters,
        "outputs": view.outputs,
        "artifacts": view.artifacts,
        "vars": view.vars,
        "executions": view.executions,
        "ui_url": web_ui_link(settings, run_id),
    }


async def inspect_run(settings: Settings, run_id: str, *, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    run_input = await read_run_input(client, handle)
    doc = inspect_document(run_id, settings, desc, view, run_input)
    if as_json:
        _print_json(doc)
    else:
        print_inspection(doc)
    return EXIT_OK


def print_inspection(doc: dict[str, Any]) -> None:
    from runtime.report import format_cost, format_duration, preview

    run_id = doc["run_id"]
    print(f"run        {run_id}")
    print(f"workflow   {doc['workflow']}" + (f"  ({doc['source']})" if doc["source"] else ""))
    print(f"status     {doc['status']}" + (f": {doc['reason']}" if doc["reason"] else "")
          + f"   [Temporal: {doc['execution_status']}, task queue {doc['task_queue']}]")
    print(f"started    {doc['started_at'] or '?'}" + (f"   closed {doc['closed_at']}" if doc["closed_at"] else ""))
    print(f"current    {', '.join(doc['current_nodes']) or '—'}")
    print(f"Web UI     {doc['ui_url']}")
    print()
    rows = [(name, n["kind"], str(n["visits"]), n["status"], f"{n['tokens']:,}", format_cost(n["cost_usd"]))
            for name, n in doc["nodes"].items()]
    print_columns(("NODE", "KIND", "VISITS", "STATUS", "TOKENS", "COST"), rows, right={2, 4, 5})
    if doc["open_gates"]:
        print("\nopen gates")
        for gate in doc["open_gates"]:
            print(f"  {gate['gate']}  (opened {gate['opened_at'] or '?'})")
            for line in (gate["instructions"] or "").rstrip().splitlines():
                print(f"    {line}")
            for key, value in gate["questions"].items():
                if not key.startswith("_"):
                    print(f"    · {key}: {preview(value, 200)}")
            fields = gate["fields"]
            expected = ", ".join(f"{f['name']} ({field_hint(SchemaField(**f))})" for f in fields) or "text"
            print(f"    expected: {expected}")
            print(f"    answer:   {gate['answer_command']}")
    if doc["failures"]:
        print("\nfailures (the run is parked; fix the cause, then retry)")
        for failure in doc["failures"]:
            print(f"  {failure['node']}" + (f" [{failure['branch']}]" if failure["branch"] else "")
                  + f": {failure['error']}")
            print(f"    retry: {failure['retry_command']}")
    print("\nbudget")
    for row in doc["budget"]:
        used, limit = row["used"], row["limit"]
        if row["dimension"] == "cost_usd":
            used_s, limit_s = format_cost(used or 0), (format_cost(limit) if limit else None)
        elif row["dimension"] == "duration_s":
            used_s = format_duration(used) if used is not None else "—"
            limit_s = format_duration(limit) if limit else None
        else:
            used_s, limit_s = ("—" if used is None else f"{used:,}"), (f"{limit:,}" if limit else None)
        share = f" ({100 * used / limit:.0f}%)" if limit and isinstance(used, (int, float)) else ""
        print(f"  {row['dimension']:<18} {used_s}" + (f" of {limit_s}{share}" if limit_s else " (no limit)"))


# -- list ----------------------------------------------------------------------------------------


def list_command(
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only runs with this status: {', '.join(RUN_STATUSES)}.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.", min=1)] = 20,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """List runs (id, workflow, status, start time, cost) from Temporal's visibility store."""
    if status is not None and status not in RUN_STATUSES:
        _usage_exit(f"unknown status '{status}'; choose one of: {', '.join(RUN_STATUSES)}", as_json)
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(list_runs(settings, status=status, limit=limit, as_json=as_json), as_json=as_json)


def visibility_query(status: str | None) -> str:
    from workflows.state import SA_STATUS, WORKFLOW_TYPE

    query = f'WorkflowType="{WORKFLOW_TYPE}"'
    return query + (f' AND {SA_STATUS}="{status}"' if status else "")


async def list_runs(settings: Settings, *, status: str | None, limit: int, as_json: bool) -> int:
    from temporalio.common import SearchAttributeKey

    from runtime.report import format_cost
    from workflows.state import SA_COST, SA_STATUS, SA_WORKFLOW

    client = await connect_or_fail(settings)
    key_wf, key_status = SearchAttributeKey.for_keyword(SA_WORKFLOW), SearchAttributeKey.for_keyword(SA_STATUS)
    key_cost = SearchAttributeKey.for_float(SA_COST)
    rows: list[dict[str, Any]] = []
    async with temporal_errors(settings):
        async for execution in client.list_workflows(visibility_query(status), limit=limit, rpc_timeout=RPC_TIMEOUT):
            attrs = execution.typed_search_attributes
            run_status = attrs.get(key_status) or ""
            temporal_status = execution.status.name.lower() if execution.status is not None else ""
            if temporal_status in ("terminated", "timed_out", "failed") and run_status not in TERMINAL_STATUSES:
                run_status = "failed"
            rows.append({"run_id": execution.id, "workflow": attrs.get(key_wf) or "", "status": run_status or "running",
                         "execution_status": temporal_status,
                         "started_at": execution.start_time.isoformat() if execution.start_time else None,
                         "closed_at": execution.close_time.isoformat() if execution.close_time else None,
                         "cost_usd": attrs.get(key_cost) or 0.0})
    rows.sort(key=lambda r: r["started_at"] or "", reverse=True)  # visibility lists open runs first
    if as_json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no runs" + (f" with status {status}" if status else ""))
        return EXIT_OK
    table = [(r["run_id"], r["workflow"], r["status"], _local_time(r["started_at"]), format_cost(r["cost_usd"]))
             for r in rows]
    print_columns(("ID", "WORKFLOW", "STATUS", "STARTED", "COST"), table, right={4})
    return EXIT_OK


# -- events --------------------------------------------------------------------------------------


def events_command(
    run_id: RunArg,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new events until the run ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (JSON Lines).")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Print a run's events: time, node, branch and what happened."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(print_events(settings, run_id, follow=follow, as_json=as_json), as_json=False,
            on_interrupt=lambda: "stopped following (the run goes on)")


async def print_events(settings: Settings, run_id: str, *, follow: bool, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    after = 0
    while True:
        for event in await query_events(handle, settings, after):
            after = max(after, event.seq)
            print(event_text(event, as_json=as_json), flush=True)
        if not follow or closed(desc) or effective_status(view.status, desc) in TERMINAL_STATUSES:
            return EXIT_OK
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        view = await query_state(handle, settings)


# -- report --------------------------------------------------------------------------------------


def report_command(
    run_id: RunArg,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the Markdown here instead of stdout.", show_default=False)] = None,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Write a Markdown report of a run: summary, timeline, artifacts, tokens and cost per node."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(write_report(settings, run_id, output), as_json=False)


async def write_report(settings: Settings, run_id: str, output: Path | None) -> int:
    from runtime.report import render_report

    client, handle, desc, view = await load_run(settings, run_id)
    events = await query_events(handle, settings, 0)
    text = render_report(view, events, run_id=run_id, ui_url=web_ui_link(settings, run_id))
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write '{output}': {exc.strerror or exc}") from None
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


# -- retry and cancel ----------------------------------------------------------------------------


def retry_command(
    run_id: RunArg,
    node: Annotated[str | None, typer.Option(
        "--node", help="The parked node to re-run [default: every parked node].", show_default=False)] = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Re-run the node(s) a run parked on (status failed_resumable), after you fixed the cause."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(retry_run(settings, run_id, node, as_json=as_json), as_json=as_json)


async def retry_run(settings: Settings, run_id: str, node: str | None, *, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    if closed(desc):
        raise CommandError(f"run '{run_id}' has ended ({view.status}); there is nothing to retry")
    parked = [f.node for f in view.failures]
    if node and node not in parked:
        raise UsageError(f"node '{node}' of run '{run_id}' is not parked; "
                         f"parked nodes: {', '.join(parked) or '(none)'}")
    if not parked:
        raise CommandError(f"run '{run_id}' has no parked node to retry (status {view.status})")
    targets = [node] if node else parked
    async with temporal_errors(settings, run_id):
        await handle.signal("retry", node or "", rpc_timeout=RPC_TIMEOUT)
    if as_json:
        _print_json({"run_id": run_id, "retried": targets})
    else:
        print(f"retrying {', '.join(targets)} in run {run_id}; follow it with `iterloop events {run_id} --follow`")
    return EXIT_OK


def cancel_command(
    run_id: RunArg,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Cancel a run: it stops where it is and ends with status cancelled."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(cancel_run(settings, run_id, as_json=as_json), as_json=as_json)


async def cancel_run(settings: Settings, run_id: str, *, as_json: bool) -> int:
    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    if closed(desc):
        raise CommandError(f"run '{run_id}' has already ended ({ended_as(desc)}); nothing to cancel")
    async with temporal_errors(settings, run_id):
        await handle.cancel(rpc_timeout=RPC_TIMEOUT)
    deadline = time.monotonic() + 10
    while not closed(desc) and time.monotonic() < deadline:  # a worker makes it end within moments
        await asyncio.sleep(0.2)
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    ended = closed(desc)
    if as_json:
        _print_json({"run_id": run_id, "cancel_requested": True, "ended": ended,
                     "execution_status": execution_status(desc)})
    elif ended:
        print(f"cancelled run {run_id}")
    else:
        print(f"asked run {run_id} to cancel; it ends as cancelled when a worker picks up the request")
    return EXIT_OK


# -- worker --------------------------------------------------------------------------------------


def worker_command(
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call [env ITERLOOP_OFFLINE].")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a worker in the foreground: the interpreter and every activity (Ctrl-C stops it)."""
    settings = settings_for_existing_runs(
        command_settings(address, namespace, task_queue, offline=True if offline else None))
    execute(run_foreground_worker(settings), as_json=False, on_interrupt=lambda: "worker stopped")


async def run_foreground_worker(settings: Settings) -> int:
    from worker import run_worker

    await connect_or_fail(settings)  # a clear message when the server is not there
    print(f"iterloop: worker polling task queue '{settings.task_queue}' at {settings.address} "
          f"(namespace {settings.namespace}{', offline: scripted model' if settings.offline else ''}); "
          "Ctrl-C stops it", file=sys.stderr)
    await run_worker(settings)
    return EXIT_OK


# -- registration --------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add the runtime commands to the `iterloop` app (cli.py calls this once)."""
    app.command("run")(run_command)
    app.command("answer")(answer_command)
    app.command("inspect")(inspect_command)
    app.command("list")(list_command)
    app.command("events")(events_command)
    app.command("report")(report_command)
    app.command("retry")(retry_command)
    app.command("cancel")(cancel_command)
    if not any((c.name or getattr(c.callback, "__name__", "")) == "worker" for c in app.registered_commands):
        app.command("worker")(worker_command)  # unless cli.py already has its own
