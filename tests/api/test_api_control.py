"""`POST /api/runs/{run_id}/budget|pause|resume` against the session's dev server (offline worker):
a run parked on its budget finishes once raised; refusals are 422 `control_rejected`; pause and
resume with who asked; a read-only token may not; an ended run is 409."""

from __future__ import annotations

from typing import Any

import httpx
from api_harness import READ_TOKEN, ApiHarness, api  # noqa: F401
from runs import BUDGET_REVIEW

REVIEW = BUDGET_REVIEW
SCRIPT = {"cost_per_call_usd": 0.01,
          "reviewer": [{"approved": False, "summary": "no"}, {"approved": True, "summary": "yes"}]}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


async def parked(api: ApiHarness) -> str:
    (api.settings.workflows_dir / "review.iter").write_text(REVIEW, encoding="utf-8")  # type: ignore[operator]
    run_id = await api.start("review", offline=True, script=SCRIPT)
    doc = await api.wait_status(run_id, "waiting_budget")
    assert f"iterloop budget {run_id} --max-cost-usd" in doc["budget_wait"]
    return run_id


async def test_post_budget_lets_a_parked_run_finish(api: ApiHarness) -> None:
    run_id = await parked(api)
    response = await api.http.post(f"/api/runs/{run_id}/budget", json={"max_cost_usd": 0.1, "reason": "worth it"})
    assert response.status_code == 200, response.text
    assert response.json()["limits"]["cost_usd"] == 0.1 and response.json()["action"] == "budget"
    done = await api.wait_status(run_id, "finished")
    assert done["nodes"]["writer"]["visits"] == 2 and done["nodes"]["reviewer"]["visits"] == 2
    events = (await api.http.get(f"/api/runs/{run_id}/events")).json()["events"]
    raised = [e for e in events if e["type"] == "budget_raised"]
    assert raised[0]["data"]["by"] == "ada" and raised[0]["data"]["reason"] == "worth it"


async def test_a_lower_limit_or_unknown_loop_is_422_control_rejected(api: ApiHarness) -> None:
    run_id = await parked(api)
    lower = error_of(await api.http.post(f"/api/runs/{run_id}/budget", json={"max_cost_usd": 0.02}), 422)
    assert lower["code"] == "control_rejected" and "limits only go up" in lower["message"]
    loop = error_of(await api.http.post(f"/api/runs/{run_id}/budget", json={"grant": {"polish": 1}}), 422)
    assert loop["code"] == "control_rejected" and "has no loop 'polish'" in loop["message"]
    assert (await api.state(run_id))["status"] == "waiting_budget"


async def test_pause_and_resume_record_who_asked(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    paused = await api.http.post(f"/api/runs/{run_id}/pause", json={"by": "grace", "reason": "audit"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    twice = error_of(await api.http.post(f"/api/runs/{run_id}/pause", json={}), 422)
    assert twice["code"] == "control_rejected" and "paused already (by ada (for grace))" in twice["message"]
    resumed = await api.http.post(f"/api/runs/{run_id}/resume", headers={"Content-Type": "application/json"})
    assert resumed.status_code == 200 and resumed.json()["paused"] is False


async def test_a_read_only_token_may_not_pause(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    async with api.client(READ_TOKEN) as viewer:
        assert (await viewer.post(f"/api/runs/{run_id}/pause", json={})).status_code == 403


async def test_control_of_an_ended_run_is_409(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    assert (await api.http.post(f"/api/runs/{run_id}/cancel", json={})).status_code == 200
    ended = error_of(await api.http.post(f"/api/runs/{run_id}/resume", json={}), 409)
    assert ended["code"] == "run_ended"


async def test_openapi_lists_the_live_control_routes(api: ApiHarness) -> None:
    paths = (await api.http.get("/openapi.json")).json()["paths"]
    for action in ("budget", "pause", "resume"):
        assert "post" in paths[f"/api/runs/{{run_id}}/{action}"]
