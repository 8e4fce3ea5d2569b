"""`POST /api/runs/{id}/rewind` and `/fork`, and the run page's buttons, against the real dev server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_harness import READ_TOKEN, WRITE_TOKEN, ApiHarness, api  # noqa: F401

pytestmark = pytest.mark.asyncio


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


@pytest_asyncio.fixture
async def browser(api: ApiHarness) -> AsyncIterator[httpx.AsyncClient]:
    """A dashboard session (the cookie `/login` sets), as tests/api/test_api_dashboard.py logs in."""
    async with api.client(token=None, headers={"Accept": "text/html"}) as client:
        response = await client.post("/login", data={"token": WRITE_TOKEN, "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)

APPROVE = {"answers": {"approved": True, "level": "low", "comment": "ok"}}
REJECT = {"answers": {"approved": False, "level": "low", "comment": "no"}}


async def rejected_run(api: ApiHarness) -> str:
    """A run of `gated` whose plan a person rejected: it ended as failed."""
    run_id = await api.start("gated", script={"planner": {"text": "bad plan"}})
    await api.wait_status(run_id, "waiting_human")
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json=REJECT)
    assert response.status_code == 200, response.text
    await api.wait_status(run_id, "failed")
    return run_id


async def test_rewind_resumes_an_ended_run_and_asks_the_gate_again(api: ApiHarness) -> None:
    run_id = await rejected_run(api)
    assert (await api.state(run_id))["rewind_points"] == ["planner", "approval", "fail"]

    response = await api.http.post(f"/api/runs/{run_id}/rewind",
                                   json={"node": "planner", "script": {"planner": {"text": "good plan"}}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["run_id"] == run_id and body["node"] == "planner" and body["outputs"] == []

    doc = await api.wait_status(run_id, "waiting_human")
    gate = doc["open_gates"][0]
    assert gate["gate"] == "approval" and gate["questions"]["plan"] == "good plan"
    assert gate["interaction_id"] == f"{run_id}:approval:2"
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json=APPROVE)
    assert response.status_code == 200, response.text
    doc = await api.wait_status(run_id, "finished")
    assert [a["answers"]["approved"] for a in doc["answers"]] == [False, True]


async def test_fork_starts_a_new_run_at_the_gate_with_the_plan(api: ApiHarness) -> None:
    run_id = await rejected_run(api)
    response = await api.http.post(f"/api/runs/{run_id}/fork",
                                   json={"node": "approval", "run_id": f"{run_id}-fork", "vars": {"topic": "search"}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["run_id"] == f"{run_id}-fork" and body["forked_from"] == run_id and body["outputs"] == ["planner"]
    api.started.append(body["run_id"])

    doc = await api.wait_status(body["run_id"], "waiting_human")
    assert doc["open_gates"][0]["questions"]["plan"] == "bad plan"  # the planner's output, recorded before
    assert "Approve the plan for search?" in doc["open_gates"][0]["instructions"]  # the changed var
    assert doc["nodes"]["planner"]["status"] == "succeeded" and doc["answers"] == []
    assert (await api.state(run_id))["status"] == "failed"  # the source is left alone

    again = await api.http.post(f"/api/runs/{run_id}/fork", json={"node": "approval", "run_id": f"{run_id}-fork"})
    assert error_of(again, 409)["code"] == "run_exists"


async def test_rewind_and_fork_refuse_what_they_cannot_do(api: ApiHarness) -> None:
    run_id = await rejected_run(api)
    nope = await api.http.post(f"/api/runs/{run_id}/rewind", json={"node": "nope"})
    assert error_of(nope, 422)["code"] == "no_rewind_point"
    bad_var = await api.http.post(f"/api/runs/{run_id}/fork", json={"node": "approval", "vars": {"days": "many"}})
    assert error_of(bad_var, 422)["code"] == "invalid_request"
    bad_script = await api.http.post(f"/api/runs/{run_id}/rewind", json={"node": "planner", "script": {"planner": []}})
    assert error_of(bad_script, 422)["code"] == "invalid_script"
    unknown = await api.http.post("/api/runs/no-such-run/rewind", json={"node": "planner"})
    assert error_of(unknown, 404)["code"] == "run_not_found"
    async with api.client(token=READ_TOKEN) as viewer:
        refused = await viewer.post(f"/api/runs/{run_id}/rewind", json={"node": "planner"})
    assert error_of(refused, 403)["code"] == "read_only_token"


async def test_openapi_documents_rewind_and_fork(api: ApiHarness) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    rewind = spec["paths"]["/api/runs/{run_id}/rewind"]["post"]
    fork = spec["paths"]["/api/runs/{run_id}/fork"]["post"]
    assert rewind["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RewindRun")
    assert rewind["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunRewound")
    assert fork["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunForked")


async def test_run_page_rewinds_and_forks_from_a_node(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await rejected_run(api)
    page = (await browser.get(f"/runs/{run_id}")).text
    assert f'action="/runs/{run_id}/rewind"' in page and f'action="/runs/{run_id}/fork"' in page
    response = await browser.post(f"/runs/{run_id}/fork", data={"csrf": csrf_of(page), "node": "approval"})
    assert response.status_code == 303 and response.headers["location"].endswith("?notice=forked")
    fork_id = response.headers["location"].removeprefix("/runs/").split("?")[0]
    api.started.append(fork_id)
    await api.wait_status(fork_id, "waiting_human")

    response = await browser.post(f"/runs/{run_id}/rewind", data={"csrf": csrf_of(page), "node": "approval"})
    assert response.status_code == 303 and response.headers["location"] == f"/runs/{run_id}?notice=rewound"
    doc = await api.wait_status(run_id, "waiting_human")
    assert doc["outputs"]["planner"]["text"] == "bad plan" and "approval" not in doc["outputs"]
