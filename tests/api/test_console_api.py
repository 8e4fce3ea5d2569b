"""The run console's endpoints (api/rest_console.py) and the dashboard's start-run form, against the real dev server.

Runs are real (in-test offline worker, scripted model); what the console reads is checked the way
the browser reads it: JSON over HTTP with the bearer token or the dashboard's session.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from api_harness import WRITE_TOKEN, ApiHarness, api  # noqa: F401

from api.dashboard import console_assets

pytestmark = pytest.mark.asyncio

SECRET = "console-secret-value-0123456789"

#: A command that prints a worker secret, and one whose output is Markdown with HTML in it, published.
LEAKY = """\
tool show:
  command: "echo the token is $X_CONSOLE_TOKEN"

workflow leaky:
  entry: show
  show -> done
"""

HOSTILE = """\
tool notes:
  command: "echo '# Findings <script>window.pwned=1</script> <img src=x onerror=window.pwned=2> [x](javascript:alert(1))'"
  publish: findings

workflow hostile:
  entry: notes
  notes -> done
"""


def register(api: ApiHarness, name: str, text: str) -> None:
    (api.settings.workflows_dir / f"{name}.iter").write_text(textwrap.dedent(text), encoding="utf-8")  # type: ignore[operator]


async def answered_gated_run(api: ApiHarness) -> str:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
        "answers": {"approved": True, "level": "high", "comment": "ok"}})
    assert response.status_code == 200, response.text
    await api.wait_status(run_id, "finished")
    return run_id


# -- the graph -----------------------------------------------------------------------------------


async def test_graph_has_every_node_and_each_edge_with_its_condition(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    response = await api.http.get(f"/api/runs/{run_id}/graph")
    assert response.status_code == 200, response.text
    graph = response.json()["graph"]
    assert [(n["id"], n["kind"]) for n in graph["nodes"]] == [
        ("planner", "agent"), ("approval", "human"), ("done", "done"), ("fail", "fail")]
    assert [(e["id"], e["from"], e["to"], e["when"]) for e in graph["edges"]] == [
        ("e0", "planner", "approval", None), ("e1", "approval", "done", "approved"),
        ("e2", "approval", "fail", "not approved")]
    assert graph["edges"][0]["with"] == {"plan": "{{outputs.planner.text}}"}
    assert graph["entry"] == "planner" and graph["nodes"][0]["props"]["model"] == "scripted"


async def test_graph_of_an_unknown_run_is_a_404(api: ApiHarness) -> None:
    response = await api.http.get("/api/runs/no-such-run/graph")
    assert response.status_code == 404 and "no-such-run" in response.json()["error"]["message"]


# -- a node's visits -----------------------------------------------------------------------------


async def test_node_details_give_each_visit_its_output_turns_and_cost(api: ApiHarness) -> None:
    run_id = await answered_gated_run(api)
    planner = (await api.http.get(f"/api/runs/{run_id}/nodes/planner")).json()
    assert planner["kind"] == "agent" and planner["status"] == "succeeded"
    [visit] = planner["visits"]
    assert visit["visit"] == 1 and visit["status"] == "succeeded"
    assert visit["output"] == planner["latest_output"] and "text" in visit["output"]
    assert [t["status"] for t in visit["turns"]] == ["final"]
    assert visit["input_tokens"] == sum(t["input_tokens"] for t in visit["turns"])


async def test_gate_node_details_show_the_questions_and_who_answered(api: ApiHarness) -> None:
    run_id = await answered_gated_run(api)
    approval = (await api.http.get(f"/api/runs/{run_id}/nodes/approval")).json()
    [visit] = approval["visits"]
    assert visit["answered_by"] == "ada" and visit["status"] == "succeeded"
    assert visit["output"] == {"approved": True, "level": "high", "comment": "ok"}
    assert approval["inputs"]["prompts"]["instructions"].startswith("Approve the plan for {{vars.topic}}?")
    assert approval["inputs"]["incoming"] == [{"from": "planner", "with": {"plan": "{{outputs.planner.text}}"}}]


async def test_unknown_node_is_a_404_that_lists_the_nodes(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    response = await api.http.get(f"/api/runs/{run_id}/nodes/nobody")
    assert response.status_code == 404
    body = response.json()["error"]
    assert body["code"] == "unknown_node" and "planner, approval, done, fail" in body["message"]


async def test_a_worker_secret_never_appears_in_node_details(api: ApiHarness,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_CONSOLE_TOKEN", SECRET)  # the in-test worker's environment
    register(api, "leaky", LEAKY)
    run_id = await api.start("leaky")
    await api.wait_status(run_id, "finished")
    texts = [(await api.http.get(f"/api/runs/{run_id}/{path}")).text for path in ("nodes/show", "rendered", "graph")]
    show = json.loads(texts[0])
    assert show["visits"][0]["output"] == {"result": "the token is [redacted:X_CONSOLE_TOKEN]"}
    assert all(SECRET not in text for text in texts)


# -- Markdown ------------------------------------------------------------------------------------


async def test_markdown_from_a_run_is_rendered_without_its_html(api: ApiHarness) -> None:
    register(api, "hostile", HOSTILE)
    run_id = await api.start("hostile")
    await api.wait_status(run_id, "finished")
    rendered = (await api.http.get(f"/api/runs/{run_id}/rendered")).json()
    html = rendered["artifacts"]["findings"]["result"]
    assert html.startswith("<h1>Findings &lt;script&gt;window.pwned=1&lt;/script&gt; &lt;img src=x onerror=")
    assert "javascript:" not in re.sub(r"\[x\]\(javascript:alert\(1\)\)", "", html)  # left as text, never a link
    for text in (html, rendered["report_html"]):
        assert "<script" not in text and "<img" not in text
    assert rendered["report_markdown"].startswith("#") and rendered["report_html"].startswith("<h")


# -- the dashboard's run page and runs page ------------------------------------------------------


@asynccontextmanager
async def logged_in(api: ApiHarness) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the dashboard's session cookie (no bearer token), as a browser has."""
    async with api.client(token=None, headers={"Accept": "text/html"}) as browser:
        response = await browser.post("/login", data={"token": WRITE_TOKEN, "next": "/"})
        assert response.status_code == 303, response.text
        yield browser


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def test_start_form_starts_a_registered_workflow_with_vars(api: ApiHarness) -> None:
    async with logged_in(api) as browser:
        page = (await browser.get("/")).text
        assert '<form method="post" action="/runs/start"' in page and '<option value="gated"' in page
        response = await browser.post("/runs/start", data={
            "csrf": csrf_of(page), "workflow": "gated", "vars": "topic=pricing\ndays=7", "preset": "", "offline": "on"})
    assert response.status_code == 303, response.text
    run_id = response.headers["location"].removeprefix("/runs/")
    api.started.append(run_id)
    doc = await api.wait_status(run_id, "waiting_human")
    assert doc["workflow"] == "gated" and doc["vars"]["topic"] == "pricing" and doc["vars"]["days"] == 7


async def test_start_form_shows_why_a_run_was_refused_and_keeps_the_input(api: ApiHarness) -> None:
    async with logged_in(api) as browser:
        page = (await browser.get("/")).text
        response = await browser.post("/runs/start", data={
            "csrf": csrf_of(page), "workflow": "gated", "vars": "days=soon"})
    assert response.status_code == 422
    assert re.search(r'<p class="error" role="alert">[^<]*days', response.text), response.text[-2000:]
    assert ">days=soon</textarea>" in response.text


async def test_start_form_without_the_csrf_token_is_refused(api: ApiHarness) -> None:
    async with logged_in(api) as browser:
        response = await browser.post("/runs/start", data={"workflow": "gated", "vars": "topic=x"})
    assert response.status_code == 403 and "CSRF token is missing" in response.text


async def test_run_page_keeps_a_graph_table_for_readers_without_javascript(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    async with logged_in(api) as browser:
        page = (await browser.get(f"/runs/{run_id}")).text
    noscript = page[page.index("<noscript>"):page.index("</noscript>")]
    assert '<tr data-graph-node="approval"><td>approval <span class="muted">(current)</span>' in noscript
    assert 'status-waiting' in noscript
    assert '<tr data-from="approval" data-to="fail"><td>approval</td><td>fail</td><td>not approved</td>' in noscript
    assert "<svg" not in page


async def test_console_assets_come_from_the_vite_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "_client-x.js": {"file": "assets/client-x.js", "css": ["assets/graph-y.css"]},
        "console.html": {"file": "assets/console-abc.js", "isEntry": True, "imports": ["_client-x.js"],
                         "css": ["assets/console-def.css"]}}))
    assets = console_assets(manifest)
    assert assets is not None and assets.script == "/static/web/assets/console-abc.js"
    assert assets.styles == ("/static/web/assets/console-def.css", "/static/web/assets/graph-y.css")
    assert console_assets(tmp_path / "missing.json") is None


async def test_console_endpoints_need_a_token_and_are_in_the_openapi_schema(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    async with api.client(token=None) as anonymous:
        refused = [(await anonymous.get(f"/api/runs/{run_id}/{path}")).status_code
                   for path in ("graph", "nodes/planner", "rendered")]
        paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert refused == [401, 401, 401]
    assert {"/api/runs/{run_id}/graph", "/api/runs/{run_id}/nodes/{node}", "/api/runs/{run_id}/rendered"} <= set(paths)
