"""The dashboard in headless Chromium: log in, answer a gate with its form, watch the run finish.

Chromium is Debian's `chromium` package (`make setup` installs it); Playwright drives it through
its `executable_path`, so no browser is downloaded.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from api_harness import WRITE_TOKEN, ApiHarness, LiveServer, api, live_server  # noqa: F401

pytestmark = pytest.mark.asyncio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


async def test_answer_a_gate_in_the_browser_and_see_the_run_finish(api: ApiHarness, live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright, expect

    from api.dashboard import WEB_MANIFEST

    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package"
    assert WEB_MANIFEST.is_file(), f"{WEB_MANIFEST} is missing: build the run console first with `make web`"
    run_id = await api.start("gated")
    await api.wait_status(run_id, "waiting_human")
    problems: list[str] = []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" else None)

            await page.goto(f"{live_server.url}/")
            await expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
            await page.fill('input[name="token"]', WRITE_TOKEN)
            await page.click('button:has-text("Log in")')
            await expect(page.locator("h1")).to_have_text("Runs")

            await page.click('nav >> text="Approvals"')
            await expect(page.locator("h1")).to_have_text("Approvals")
            form = page.locator(f'article.gate[data-run="{run_id}"]')
            deadline = asyncio.get_running_loop().time() + 30
            while await form.count() == 0:  # the visibility store lists a new gate within moments
                assert asyncio.get_running_loop().time() < deadline, "the gate never showed on the approvals page"
                await page.reload()
            await expect(form.locator(".instructions")).to_contain_text("Approve the plan for checkout?")

            # A choice left out is refused by the run, and the reason shows next to the form.
            await form.locator('select[data-field="approved"]').select_option("true")
            await form.locator('input[data-field="comment"]').fill("ship it")
            await form.locator('button:has-text("Send answer")').click()
            form = page.locator(f'article.gate[data-run="{run_id}"]')
            await expect(form.locator(".error")).to_contain_text("needs field 'level'")
            await expect(form.locator('input[data-field="comment"]')).to_have_value("ship it")

            await form.locator('select[data-field="level"]').select_option("high")
            await form.locator('button:has-text("Send answer")').click()
            await expect(page).to_have_url(re.compile(rf"/runs/{run_id}\?answered=approval$"))
            await expect(page.locator("#run-status")).to_have_text("finished", timeout=30_000)
            # The run console follows the run live; a reload renders the server's details current.
            await expect(page.get_by_test_id("node-approval")).to_have_attribute("data-state", "done")
            await expect(page.get_by_test_id("node-done")).to_have_attribute("data-state", "done")
            await page.reload()
            await expect(page.locator('tr[data-node="approval"]')).to_have_attribute("data-status", "succeeded")
            await expect(page.locator('tr[data-node="done"]')).to_have_attribute("data-status", "succeeded")
            await expect(page.locator("#timeline")).to_contain_text("answered by ada")
            await expect(page.locator("#temporal-link")).to_have_attribute(
                "href", f"http://temporal-ui.test:8233/namespaces/default/workflows/{run_id}")
        finally:
            await browser.close()

    # The refused answer's page is a 422, which Chromium logs; anything else (a script error, a CSP
    # violation, a missing asset) is a problem.
    assert [p for p in problems if "status of 422" not in p] == []
    doc: dict[str, Any] = await api.state(run_id)
    assert doc["status"] == "finished"
    assert [(a["gate"], a["answers"], a["answered_by"]) for a in doc["answers"]] == [
        ("approval", {"approved": True, "level": "high", "comment": "ship it"}, "ada")]


#: Ten shell nodes, one after another: a run whose events keep coming for several seconds.
TICKER = "".join(f'tool t{i}:\n  command: "sleep 0.5"\n\n' for i in range(10)) + (
    "workflow ticker:\n  entry: t0\n" + "".join(f"  t{i} -> t{i + 1}\n" for i in range(9)) + "  t9 -> done\n")


async def test_a_busy_run_page_reloads_at_most_every_few_seconds(api: ApiHarness, live_server: LiveServer,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """Without the built console (`make web` not run), the server-rendered run page follows a run by
    reloading itself (run_live.js); rendering it asks Temporal for the whole run: not once per event."""
    from playwright.async_api import async_playwright, expect

    from api import dashboard
    from api.dashboard import RUN_PAGE_RELOAD_SECONDS

    monkeypatch.setattr(dashboard, "WEB_MANIFEST", tmp_path / "no-bundle" / "manifest.json")

    (api.settings.workflows_dir / "ticker.iter").write_text(TICKER)  # type: ignore[operator]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"{live_server.url}/login")
            await page.fill('input[name="token"]', WRITE_TOKEN)
            await page.click('button:has-text("Log in")')
            await expect(page.locator("h1")).to_have_text("Runs")
            run_id = await api.start("ticker")
            loads: list[float] = []
            page.on("load", lambda _: loads.append(asyncio.get_running_loop().time()))
            started = asyncio.get_running_loop().time()
            await page.goto(f"{live_server.url}/runs/{run_id}")
            await expect(page.locator("#run-status")).to_have_text("finished", timeout=60_000)
            took = asyncio.get_running_loop().time() - started
        finally:
            await browser.close()

    # ten nodes' worth of events over ~5 s; at most one reload per RUN_PAGE_RELOAD_SECONDS after the first load
    assert took < 40
    assert len(loads) >= 2, "the page never reloaded while the run went on"
    assert len(loads) - 1 <= took / RUN_PAGE_RELOAD_SECONDS + 1, (loads, took)
    gaps = [b - a for a, b in zip(loads, loads[1:])]
    assert all(gap >= RUN_PAGE_RELOAD_SECONDS - 0.5 for gap in gaps), gaps
