"""Secrets stay on the worker: planted secrets never reach history, events, reports, inspect or logs.

A real worker process (`python -m worker`, offline) holds the secrets in its environment: a token
named like one (`X_API_TOKEN`), a warehouse URL with a userinfo password and a `password=`
parameter, a DuckDB path named secret by `ITERLOOP_SECRET_VARS`, and a model given as
`${ITERLOOP_TEST_MODEL}`. Runs started through the CLI and the REST API use each of them (a model
turn, a command that prints the token, a command that echoes it to stderr and fails, a connector
that cannot open its database). Then everything a person or another system can read is searched
for the planted values: the full history of every run (every event, every payload decoded,
failures and search attributes included), `iterloop events`, `report` and `inspect --json`, the
API's run, events and report, the CLI's own output and the worker's log.
"""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from api_harness import WRITE_TOKEN, api_settings_for
from cli_harness import Cli
from google.protobuf.message import Message
from runs import poll, start_worker_process, stop_process
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from runtime.worker_fingerprint import offline_task_queue

OK = """\
schema note:
  text: string

agent writer:
  model: "${ITERLOOP_TEST_MODEL}"
  output: note

tool show:
  command: "echo the token is $X_API_TOKEN; echo warning: $X_API_TOKEN >&2"

workflow secret_ok:
  entry: writer
  writer -> show
  show -> done
"""

FAILING_COMMAND = """\
tool leak:
  command: "echo calling the API with $X_API_TOKEN >&2; exit 3"

workflow secret_stderr:
  entry: leak
  leak -> done
"""

WAREHOUSE_URL = """\
vars:
  connector: json = { "name": "warehouse", "settings": { "url": "${WAREHOUSE_URL}" } }

tool funnel:
  call: get_funnel_data

workflow secret_url:
  entry: funnel
  funnel -> done
"""

DUCKDB_PATH = """\
vars:
  connector: json = { "name": "warehouse", "settings": { "duckdb_path": "${DUCKDB_PATH}" } }

tool funnel:
  call: get_funnel_data

workflow secret_duckdb:
  entry: funnel
  funnel -> done
"""


@dataclass
class Planted:
    """The secrets on the worker, and everything read back to search them in."""

    token: str = field(default_factory=lambda: f"tok-{uuid.uuid4().hex}")
    url_password: str = field(default_factory=lambda: f"upw{uuid.uuid4().hex[:12]}")
    query_password: str = field(default_factory=lambda: f"qpw{uuid.uuid4().hex[:12]}")
    path_part: str = field(default_factory=lambda: f"vault{uuid.uuid4().hex[:12]}")
    model: str = field(default_factory=lambda: f"scripted/model{uuid.uuid4().hex[:12]}")
    seen: dict[str, str] = field(default_factory=dict)

    def worker_env(self, tmp: Path) -> dict[str, str]:
        return {
            "X_API_TOKEN": self.token,
            "WAREHOUSE_URL": f"postgresql://analyst:{self.url_password}@127.0.0.1:9/analytics"
                             f"?password={self.query_password}&sslmode=disable",
            "DUCKDB_PATH": str(tmp / f"missing-{self.path_part}" / "analytics.duckdb"),
            "ITERLOOP_SECRET_VARS": "DUCKDB_PATH",
            "ITERLOOP_TEST_MODEL": self.model,
            "ITERLOOP_HOME": str(tmp / "worker-home"),
        }

    def secrets(self) -> dict[str, str]:
        return {"token": self.token, "url password": self.url_password, "query password": self.query_password,
                "duckdb path": self.path_part, "model": self.model.split("/", 1)[1]}

    def read(self, where: str, text: str) -> None:
        self.seen[where] = self.seen.get(where, "") + text

    def leaks(self) -> list[str]:
        return [f"{what} in {where}" for where, text in self.seen.items()
                for what, value in self.secrets().items() if value in text]


@dataclass
class Setup:
    cli: Cli
    temporal: Client
    queue: str
    planted: Planted
    log: Path
    worker: subprocess.Popen[bytes]
    runs: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def setup(bare_cli: Cli, temporal_env: Any, task_queue: str, tmp_path: Path) -> AsyncIterator[Setup]:
    """A worker process with the planted secrets, polling the queue offline runs go to."""
    planted = Planted()
    queue = offline_task_queue(task_queue)
    address = temporal_env.client.service_client.config.target_host
    log = tmp_path / "worker.log"
    proc = start_worker_process(address, queue, log, extra_env=planted.worker_env(tmp_path))
    temporal: Client = temporal_env.client
    found = Setup(bare_cli, temporal, queue, planted, log, proc)

    async def polled() -> bool:
        pollers = await temporal.workflow_service.describe_task_queue(_describe(queue))
        return bool(pollers.pollers)

    try:
        await poll(polled, f"the worker process to poll {queue}", timeout=60, interval=0.2)
        yield found
    finally:
        await stop_process(proc)
        for run_id in found.runs:
            handle = temporal.get_workflow_handle(run_id)
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")


def _describe(queue: str) -> Any:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    return DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=queue),
                                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


def strings_of(message: Message) -> Iterator[str]:
    """Every string of a protobuf message at any depth; payloads decoded (their data is JSON)."""
    if isinstance(message, Payload):
        yield message.data.decode("utf-8", errors="replace")
        yield from (v.decode("utf-8", errors="replace") for v in message.metadata.values())
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            items = [*value.keys(), *value.values()]  # search attributes, memo, headers
        elif descriptor.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from strings_of(item)
            elif isinstance(item, bytes):
                yield item.decode("utf-8", errors="replace")
            else:
                yield str(item)


async def read_history(setup: Setup, run_id: str) -> None:
    """The whole history of the run (every event, payloads decoded) and its description."""
    handle = setup.temporal.get_workflow_handle(run_id)
    history = await handle.fetch_history()
    setup.planted.read(f"history of {run_id}", "\n".join(s for e in history.events for s in strings_of(e)))
    desc = await handle.describe()
    setup.planted.read(f"description of {run_id}", "\n".join(strings_of(desc.raw_description)))


async def read_cli_views(setup: Setup, run_id: str) -> None:
    """`iterloop events`, `report` (its JSON holds the Markdown too) and `inspect --json`."""
    for args in (("events", run_id, "--json"), ("report", run_id, "--json"), ("inspect", run_id, "--json")):
        result = await setup.cli(*args)
        assert result.code == 0, (args, result.err)
        setup.planted.read(f"iterloop {' '.join(args[:1] + args[2:])}", result.out + result.err)


async def cli_run(setup: Setup, name: str, source: str, expected_code: int) -> str:
    run_id = f"{name}-{uuid.uuid4().hex[:6]}"
    setup.cli.write(f"{name}.iter", source)
    setup.runs.append(run_id)
    result = await setup.cli("run", f"{name}.iter", "--offline", "--run-id", run_id, timeout=90)
    setup.planted.read(f"iterloop run {name}", result.out + result.err)
    assert result.code == expected_code, result.out + result.err
    return run_id


async def test_planted_secrets_appear_nowhere_a_person_can_read(setup: Setup, tmp_path: Path) -> None:
    planted = setup.planted
    # Through the CLI: a finished run (model turn, a command printing the token) and three parked ones.
    ok = await cli_run(setup, "secret_ok", OK, 0)
    stderr = await cli_run(setup, "secret_stderr", FAILING_COMMAND, 4)
    url = await cli_run(setup, "secret_url", WAREHOUSE_URL, 4)
    duck = await cli_run(setup, "secret_duckdb", DUCKDB_PATH, 4)

    # Through the API: the same finished run, and the failing command.
    settings = api_settings_for(setup.temporal, setup.queue, tmp_path)
    assert settings.workflows_dir is not None
    for name, text in (("secret_ok", OK), ("secret_stderr", FAILING_COMMAND)):
        (settings.workflows_dir / f"{name}.iter").write_text(textwrap.dedent(text), encoding="utf-8")
    api_runs = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as http:
        for name, status in (("secret_ok", "finished"), ("secret_stderr", "failed_resumable")):
            started = await http.post("/api/runs", json={"workflow": name, "offline": True})
            assert started.status_code == 201, started.text
            run_id = started.json()["run_id"]
            setup.runs.append(run_id)
            api_runs.append(run_id)

            async def reached(run_id: str = run_id, status: str = status) -> bool:
                return bool((await http.get(f"/api/runs/{run_id}")).json()["status"] == status)

            await poll(reached, f"API run {run_id} to be {status}", timeout=60)
            for path in ("", "/events", "/report"):
                response = await http.get(f"/api/runs/{run_id}{path}")
                assert response.status_code == 200, response.text
                planted.read(f"GET /api/runs/{{id}}{path}", response.text)

    for run_id in (ok, stderr, url, duck, *api_runs):
        await read_history(setup, run_id)
    for run_id in (ok, stderr, url, duck):
        await read_cli_views(setup, run_id)
    await read_worker_log(setup)

    # The secrets were really used, and redacted where they would have shown.
    history = "".join(text for where, text in planted.seen.items() if where.startswith("history"))
    assert "[redacted:X_API_TOKEN]" in history  # the command's stdout, stderr and failure
    assert "postgresql://analyst:[redacted]@" in history and "password=[redacted]" in history
    assert "[redacted:DUCKDB_PATH]" in history
    assert '"model": "${ITERLOOP_TEST_MODEL}"' in planted.seen["iterloop inspect --json"]  # usage: the reference
    assert "[redacted:" in planted.seen["worker log"]  # the failures were logged, redacted
    assert planted.leaks() == []


async def read_worker_log(setup: Setup) -> None:
    """The worker's whole log: read once it has stopped (the fixture's stop is then a no-op)."""
    await stop_process(setup.worker)
    setup.planted.read("worker log", setup.log.read_text(errors="replace"))
