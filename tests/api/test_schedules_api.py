"""`/api/schedules` (api/rest_schedules.py) against the session's dev server, with the harness's offline worker."""

from __future__ import annotations

import contextlib
import textwrap
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_harness import READ_TOKEN, ApiHarness, api  # noqa: F401
from runs import poll
from temporalio.service import RPCError

pytestmark = pytest.mark.asyncio

#: One scripted model turn, then done.
TINY = """\
vars:
  topic: string = "pricing"

schema note:
  text: string

prompt write:
  Write a note about {{vars.topic}}.

agent writer:
  model: "scripted"
  user: write
  output: note

workflow tiny:
  entry: writer
  writer -> done
"""

JSON = {"Content-Type": "application/json"}


@pytest_asyncio.fixture
async def sched(api: ApiHarness) -> AsyncIterator[ApiHarness]:
    """The API harness with `tiny` registered; the schedules on its task queue are deleted at the end."""
    assert api.settings.workflows_dir is not None
    (api.settings.workflows_dir / "tiny.iter").write_text(textwrap.dedent(TINY), encoding="utf-8")
    try:
        yield api
    finally:
        async for entry in await api.temporal.list_schedules():
            handle = api.temporal.get_schedule_handle(entry.id)
            with contextlib.suppress(RPCError):  # deleted meanwhile
                if getattr((await handle.describe()).schedule.action, "task_queue", "") == api.task_queue:
                    await handle.delete()


def _sid() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


async def _create(api: ApiHarness, **body: Any) -> httpx.Response:
    body.setdefault("run", {"workflow": "tiny", "offline": True})
    return await api.http.post("/api/schedules", json=body)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


async def test_post_creates_a_schedule_whose_firing_starts_a_run_listed_under_it(sched: ApiHarness) -> None:
    sid = _sid()
    created = await _create(sched, schedule_id=sid, every="1h", paused=True,
                            run={"workflow": "tiny", "offline": True, "vars": {"topic": "churn"}})
    assert created.status_code == 201, created.text
    assert created.json()["schedule_id"] == sid and created.json()["paused"] is True
    triggered = await sched.http.post(f"/api/schedules/{sid}/trigger", headers=JSON)
    assert triggered.status_code == 200 and triggered.json()["action"] == "triggered", triggered.text

    async def finished_run() -> Any:
        runs = (await sched.http.get(f"/api/schedules/{sid}/runs")).json()["runs"]
        return runs if runs and runs[0]["status"] == "finished" else None

    [run] = await poll(finished_run, "the triggered run to finish", timeout=30, interval=0.2)
    assert run["run_id"].startswith(f"{sid}-") and run["workflow"] == "tiny"
    detail = (await sched.http.get(f"/api/runs/{run['run_id']}")).json()
    assert detail["vars"]["topic"] == "churn" and detail["status"] == "finished"


async def test_get_describes_and_lists_the_schedule(sched: ApiHarness) -> None:
    sid = _sid()
    assert (await _create(sched, schedule_id=sid, cron="0 9 * * MON", overlap="buffer_all",
                          note="weekly")).status_code == 201
    detail = await sched.http.get(f"/api/schedules/{sid}")
    assert detail.status_code == 200, detail.text
    doc = detail.json()
    assert (doc["workflow"], doc["cron"], doc["overlap"], doc["note"], doc["task_queue"]) == (
        "tiny", ["0 9 * * MON"], "buffer_all", "weekly", sched.task_queue)

    async def listed() -> Any:
        rows = (await sched.http.get("/api/schedules")).json()["schedules"]
        return [r for r in rows if r["schedule_id"] == sid]

    [row] = await poll(listed, "the schedule in the list", timeout=20, interval=0.2)
    assert row["workflow"] == "tiny" and row["cron"] == ["0 9 * * MON"] and row["next_run_at"]


async def test_pause_and_unpause_set_the_schedule_state_with_the_note(sched: ApiHarness) -> None:
    sid = _sid()
    assert (await _create(sched, schedule_id=sid, every="1h")).status_code == 201
    paused = await sched.http.post(f"/api/schedules/{sid}/pause", json={"note": "holidays"})
    assert paused.status_code == 200 and paused.json()["action"] == "paused", paused.text
    doc = (await sched.http.get(f"/api/schedules/{sid}")).json()
    assert (doc["paused"], doc["note"], doc["next_runs"]) == (True, "holidays", [])
    assert (await sched.http.post(f"/api/schedules/{sid}/unpause", headers=JSON)).status_code == 200
    doc = (await sched.http.get(f"/api/schedules/{sid}")).json()
    assert doc["paused"] is False and doc["next_runs"]


async def test_delete_removes_the_schedule_and_then_it_is_404(sched: ApiHarness) -> None:
    sid = _sid()
    assert (await _create(sched, schedule_id=sid, every="1h")).status_code == 201
    deleted = await sched.http.request("DELETE", f"/api/schedules/{sid}", headers=JSON)
    assert deleted.status_code == 200 and deleted.json()["action"] == "deleted", deleted.text
    error = error_of(await sched.http.get(f"/api/schedules/{sid}"), 404)
    assert error["code"] == "schedule_not_found" and f"no schedule '{sid}'" in error["message"]


async def test_an_existing_id_is_409_unless_replace_is_set(sched: ApiHarness) -> None:
    sid = _sid()
    assert (await _create(sched, schedule_id=sid, every="1h")).status_code == 201
    error = error_of(await _create(sched, schedule_id=sid, every="2h"), 409)
    assert error["code"] == "schedule_exists" and '"replace": true' in error["message"]
    replaced = await _create(sched, schedule_id=sid, every="2h", replace=True)
    assert replaced.status_code == 201 and replaced.json()["replaced"] is True and replaced.json()["every"] == ["2h"]


async def test_a_body_without_times_is_422_invalid_schedule(sched: ApiHarness) -> None:
    error = error_of(await _create(sched, schedule_id=_sid()), 422)
    assert error["code"] == "invalid_schedule" and "give every" in error["message"]


async def test_a_run_id_in_the_run_is_422_saying_how_runs_are_named(sched: ApiHarness) -> None:
    error = error_of(await _create(sched, schedule_id=_sid(), every="1h",
                                   run={"workflow": "tiny", "run_id": "mine"}), 422)
    assert "<schedule id>-<firing time>" in error["message"]


async def test_a_read_only_token_lists_schedules_but_cannot_create_or_pause_them(sched: ApiHarness) -> None:
    async with sched.client(READ_TOKEN) as viewer:
        assert (await viewer.get("/api/schedules")).status_code == 200
        error_of(await viewer.post("/api/schedules", json={"every": "1h", "run": {"workflow": "tiny"}}), 403)
        error_of(await viewer.post("/api/schedules/any/pause", headers=JSON), 403)
