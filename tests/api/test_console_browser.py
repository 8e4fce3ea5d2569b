"""The run console in headless Chromium: follow a run through a gate answered in the page.

Chromium is Debian's `chromium` package (`make setup` installs it), driven by Python Playwright
through its `executable_path` (no browser is downloaded). The console is the built bundle in
api/static/web (`make web`); without it these tests fail and say how to build it.

With ITERLOOP_SCREENSHOTS=1 the screenshot goes to docs/images/console.png (the one the docs
show); otherwise to the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from api_harness import WRITE_TOKEN, ApiHarness, LiveServer, api, live_server  # noqa: F401

from api.dashboard import WEB_MANIFEST

pytestmark = pytest.mark.asyncio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]

#: Markdown with HTML in it (published as an artifact), a model turn whose prompt holds HTML, then a gate.
CONSOLE_DEMO = """\
vars:
  topic: string = "<script>window.pwned=3</script> pricing"

prompt plan_user:
  Plan the work on {{vars.topic}}.

schema plan:
  text: string

schema decision:
  approved: bool
  comment: string

prompt ask:
  Approve the plan?

tool notes:
  command: "echo '# Findings <script>window.pwned=1</script> <img src=x onerror=window.pwned=2>'"
  publish: findings

agent planner:
  model: "scripted"
  output: plan
  user: plan_user

human approval:
  instructions: ask
  output: decision

workflow console_demo:
  entry: notes
  notes -> planner
  planner -> approval
  approval -> done when approved
  approval -> fail when not approved
"""


def screenshot_path(tmp_path: Path, name: str) -> Path:
    if os.environ.get("ITERLOOP_SCREENSHOTS") == "1":
        return ROOT / "docs" / "images" / name
    return tmp_path / name


def require_bundle() -> None:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package"
    assert WEB_MANIFEST.is_file(), (f"{WEB_MANIFEST} is missing: build the front end first with `make web` "
                                    "(or `cd web && npm ci && npx vite build`)")


async def log_in(page: Any, url: str) -> None:
    from playwright.async_api import expect

    await page.goto(f"{url}/login")
    await page.fill('input[name="token"]', WRITE_TOKEN)
    await page.click('button:has-text("Log in")')
    await expect(page.locator("h1")).to_have_text("Runs")


def watch_problems(page: Any, problems: list[str]) -> None:
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)


async def test_console_follows_a_run_through_a_gate_answered_in_the_page(
        api: ApiHarness, live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    require_bundle()
    (api.settings.workflows_dir / "console_demo.iter").write_text(CONSOLE_DEMO)  # type: ignore[operator]
    run_id = await api.start("console_demo")
    await api.wait_status(run_id, "waiting_human")
    problems: list[str] = []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            watch_problems(page, problems)
            await log_in(page, live_server.url)
            await page.goto(f"{live_server.url}/runs/{run_id}")
            node = lambda name: page.get_by_test_id(f"node-{name}")  # noqa: E731

            # The graph, laid out in the browser; the gate waits; the path so far is highlighted.
            await expect(page.get_by_test_id("graph-canvas")).to_have_attribute("data-laid-out", "true")
            await expect(node("approval")).to_have_attribute("data-state", "waiting")
            await expect(node("notes")).to_have_attribute("data-state", "done")
            await expect(node("done")).to_have_attribute("data-state", "pending")
            await expect(page.get_by_test_id("edge-e0")).to_have_attribute("data-highlighted", "true")  # notes → planner
            await expect(page.get_by_test_id("edge-e1")).to_have_attribute("data-highlighted", "true")  # → approval
            await expect(page.get_by_test_id("edge-e2")).to_have_attribute("data-highlighted", "false")  # → done
            await expect(page.get_by_test_id("badge-planner")).to_have_text("×1")

            # Click the planner: its visit, model turn and output; then the gate: its questions.
            await node("planner").click()
            panel = page.get_by_test_id("node-panel")
            await expect(panel).to_have_attribute("data-node", "planner")
            await expect(panel.get_by_test_id("visit-1")).to_contain_text("Conversation turns")
            await expect(panel.get_by_test_id("visit-output")).to_contain_text('"text"')
            # What the visit was given, from the history: the rendered prompt, its HTML as text.
            given = panel.get_by_test_id("visit-given")
            await given.locator("summary").click()
            await expect(given).to_contain_text("Plan the work on <script>window.pwned=3</script> pricing.")
            conversation = panel.get_by_test_id("visit-conversation")
            await conversation.locator("summary").click()
            await expect(conversation).to_contain_text("Turn 1 · final")
            await node("approval").click()
            await expect(panel).to_have_attribute("data-node", "approval")
            await expect(panel.get_by_test_id("node-panel-state")).to_have_text("waiting")
            await expect(panel).to_contain_text("Approve the plan?")

            # Answer the gate in the console: a missing field is refused with the run's reason.
            gate = page.get_by_test_id("console-gate")
            await gate.locator('input[data-field="comment"]').fill("ship it")
            await gate.locator('button:has-text("Send answer")').click()
            await expect(gate.get_by_test_id("console-gate-error")).to_contain_text("needs field 'approved'")
            await gate.locator('select[data-field="approved"]').select_option("true")
            await gate.locator('button:has-text("Send answer")').click()

            # The run goes on live: nodes turn done, the path to done lights up, the run finishes.
            await expect(node("approval")).to_have_attribute("data-state", "done", timeout=30_000)
            await expect(node("done")).to_have_attribute("data-state", "done", timeout=30_000)
            await expect(page.get_by_test_id("edge-e2")).to_have_attribute("data-highlighted", "true")  # approval → done
            await expect(page.get_by_test_id("edge-e3")).to_have_attribute("data-highlighted", "false")  # → fail
            await expect(page.get_by_test_id("console-status")).to_have_text("finished", timeout=30_000)
            await expect(page.locator("#run-status")).to_have_text("finished")
            await expect(panel).to_contain_text("Answered by ada")

            # Markdown is rendered, and the HTML inside it stays text: no script ran, no image came.
            artifact = page.locator('.rc-artifact[data-artifact="findings"]')
            await expect(artifact.locator("h1")).to_contain_text("<script>window.pwned=1</script>")
            await expect(artifact.locator("h1")).to_contain_text("<img src=x onerror=window.pwned=2>")
            assert await page.locator(".rc-report script, .rc-report img").count() == 0
            assert await page.evaluate("window.pwned") is None
            await expect(page.get_by_test_id("report-html")).to_contain_text(run_id)
            await page.evaluate("window.scrollTo(0, document.querySelector('.console-section').offsetTop - 8)")
            await page.screenshot(path=str(screenshot_path(tmp_path, "console.png")), full_page=False)

            # The scrubber goes back in time: early on, only the first node had run.
            scrubber = page.get_by_test_id("scrubber")
            total = int(await scrubber.get_attribute("max") or 0)
            assert total > 10
            await scrubber.focus()  # the keyboard moves a range input as a person does
            await page.keyboard.press("Home")
            for _ in range(3):
                await page.keyboard.press("ArrowRight")
            await expect(page.get_by_test_id("scrubber-caption")).to_contain_text(f"event 3 of {total}")
            await expect(node("approval")).to_have_attribute("data-state", "pending")
            await expect(node("done")).to_have_attribute("data-state", "pending")
            await expect(page.get_by_test_id("edge-e2")).to_have_attribute("data-highlighted", "false")
            await page.get_by_test_id("scrubber-live").click()
            await expect(node("done")).to_have_attribute("data-state", "done")
        finally:
            await browser.close()

    # The refused answer's page is a 422, which Chromium logs; anything else is a problem.
    assert [p for p in problems if "status of 422" not in p] == []
    doc = await api.state(run_id)
    assert [(a["gate"], a["answers"], a["answered_by"]) for a in doc["answers"]] == [
        ("approval", {"approved": True, "comment": "ship it"}, "ada")]


async def test_runs_table_fits_a_1280_pixel_window(api: ApiHarness, live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright, expect

    require_bundle()
    long_id = "a-run-with-a-very-long-identifier-" + "x" * 60
    await api.start("gated", run_id=long_id)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await log_in(page, live_server.url)
            deadline = asyncio.get_running_loop().time() + 30
            while await page.locator(f'tr[data-run="{long_id}"]').count() == 0:  # visibility is eventually consistent
                assert asyncio.get_running_loop().time() < deadline, "the run never showed on the runs page"
                await page.reload()
            overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            table = await page.locator("table.runs").bounding_box()
            await expect(page.locator(f'tr[data-run="{long_id}"] td.run-id a')).to_have_attribute("title", long_id)
        finally:
            await browser.close()
    assert overflow <= 0 and table is not None and table["x"] + table["width"] <= 1280

