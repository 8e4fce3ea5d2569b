"""The dashboard's pages and forms against the real dev server (in-process HTTP, offline worker)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_harness import READ_TOKEN, WRITE_TOKEN, ApiHarness, api, api_settings_for  # noqa: F401

from api.app import create_app

pytestmark = pytest.mark.asyncio

HTML = {"Accept": "text/html"}


@asynccontextmanager
async def logged_in(api: ApiHarness, token: str = WRITE_TOKEN) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the session cookie `/login` sets for ``token`` (and no bearer token)."""
    async with api.client(token=None, headers=HTML) as browser:
        response = await browser.post("/login", data={"token": token, "next": "/"})
        assert response.status_code == 303, response.text
        yield browser


@pytest_asyncio.fixture
async def browser(api: ApiHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(api) as client:
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def gate_form_data(page: str, run_id: str, gate: str, **fields: Any) -> dict[str, Any]:
    """The hidden inputs of the gate's form on ``page`` plus ``fields`` (as `field.NAME`)."""
    article = page[page.index(f'id="gate-{run_id}-{gate}"'):]
    article = article[:article.index("</article>")]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', article))
    return {**hidden, "answered_by": "ada", **{f"field.{k}": v for k, v in fields.items()}}


# -- logging in ----------------------------------------------------------------------------------


async def test_pages_redirect_to_login_without_a_session(api: ApiHarness) -> None:
    async with api.client(token=None, headers=HTML) as anonymous:
        response = await anonymous.get("/approvals")
        login = await anonymous.get("/login", params={"next": "/approvals"})
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fapprovals"
    assert login.status_code == 200 and 'name="token"' in login.text and 'value="/approvals"' in login.text


async def test_login_with_a_wrong_token_is_refused(api: ApiHarness) -> None:
    async with api.client(token=None, headers=HTML) as anonymous:
        response = await anonymous.post("/login", data={"token": "wrong-token-0123456789", "next": "/"})
        assert response.status_code == 401 and "That token is not valid." in response.text
        assert "iterloop_session" not in response.headers.get("set-cookie", "")
        assert (await anonymous.get("/")).status_code == 303


async def test_login_sets_an_http_only_strict_session_cookie(api: ApiHarness) -> None:
    async with api.client(token=None, headers=HTML) as anonymous:
        response = await anonymous.post("/login", data={"token": WRITE_TOKEN, "next": "/approvals"})
    assert response.status_code == 303 and response.headers["location"] == "/approvals"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("iterloop_session=") and "httponly" in cookie and "samesite=strict" in cookie
    assert WRITE_TOKEN.lower() not in cookie


async def test_login_never_redirects_off_site(api: ApiHarness) -> None:
    async with api.client(token=None, headers=HTML) as anonymous:
        response = await anonymous.post("/login", data={"token": WRITE_TOKEN, "next": "//evil.example/x"})
    assert response.headers["location"] == "/"


async def test_logout_ends_the_session(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    page = (await browser.get("/")).text
    response = await browser.post("/logout", data={"csrf": csrf_of(page)})
    assert response.status_code == 303
    assert (await browser.get("/")).status_code == 303


async def test_without_auth_the_dashboard_needs_no_login(api: ApiHarness) -> None:
    app = create_app(api_settings_for(api.temporal, api.task_queue, api.tmp, auth_disabled=True, tokens=()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080",
                                 headers=HTML) as anonymous:
        page = await anonymous.get("/")
    assert page.status_code == 200 and "no authentication (local)" in page.text


async def test_without_auth_the_dashboard_forms_still_work_on_this_machine_only(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    app = create_app(api_settings_for(api.temporal, api.task_queue, api.tmp, auth_disabled=True, tokens=()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost:8080",
                                 headers=HTML) as local:
        page = (await local.get(f"/runs/{run_id}")).text
        rebound = await local.post(f"/runs/{run_id}/cancel", data={"csrf": csrf_of(page)},
                                   headers={"Host": "attacker.example"})
        assert rebound.status_code == 400 and (await api.state(run_id))["status"] == "waiting_human"
        response = await local.post(f"/runs/{run_id}/cancel", data={"csrf": csrf_of(page)})
    assert response.status_code == 303 and (await api.state(run_id))["status"] == "cancelled"


# -- runs and the run page -----------------------------------------------------------------------


async def test_runs_page_lists_status_cost_and_open_gates(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")

    async def listed() -> str | None:
        page = (await browser.get("/", params={"status": "waiting_human"})).text
        return page if f'data-run="{run_id}"' in page else None

    from runs import poll

    page = await poll(listed, "the run on the runs page")
    row = page[page.index(f'data-run="{run_id}"'):]
    row = row[:row.index("</tr>")]
    assert "status-waiting_human" in row and "$0.0000" in row
    assert f'href="/approvals#gate-{run_id}-approval"' in row


async def test_run_page_shows_each_node_state_and_the_edges(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    response = await browser.get(f"/runs/{run_id}")
    assert response.status_code == 200
    page = response.text
    assert 'id="run-status">waiting_human<' in page
    assert '<tr data-node="planner" data-status="succeeded">' in page
    assert '<tr data-node="approval" data-status="waiting">' in page
    assert '<tr data-node="done" data-status="pending">' in page
    assert 'data-from="approval" data-to="fail"' in page and "not approved" in page  # the no-JS edge table
    assert 'href="http://temporal-ui.test:8233/namespaces/default/workflows/' + run_id + '"' in page
    assert 'class="output" data-node="planner"' in page  # outputs
    assert "waiting for a human answer" in page  # the timeline, in the CLI's words
    assert "<th>tokens</th>" in page and "<th>cost_usd</th>" in page  # budget
    assert f'id="gate-{run_id}-approval"' in page  # the gate's form is on the run page too
    assert f'data-stream="/api/runs/{run_id}/events/stream' in page  # live updates
    from api.dashboard import console_assets

    assets = console_assets()  # the console's bundle when built (`make web`), else the reloading script
    script = f'<script type="module" src="{assets.script}">' if assets else '<script src="/static/run_live.js"'
    assert script in page


async def test_unknown_run_page_is_an_html_404(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/runs/no-such-run")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "no run &#39;no-such-run&#39;" in response.text


async def test_pages_load_only_local_assets_under_a_strict_csp(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    for asset in ("/static/dashboard.css", "/static/dashboard.js", "/static/run_live.js"):
        assert (await browser.get(asset)).status_code == 200, asset


async def test_cancel_button_cancels_the_run(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    page = (await browser.get(f"/runs/{run_id}")).text
    response = await browser.post(f"/runs/{run_id}/cancel", data={"csrf": csrf_of(page)})
    assert response.status_code == 303 and response.headers["location"] == f"/runs/{run_id}?notice=cancelled"
    assert (await api.state(run_id))["status"] == "cancelled"


# -- approvals -----------------------------------------------------------------------------------


async def approvals_with(browser: httpx.AsyncClient, run_id: str) -> str:
    """The approvals page once it lists the run's gate (visibility is eventually consistent)."""
    from runs import poll

    async def page() -> str | None:
        text = (await browser.get("/approvals")).text
        return text if f'data-run="{run_id}"' in text else None

    return str(await poll(page, f"run {run_id} on the approvals page"))


async def test_approvals_form_is_generated_from_the_gate_schema(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("all_types")
    page = await approvals_with(browser, run_id)
    form = page[page.index(f'id="gate-{run_id}-review"'):]
    form = form[:form.index("</article>")]
    assert "Check every field." in form
    assert re.search(r'<select [^>]*name="field.approved"', form)
    assert '<option value="true" >yes</option>' in form.replace("\n", "") or 'value="true"' in form
    assert re.search(r'<select [^>]*name="field.level"', form) and '<option value="high"' in form
    assert re.search(r'type="number" step="1" name="field.count"', form)
    assert re.search(r'type="number" step="any" name="field.ratio"', form)
    assert re.search(r'<textarea [^>]*name="field.tags"', form)
    assert re.search(r'type="checkbox" name="field.channels" value="email"', form)
    assert re.search(r'<textarea [^>]*name="field.config"[^>]*class="mono"', form)
    assert re.search(r'type="text" name="field.note"', form)


async def test_form_answer_is_typed_recorded_and_the_run_finishes(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("all_types")
    page = await approvals_with(browser, run_id)
    data = gate_form_data(page, run_id, "review", approved="true", level="high", count="3", ratio="0.25",
                          tags="alpha\n beta \n\n", channels=["email", "push"], config='{"split": [50, 50]}',
                          note="looks fine")
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/runs/{run_id}?answered=review"
    done = await api.wait_status(run_id, "finished")
    assert done["answers"][0]["answers"] == {"approved": True, "level": "high", "count": 3, "ratio": 0.25,
                                             "tags": ["alpha", "beta"], "channels": ["email", "push"],
                                             "config": {"split": [50, 50]}, "note": "looks fine"}
    assert done["answers"][0]["answered_by"] == "ada"
    run_page = await browser.get(response.headers["location"])
    assert "Recorded the answer for gate &#39;review&#39;." in run_page.text


async def test_a_form_answer_for_someone_else_still_names_the_session_user(
        api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    page = await approvals_with(browser, run_id)
    data = {**gate_form_data(page, run_id, "approval", approved="true", level="low", comment="ok"),
            "answered_by": "mallory"}
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 303, response.text
    done = await api.wait_status(run_id, "finished")
    assert done["answers"][0]["answered_by"] == "ada (for mallory)"


async def test_rejected_form_answer_is_shown_inline_and_nothing_is_recorded(
        api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("all_types")
    page = await approvals_with(browser, run_id)
    data = gate_form_data(page, run_id, "review", approved="true", level="", count="3", ratio="1", tags="a",
                          config="[]", note="typed text stays")
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 422
    form = response.text[response.text.index(f'id="gate-{run_id}-review"'):]
    assert "answer rejected: gate &#39;review&#39; needs field &#39;level&#39;" in form[:form.index("</article>")]
    assert 'value="typed text stays"' in form  # what was typed is kept
    doc = await api.state(run_id)
    assert doc["answers"] == [] and doc["status"] == "waiting_human"


async def test_invalid_json_in_a_form_is_shown_inline(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("all_types")
    page = await approvals_with(browser, run_id)
    data = gate_form_data(page, run_id, "review", approved="false", level="low", count="1", ratio="1", tags="a",
                          config="{not json", note="")
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 422 and "field &#39;config&#39; must be a JSON value" in response.text
    assert (await api.state(run_id))["answers"] == []


async def test_form_without_the_csrf_token_is_403(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    page = await approvals_with(browser, run_id)
    data = gate_form_data(page, run_id, "approval", approved="true", level="low", comment="")
    data["csrf"] = "forged"
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 403 and "CSRF" in response.text
    assert (await api.state(run_id))["answers"] == []


async def test_read_only_session_sees_gates_but_cannot_answer(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    async with logged_in(api, READ_TOKEN) as viewer:
        page = await approvals_with(viewer, run_id)
        assert "viewer <span class=\"muted\">(read only)</span>" in page
        data = gate_form_data(page, run_id, "approval", approved="true", level="low", comment="")
        response = await viewer.post("/approvals/answer", data=data)
    assert response.status_code == 403 and "may only read" in response.text
    assert (await api.state(run_id))["answers"] == []


async def test_answer_on_the_run_page_returns_to_the_run_page_on_error(
        api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    page = (await browser.get(f"/runs/{run_id}")).text
    data = gate_form_data(page, run_id, "approval", approved="perhaps", level="low", comment="")
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 422 and 'id="run-status"' in response.text
    assert "field &#39;approved&#39; expects bool" in response.text


async def test_a_form_for_a_gate_answered_elsewhere_is_409(api: ApiHarness, browser: httpx.AsyncClient) -> None:
    run_id = await api.start("gated")
    page = await approvals_with(browser, run_id)
    answered = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer",
                                   json={"answers": {"approved": True, "level": "low", "comment": "first"}})
    assert answered.status_code == 200
    await api.wait_status(run_id, "finished")
    data = gate_form_data(page, run_id, "approval", approved="false", level="high", comment="second")
    response = await browser.post("/approvals/answer", data=data)
    assert response.status_code == 409 and "opening 1 was already answered by ada at" in response.text
    assert [a["answers"]["comment"] for a in (await api.state(run_id))["answers"]] == ["first"]
