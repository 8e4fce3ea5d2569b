"""The visual editor in headless Chromium against the real `iterloop editor` server.

Chromium is Debian's `chromium` package (`make setup` installs it), driven by Playwright through
its `executable_path`: no browser is downloaded. The page is the bundle `make web` built
(api/static/web); the server is the real command (`editor_server` in conftest.py), so every
canvas gesture goes through the real ops, the real formatter and the real validator.

With ITERLOOP_SCREENSHOTS=1 the screenshots go to docs/images/ (the ones docs/editor.md shows);
otherwise into the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import dsl

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "api" / "static" / "web" / ".vite" / "manifest.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXAMPLES = REPO / "examples"
CANVAS_NODES = '[data-testid="graph-canvas"] [data-kind]'


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """docs/images/NAME when screenshots are asked for (ITERLOOP_SCREENSHOTS=1), else tmp_path/NAME."""
    if os.environ.get("ITERLOOP_SCREENSHOTS") == "1":
        return REPO / "docs" / "images" / name
    return tmp_path / name


class EditorPage:
    """One Chromium page on the editor, with the gestures a user makes."""

    def __init__(self, page: Any, expected: list[str]) -> None:
        self.page = page
        self.expected = expected

    def expect_console_error(self, text: str) -> None:
        """A console error the test provokes on purpose (Chromium logs every refused request)."""
        self.expected.append(text)

    def node(self, name: str) -> Any:
        return self.page.locator(f'[data-testid="graph-canvas"] [data-testid="node-{name}"]')

    def edge(self, source: str, target: str) -> Any:
        return self.page.locator(f'[data-testid^="edge-"][data-from="{source}"][data-to="{target}"]')

    async def drop(self, kind: str, x: int, y: int) -> None:
        """Drag a kind from the node library onto the canvas (HTML5 drag and drop)."""
        await self.page.get_by_test_id(f"library-{kind}").drag_to(self.page.get_by_test_id("graph-canvas"),
                                                                    target_position={"x": x, "y": y})

    async def connect(self, source: str, target: str) -> None:
        """Drag from the source node's bottom handle to the target node's top handle."""
        start = await self.node(source).locator(".react-flow__handle-bottom").bounding_box()
        end = await self.node(target).locator(".react-flow__handle-top").bounding_box()
        assert start and end, f"the handles of {source} or {target} are not on screen"
        mouse = self.page.mouse
        await mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
        await mouse.down()
        await mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2 + 3, steps=12)
        await mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=2)
        await mouse.up()

    async def commit(self, testid: str, text: str) -> None:
        """Type into an inspector box and commit it with Enter (one op per change)."""
        box = self.page.get_by_test_id(testid)
        await box.fill(text)
        await box.press("Enter")

    async def canvas_node_ids(self) -> list[str]:
        ids: list[str] = await self.page.locator(CANVAS_NODES).evaluate_all(
            "els => els.map(e => e.dataset.testid.slice('node-'.length))")
        return sorted(ids)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package"
    assert MANIFEST.exists(), (f"the editor's bundle is not built ({MANIFEST.relative_to(REPO)} is missing): "
                               "run `make web` (or `cd web && npm ci && npx vite build`)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def open_editor(browser: Any, editor_server: Callable[..., str]) -> AsyncIterator[Callable[..., Any]]:
    """open_editor(directory) → an EditorPage on `iterloop editor --dir directory`. Script errors and
    failed requests on the page fail the test at the end."""
    problems: list[str] = []
    expected: list[str] = []
    contexts: list[Any] = []

    async def start(directory: Path) -> EditorPage:
        url = editor_server(directory)
        context = await browser.new_context(viewport={"width": 1600, "height": 900})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        await page.goto(f"{url}/editor/")
        await page.wait_for_selector('[data-testid="editor"][data-connected="true"]')
        return EditorPage(page, expected)

    yield start
    for context in contexts:
        await context.close()
    assert [p for p in problems if not any(e in p for e in expected)] == []


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=str(REPO), capture_output=True, text=True,
                          timeout=120, check=False)


def ir_node_ids(path: Path) -> list[str]:
    result = dsl.check_file(path)
    assert result.workflow is not None, f"{path.name} does not compile: {result.diagnostics}"
    return sorted(result.workflow.nodes)


async def test_a_workflow_built_by_drag_and_drop_saves_as_a_valid_formatted_file(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    work = tmp_path / "flows"
    work.mkdir()
    editor: EditorPage = await open_editor(work)
    page = editor.page

    await page.get_by_test_id("new-file-name").fill("review.iter")
    await page.get_by_test_id("new-file").click()
    await expect(page.get_by_test_id("current-file")).to_have_text("review.iter")
    await expect(page.get_by_test_id("notice")).to_contain_text("created review.iter")
    assert (work / "review.iter").read_text() == ""

    # Two nodes from the library, renamed and given a model in the inspector.
    await editor.drop("agent", 260, 120)
    await expect(editor.node("agent_1")).to_have_attribute("data-kind", "agent")
    await expect(page.locator('[data-testid="node-inspector"][data-node="agent_1"]')).to_be_visible()
    await editor.commit("node-name", "writer")
    await expect(editor.node("writer")).to_be_visible()
    await editor.commit("field-model", "anthropic/claude-sonnet-4-5")
    source = page.get_by_test_id("source")
    await expect(source).to_contain_text('agent writer:\n  model: "anthropic/claude-sonnet-4-5"')
    await expect(source).to_contain_text("workflow review:\n  entry: writer")
    await editor.drop("judge", 260, 330)
    await expect(editor.node("judge_1")).to_have_attribute("data-kind", "judge")
    await expect(page.locator('[data-testid="node-inspector"][data-node="judge_1"]')).to_be_visible()
    await editor.commit("node-name", "critic")
    await expect(editor.node("critic")).to_be_visible()
    await editor.commit("field-model", "anthropic/claude-sonnet-4-5")
    await expect(source).to_contain_text('judge critic:\n  model: "anthropic/claude-sonnet-4-5"')
    # The built-in terminals are on the canvas from the first node on (one canvas node per IR node).
    assert await editor.canvas_node_ids() == ["critic", "done", "fail", "writer"]
    await page.get_by_test_id("auto-layout").click()

    # Edges by dragging handles; conditions and the loop in the edge inspector.
    await editor.connect("writer", "critic")
    await expect(editor.edge("writer", "critic")).to_have_count(1)
    await editor.connect("critic", "done")
    await expect(page.get_by_test_id("edge-inspector")).to_contain_text("critic → done")
    await editor.commit("edge-when", "approved")
    await expect(editor.edge("critic", "done")).to_have_text("when approved")
    await editor.connect("critic", "writer")
    await expect(page.get_by_test_id("edge-inspector")).to_contain_text("critic → writer")
    await editor.commit("edge-when", "not approved")
    await page.get_by_test_id("loop-name").fill("refine")
    await page.get_by_test_id("loop-max").fill("3")
    await page.get_by_test_id("loop-max").press("Enter")
    await expect(editor.edge("critic", "writer")).to_have_text("when not approved as refine(3)")
    await editor.connect("critic", "fail")
    await expect(editor.edge("critic", "fail")).to_have_count(1)

    # A schema the judge names but the file lacks: the validator's C002 shows in the list and on the
    # node, and goes away when the schema is declared in the inspector's schema tab.
    await editor.node("critic").click()
    await editor.commit("field-output", "verdict")
    missing = page.locator('[data-testid="diagnostic"][data-code="C002"]')
    await expect(missing).to_contain_text("'verdict' is not declared")
    await expect(page.get_by_test_id("marker-critic")).to_be_visible()
    await page.get_by_test_id("tab-schemas").click()
    await page.get_by_test_id("new-schema-name").fill("verdict")
    await page.get_by_test_id("new-schema-field").fill("approved")
    await page.get_by_test_id("new-schema-type").fill("bool")
    await page.get_by_test_id("new-schema-add").click()
    await expect(page.get_by_test_id("schema-verdict")).to_be_visible()
    await expect(missing).to_have_count(0)
    await expect(page.get_by_test_id("marker-critic")).to_have_count(0)
    await page.screenshot(path=str(screenshot_path(tmp_path, "editor.png")))

    # Undo brings the missing schema back, redo fixes it again (keyboard shortcuts, on the canvas).
    await page.get_by_test_id("graph-canvas").click(position={"x": 20, "y": 20})
    await page.keyboard.press("Control+z")
    await expect(missing).to_have_count(1)
    await expect(page.get_by_test_id("source")).not_to_contain_text("schema verdict:")
    await page.keyboard.press("Control+Shift+z")
    await expect(missing).to_have_count(0)
    await expect(page.get_by_test_id("source")).to_contain_text("schema verdict:")

    await expect(page.get_by_test_id("dirty-marker")).to_be_visible()
    await page.keyboard.press("Control+s")
    await expect(page.get_by_test_id("dirty-marker")).to_have_count(0)
    saved = (work / "review.iter").read_text()
    assert saved == await page.get_by_test_id("source").input_value()
    for line in ("writer -> critic", "critic -> done when approved",
                 "critic -> writer when not approved as refine(3)", "critic -> fail"):
        assert line in saved, saved

    checked = run_cli("validate", str(work / "review.iter"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 errors" in checked.stdout + checked.stderr
    formatted = run_cli("fmt", "--check", str(work / "review.iter"))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    assert (work / "review.iter").read_text() == saved


async def test_an_external_edit_of_the_open_file_shows_on_the_canvas_within_two_seconds(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    work = tmp_path / "flows"
    work.mkdir()
    flow = work / "flow.iter"
    flow.write_text('agent writer:\n  model: "scripted"\n\nworkflow flow:\n  entry: writer\n  writer -> done\n')
    editor: EditorPage = await open_editor(work)
    await editor.page.get_by_test_id("file-flow.iter").click()
    await expect(editor.node("writer")).to_be_visible()
    await expect(editor.node("reviewer")).to_have_count(0)

    flow.write_text('agent writer:\n  model: "scripted"\n\njudge reviewer:\n  model: "scripted"\n\n'
                    "workflow flow:\n  entry: writer\n  writer -> reviewer\n  reviewer -> done\n")
    await expect(editor.node("reviewer")).to_have_attribute("data-kind", "judge", timeout=2_000)
    await expect(editor.edge("writer", "reviewer")).to_have_count(1, timeout=2_000)
    await expect(editor.page.get_by_test_id("dirty-marker")).to_have_count(0)


async def test_every_shipped_example_shows_one_canvas_node_per_ir_node(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work)
    examples = sorted(p.name for p in work.glob("*.iter"))
    assert len(examples) >= 10, examples
    editor: EditorPage = await open_editor(work)
    for name in examples:
        expected = ir_node_ids(work / name)
        await editor.page.get_by_test_id(f"file-{name}").click()
        await expect(editor.page.get_by_test_id("current-file")).to_have_text(name)
        await expect(editor.page.locator(CANVAS_NODES)).to_have_count(len(expected))
        assert await editor.canvas_node_ids() == expected, name
        if name == "copy_variants_round_robin.iter":
            await asyncio.sleep(0)  # the canvas has fitted itself by the time the nodes are counted
            await editor.page.screenshot(path=str(screenshot_path(tmp_path, "editor-example.png")))


FLOW = 'agent writer:\n  model: "scripted"\n\nworkflow flow:\n  entry: writer\n  writer -> done\n'


async def open_flow(open_editor: Callable[..., Any], tmp_path: Path, source: str = FLOW) -> tuple[EditorPage, Path]:
    """An editor on a directory holding flow.iter (with ``source``), the file open."""
    from playwright.async_api import expect

    work = tmp_path / "flows"
    work.mkdir()
    flow = work / "flow.iter"
    flow.write_text(source)
    editor: EditorPage = await open_editor(work)
    await editor.page.get_by_test_id("file-flow.iter").click()
    await expect(editor.page.get_by_test_id("current-file")).to_have_text("flow.iter")
    await expect(editor.node("writer")).to_be_visible()
    return editor, flow


async def test_typing_in_the_source_view_redraws_the_canvas(open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    editor, flow = await open_flow(open_editor, tmp_path)
    typed = FLOW.replace("  writer -> done\n", "  writer -> reviewer\n  reviewer -> done\n") + \
        '\njudge reviewer:\n  model: "scripted"\n'
    await editor.page.get_by_test_id("source").fill(typed)
    await expect(editor.node("reviewer")).to_have_attribute("data-kind", "judge")
    await expect(editor.edge("writer", "reviewer")).to_have_count(1)
    await expect(editor.edge("writer", "done")).to_have_count(0)
    await expect(editor.page.get_by_test_id("dirty-marker")).to_be_visible()
    assert flow.read_text() == FLOW  # typing never writes the file; saving does


async def test_a_source_that_does_not_parse_keeps_the_last_canvas_and_refuses_canvas_edits(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    editor, _ = await open_flow(open_editor, tmp_path)
    await editor.page.get_by_test_id("source").fill(FLOW + "\njudge broken:\n")
    await expect(editor.page.get_by_test_id("stale")).to_be_visible()
    await expect(editor.page.locator('[data-testid="diagnostic"][data-code^="E"]').first).to_be_visible()
    assert await editor.canvas_node_ids() == ["done", "fail", "writer"]
    await editor.drop("agent", 300, 200)
    await expect(editor.node("agent_1")).to_have_count(0)


async def test_clicking_a_diagnostic_selects_its_node_and_puts_the_source_caret_on_its_line(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    source = FLOW.replace('  model: "scripted"\n', '  model: "scripted"\n  output: draft\n')
    editor, _ = await open_flow(open_editor, tmp_path, source)
    page = editor.page
    problem = page.locator('[data-testid="diagnostic"][data-code="C002"]')
    await expect(problem).to_contain_text("'draft' is not declared")
    await expect(page.get_by_test_id("marker-writer")).to_be_visible()
    await problem.click()
    await expect(editor.node("writer")).to_have_attribute("data-selected", "true")
    await expect(page.locator('[data-testid="node-inspector"][data-node="writer"]')).to_be_visible()
    caret = await page.get_by_test_id("source").evaluate("el => el.selectionStart")
    assert source[:caret].count("\n") == 2, caret  # line 3: `  output: draft`


async def test_an_external_edit_under_unsaved_changes_asks_and_a_stale_save_can_overwrite(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    editor, flow = await open_flow(open_editor, tmp_path)
    page = editor.page
    mine = "## mine\n" + FLOW
    await page.get_by_test_id("source").fill(mine)
    await expect(page.get_by_test_id("dirty-marker")).to_be_visible()

    flow.write_text("## theirs\n" + FLOW)
    banner = page.get_by_test_id("conflict-banner")
    await expect(banner).to_contain_text("changed on disk, and you have unsaved edits", timeout=2_000)
    await expect(page.get_by_test_id("source")).to_have_value(mine)
    await page.get_by_test_id("keep-mine").click()

    editor.expect_console_error("status of 409 (Conflict)")
    await page.get_by_test_id("save").click()
    await expect(banner).to_contain_text("your save was refused")
    assert flow.read_text() == "## theirs\n" + FLOW
    await page.get_by_test_id("overwrite").click()
    await expect(banner).to_have_count(0)
    await expect(page.get_by_test_id("dirty-marker")).to_have_count(0)
    assert flow.read_text() == mine


async def test_the_run_button_saves_the_file_starts_a_run_and_opens_its_console(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    editor, flow = await open_flow(open_editor, tmp_path)
    page = editor.page
    edited = "## ready to run\n" + FLOW
    await page.get_by_test_id("source").fill(edited)
    await expect(page.get_by_test_id("dirty-marker")).to_be_visible()
    async with page.context.expect_page() as opened:
        await page.get_by_test_id("run").click()
    console = await opened.value
    await console.wait_for_load_state()
    assert "/runs/" in console.url and console.url.rsplit("/runs/", 1)[1], console.url
    await expect(page.get_by_test_id("notice")).to_contain_text("started run")
    await expect(page.get_by_test_id("dirty-marker")).to_have_count(0)
    assert flow.read_text() == edited


async def test_the_delete_key_removes_the_selected_node_with_its_edges(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    source = ('agent writer:\n  model: "scripted"\n\njudge reviewer:\n  model: "scripted"\n\n'
              "workflow flow:\n  entry: writer\n  writer -> reviewer\n  reviewer -> done\n")
    editor, flow = await open_flow(open_editor, tmp_path, source)
    await editor.node("reviewer").click()
    await expect(editor.node("reviewer")).to_have_attribute("data-selected", "true")
    await editor.page.keyboard.press("Delete")
    await expect(editor.node("reviewer")).to_have_count(0)
    await expect(editor.page.locator('[data-testid^="edge-"][data-from]')).to_have_count(0)
    text = await editor.page.get_by_test_id("source").input_value()
    assert "reviewer" not in text, text
    assert flow.read_text() == source  # not saved yet


async def test_typing_double_braces_in_a_prompt_completes_a_reference_of_the_file(
        open_editor: Callable[..., Any], tmp_path: Path) -> None:
    from playwright.async_api import expect

    source = ('vars:\n  goal: string\n\nprompt brief:\n  Work towards the goal.\n\n'
              'agent writer:\n  model: "scripted"\n  user: brief\n\nworkflow flow:\n  entry: writer\n  writer -> done\n')
    editor, _ = await open_flow(open_editor, tmp_path, source)
    page = editor.page
    await page.get_by_test_id("tab-prompts").click()
    text = page.get_by_test_id("prompt-brief-text")
    await text.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type(" Goal: {{vars.g")
    await expect(page.get_by_test_id("completion")).to_contain_text("vars.goal")
    await page.keyboard.press("Enter")
    await expect(text).to_have_value("Work towards the goal. Goal: {{vars.goal}}")
    await page.get_by_test_id("tab-prompts").click()  # leaving the box applies it
    await expect(page.get_by_test_id("source")).to_contain_text("Goal: {{vars.goal}}")
