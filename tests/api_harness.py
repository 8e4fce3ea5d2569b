"""Fixtures for the API tests: the app on the session's dev server, with an in-test offline worker.

Test modules import the fixtures they use (`from api_harness import api  # noqa: F401`). This is
not a conftest.py: a second top-level `conftest` module would shadow the root one that
`tests/runs.py` imports `temporal_binary` from.

`api` gives an `ApiHarness`: the FastAPI app (built by `create_app` from real `ApiSettings`), an
`httpx.AsyncClient` speaking to it in-process (ASGI) with the writer token, the Temporal client
and task queue of the worker. `live_server` runs the same app under uvicorn on a free port, for
the event stream and the browser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from runs import free_port, poll, running_worker  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings, ApiToken  # noqa: E402
from runtime.settings import Settings  # noqa: E402

WRITE_TOKEN = "writer-token-0123456789abcdef"
READ_TOKEN = "reader-token-0123456789abcdef"

#: A planner, then a gate whose answer decides done or fail.
GATED = """\
vars:
  topic: string
  days: int = 14

schema plan:
  text: string

schema decision:
  approved: bool
  level: string [enum: "low", "high"]
  comment: string

prompt ask:
  Approve the plan for {{vars.topic}}?

agent planner:
  model: "scripted"
  output: plan

human approval:
  instructions: ask
  output: decision

workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""

#: A gate with one field of every type, to check the generated form.
ALL_TYPES = """\
schema every:
  approved: bool
  level: string [enum: "low", "high"]
  count: int
  ratio: float
  tags: string[]
  channels: string[] [enum: "email", "push"]
  config: json
  note: string

prompt check:
  Check every field.

human review:
  instructions: check
  output: every

workflow all_types:
  entry: review
  review -> done when approved
  review -> fail when not approved
"""

#: A shell node that fails until a marker file exists (retry after fixing the cause).
GUARDED = """\
vars:
  marker: string

tool check:
  command: "test -f {{vars.marker}} || { echo 'marker missing' >&2; exit 3; }"

workflow guarded:
  entry: check
  check -> done
"""

WORKFLOWS = {"gated": GATED, "all_types": ALL_TYPES, "guarded": GUARDED}


@dataclass
class ApiHarness:
    temporal: Any  # temporalio.client.Client of the session's dev server
    task_queue: str
    settings: ApiSettings
    app: Any
    http: httpx.AsyncClient  # in-process, with the writer token
    tmp: Path
    started: list[str] = field(default_factory=list)

    def client(self, token: str | None = WRITE_TOKEN, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> httpx.AsyncClient:
        """Another in-process client (another token, none, or cookies)."""
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver",
                                 headers={**auth, **(headers or {})}, **kwargs)

    def configured(self, *, base_url: str = "http://testserver", **overrides: Any) -> httpx.AsyncClient:
        """A client (with the writer token) of another app: these settings with ``overrides``."""
        app = create_app(dataclasses.replace(self.settings, **overrides))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url,
                                 headers={"Authorization": f"Bearer {WRITE_TOKEN}"})

    async def start(self, workflow: str = "gated", **body: Any) -> str:
        if workflow == "gated":
            body.setdefault("vars", {"topic": "checkout"})
        response = await self.http.post("/api/runs", json={"workflow": workflow, **body})
        assert response.status_code == 201, response.text
        run_id = str(response.json()["run_id"])
        self.started.append(run_id)
        return run_id

    async def state(self, run_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_status(self, run_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        last: list[dict[str, Any]] = []

        async def reached() -> dict[str, Any] | None:
            doc = await self.state(run_id)
            last[:] = [doc]
            return doc if doc["status"] in statuses else None

        try:
            return dict(await poll(reached, f"run {run_id} to reach {statuses}", timeout, interval=0.1))
        except AssertionError:
            raise AssertionError(f"run {run_id} stayed {last and last[0]['status']}; "
                                 f"failures={last and last[0]['failures']}") from None


def api_settings_for(temporal: Any, task_queue: str, tmp: Path, **overrides: Any) -> ApiSettings:
    workflows_dir = tmp / "workflows"
    workflows_dir.mkdir(exist_ok=True)
    for name, text in WORKFLOWS.items():
        (workflows_dir / f"{name}.iter").write_text(textwrap.dedent(text), encoding="utf-8")
    runtime = Settings(address=temporal.service_client.config.target_host, address_configured=True,
                       task_queue=task_queue, home=tmp / ".iterloop", ui_url="http://temporal-ui.test:8233")
    values: dict[str, Any] = dict(
        runtime=runtime, tokens=(ApiToken("ada", WRITE_TOKEN), ApiToken("viewer", READ_TOKEN, can_write=False)),
        workflows_dir=workflows_dir)
    values.update(overrides)
    return ApiSettings(**values)


@pytest_asyncio.fixture
async def api(temporal_env: Any, task_queue: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    temporal = temporal_env.client  # type: ignore[attr-defined]
    settings = api_settings_for(temporal, task_queue, tmp_path)
    app = create_app(settings)
    async with running_worker(temporal, task_queue):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as http:
            harness = ApiHarness(temporal, task_queue, settings, app, http, tmp_path)
            try:
                yield harness
            finally:
                await _cancel_open_runs(temporal, harness.started)


async def _cancel_open_runs(temporal: Any, run_ids: list[str]) -> None:
    """Leave no run waiting on a task queue nobody will poll again."""
    from temporalio.client import WorkflowExecutionStatus

    for run_id in run_ids:
        handle = temporal.get_workflow_handle(run_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")
        except Exception:
            pass


@dataclass
class LiveServer:
    url: str
    server: Any
    thread: threading.Thread


@pytest_asyncio.fixture
async def live_server(api: ApiHarness) -> AsyncIterator[LiveServer]:
    """The harness's app under uvicorn on a free port (in a thread with its own event loop)."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(create_app(api.settings), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    await poll(lambda: server.started, "uvicorn to start", timeout=20, interval=0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)

