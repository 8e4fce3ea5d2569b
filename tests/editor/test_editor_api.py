"""The editor's HTTP API (api/editor.py) against real files in tmp_path, in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runs import poll

from api.editor import EditorSettings, create_editor_app, editor_api_settings
from api.editor_document import source_version
from api.settings import ApiSettings
from runtime.run_service import RunService
from runtime.settings import Settings

HEADERS = {"X-Iterloop-Editor": "1"}
BASE = "http://127.0.0.1:4891"

FLOW = """\
## drafts, then reviews
schema draft:
  text: string

schema verdict:
  approved: bool

agent writer:
  model: "scripted"
  output: draft

judge critic:
  model: "scripted"
  output: verdict

workflow review:
  entry: writer

  writer -> critic
  critic -> done when approved
  critic -> writer when not approved as rework(2)
"""


def editor_settings(root: Path, bundle: Path, runtime: Settings | None = None) -> EditorSettings:
    base = ApiSettings(runtime=runtime or Settings(home=root / ".iterloop"))
    return EditorSettings(root=root, api=editor_api_settings(base, host="127.0.0.1", port=4891, root=root),
                          bundle_dir=bundle)


def make_bundle(path: Path) -> Path:
    (path / "assets").mkdir(parents=True)
    (path / "editor.html").write_text('<!doctype html><script type="module" src="./assets/editor-x.js"></script>')
    (path / "assets" / "editor-x.js").write_text("console.log('editor')")
    return path


@pytest_asyncio.fixture
async def editor(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path / "flows"
    root.mkdir()
    (root / "review.iter").write_text(FLOW, encoding="utf-8")
    app = create_editor_app(editor_settings(root, make_bundle(tmp_path / "bundle")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        client.root = root  # type: ignore[attr-defined]
        yield client


def root_of(client: httpx.AsyncClient) -> Path:
    return client.root  # type: ignore[attr-defined, no-any-return]


# -- files --------------------------------------------------------------------------------------


async def test_files_lists_workflow_files_only(editor: httpx.AsyncClient) -> None:
    (root_of(editor) / "notes.txt").write_text("not a workflow")
    (root_of(editor) / "sub").mkdir()
    (root_of(editor) / "sub" / "child.bot").write_text(FLOW)
    doc = (await editor.get("/editor/api/files")).json()
    assert [f["path"] for f in doc["files"]] == ["review.iter", "sub/child.bot"]
    assert doc["files"][0]["size"] == len(FLOW.encode())


async def test_file_reads_source_and_its_sha256_version(editor: httpx.AsyncClient) -> None:
    doc = (await editor.get("/editor/api/file", params={"path": "review.iter"})).json()
    assert doc == {"path": "review.iter", "source": FLOW, "version": source_version(FLOW)}


async def test_put_saves_and_returns_the_new_version(editor: httpx.AsyncClient) -> None:
    new = FLOW.replace("rework(2)", "rework(3)")
    response = await editor.put("/editor/api/file", headers=HEADERS,
                                json={"path": "review.iter", "source": new, "base_version": source_version(FLOW)})
    assert response.status_code == 200, response.text
    assert response.json() == {"path": "review.iter", "version": source_version(new)}
    assert (root_of(editor) / "review.iter").read_text() == new
    assert not [p.name for p in root_of(editor).iterdir() if p.name.endswith(".tmp")]


async def test_put_with_a_stale_base_version_is_409_with_the_disk_version(editor: httpx.AsyncClient) -> None:
    changed = FLOW + "## changed outside\n"
    (root_of(editor) / "review.iter").write_text(changed)
    response = await editor.put("/editor/api/file", headers=HEADERS,
                                json={"path": "review.iter", "source": FLOW, "base_version": source_version(FLOW)})
    assert response.status_code == 409
    assert response.json()["error"]["details"]["version"] == source_version(changed)
    assert (root_of(editor) / "review.iter").read_text() == changed


async def test_new_file_creates_it_and_refuses_an_existing_one(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/file/new", headers=HEADERS, json={"path": "fresh.iter"})
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "" and (root_of(editor) / "fresh.iter").read_text() == ""
    again = await editor.post("/editor/api/file/new", headers=HEADERS, json={"path": "review.iter"})
    assert again.status_code == 409
    assert (root_of(editor) / "review.iter").read_text() == FLOW


async def test_new_file_with_a_workflow_name_starts_a_parsable_workflow(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/file/new", headers=HEADERS, json={"path": "flow.iter",
                                                                                "workflow": "flow"})
    source = response.json()["source"]
    assert source.startswith("workflow flow:")
    analysis = (await editor.post("/editor/api/analyze", headers=HEADERS, json={"source": source})).json()
    assert analysis["parse_ok"] is True


# -- confinement and the guard ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../x.iter", "sub/../../x.iter", "/etc/passwd.iter", "review.txt", ""])
async def test_paths_outside_the_directory_or_not_workflows_are_403(editor: httpx.AsyncClient, path: str) -> None:
    assert (await editor.get("/editor/api/file", params={"path": path})).status_code == 403
    put = await editor.put("/editor/api/file", headers=HEADERS, json={"path": path, "source": "x"})
    assert put.status_code == 403


async def test_a_symlink_leading_out_of_the_directory_is_403(editor: httpx.AsyncClient, tmp_path: Path) -> None:
    outside = tmp_path / "secret.iter"
    outside.write_text(FLOW)
    (root_of(editor) / "link.iter").symlink_to(outside)
    assert (await editor.get("/editor/api/file", params={"path": "link.iter"})).status_code == 403
    put = await editor.put("/editor/api/file", headers=HEADERS, json={"path": "link.iter", "source": "x"})
    assert put.status_code == 403
    assert outside.read_text() == FLOW


async def test_a_foreign_host_header_is_403(editor: httpx.AsyncClient) -> None:
    response = await editor.get("/editor/api/files", headers={"Host": "attacker.example:4891"})
    assert response.status_code == 403
    assert "Host" in response.json()["error"]["message"]


async def test_a_state_changing_request_without_the_editor_header_is_403(editor: httpx.AsyncClient) -> None:
    response = await editor.put("/editor/api/file", json={"path": "review.iter", "source": "x"})
    assert response.status_code == 403
    assert "X-Iterloop-Editor" in response.json()["error"]["message"]
    assert (root_of(editor) / "review.iter").read_text() == FLOW


async def test_no_cors_preflight_is_approved(editor: httpx.AsyncClient) -> None:
    response = await editor.options("/editor/api/file", headers={
        "Origin": "http://attacker.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-iterloop-editor"})
    assert "access-control-allow-origin" not in response.headers


# -- language -----------------------------------------------------------------------------------


async def test_analyze_gives_one_node_per_ir_node_and_edges_as_written(editor: httpx.AsyncClient) -> None:
    doc = (await editor.post("/editor/api/analyze", headers=HEADERS,
                             json={"source": FLOW, "path": "review.iter"})).json()
    assert doc["parse_ok"] is True and doc["workflow"]["entry"] == "writer"
    assert {n["id"]: n["kind"] for n in doc["nodes"]} == {"writer": "agent", "critic": "judge", "done": "done",
                                                          "fail": "fail"} or \
        {n["id"] for n in doc["nodes"]} >= {"writer", "critic", "done"}
    assert next(n for n in doc["nodes"] if n["id"] == "writer")["props"] == {"model": "scripted", "output": "draft"}
    assert [(e["id"], e["from"], e["to"], e["when"]) for e in doc["edges"]] == [
        ("e0", "writer", "critic", None), ("e1", "critic", "done", "approved"),
        ("e2", "critic", "writer", "not approved")]
    assert doc["edges"][2]["loop"] == {"name": "rework", "max": 2}
    assert "outputs.writer.text" in doc["refs"] and "loop.rework.iteration" in doc["refs"]
    assert "run.id" in doc["refs"]
    assert doc["version"] == source_version(FLOW)


async def test_analyze_attributes_a_diagnostic_to_its_node(editor: httpx.AsyncClient) -> None:
    source = FLOW.replace("output: draft", "output: missing_schema")
    doc = (await editor.post("/editor/api/analyze", headers=HEADERS, json={"source": source})).json()
    c002 = [d for d in doc["diagnostics"] if d["code"] == "C002"]
    assert c002 and c002[0]["node"] == "writer" and c002[0]["line"] == 10


async def test_analyze_attributes_a_diagnostic_to_its_edge(editor: httpx.AsyncClient) -> None:
    source = FLOW.replace("critic -> done when approved", "critic -> nowhere when approved")
    doc = (await editor.post("/editor/api/analyze", headers=HEADERS, json={"source": source})).json()
    c001 = [d for d in doc["diagnostics"] if d["code"] == "C001"]
    assert c001 and c001[0]["edge"] == "e1" and c001[0]["node"] is None


async def test_analyze_of_a_broken_source_says_parse_ok_false_with_diagnostics(editor: httpx.AsyncClient) -> None:
    doc = (await editor.post("/editor/api/analyze", headers=HEADERS,
                             json={"source": FLOW.replace('"scripted"\n  output: draft', '"scripted\n')})).json()
    assert doc["parse_ok"] is False
    assert any(d["code"].startswith("E") for d in doc["diagnostics"])


async def test_edit_applies_ops_and_answers_the_new_document(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/edit", headers=HEADERS, json={"source": FLOW, "ops": [
        {"op": "add_node", "kind": "human", "name": "approver", "props": {"output": "verdict"}},
        {"op": "update_edge", "index": 1, "to": "approver"},
        {"op": "add_edge", "from": "approver", "to": "done"}]})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert "## drafts, then reviews" in doc["source"]
    assert [(e["from"], e["to"]) for e in doc["edges"]][1:] == [("critic", "approver"), ("critic", "writer"),
                                                                ("approver", "done")]


async def test_edit_that_cannot_apply_is_422_naming_the_op(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/edit", headers=HEADERS, json={"source": FLOW, "ops": [
        {"op": "rename_node", "name": "ghost", "new_name": "x"}]})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"index": 0, "op": "rename_node"}
    assert "ghost" in response.json()["error"]["message"]


async def test_edit_of_a_source_with_parse_errors_is_refused(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/edit", headers=HEADERS, json={"source": "agent a:\n  model: \"x\n",
                                                                            "ops": []})
    assert response.status_code == 422
    assert "fix the source first" in response.json()["error"]["message"]
    assert response.json()["error"]["details"]


async def test_format_prints_the_canonical_text_and_refuses_parse_errors(editor: httpx.AsyncClient) -> None:
    messy = FLOW.replace("  entry: writer", "  entry:   writer")
    assert (await editor.post("/editor/api/format", headers=HEADERS, json={"source": messy})).json() == {
        "source": FLOW}
    bad = await editor.post("/editor/api/format", headers=HEADERS, json={"source": "agent a:\n  model: \"x\n"})
    assert bad.status_code == 422


# -- the page -----------------------------------------------------------------------------------


async def test_editor_page_serves_the_bundle_and_its_assets(editor: httpx.AsyncClient) -> None:
    page = await editor.get("/editor/")
    assert page.status_code == 200 and "./assets/editor-x.js" in page.text
    assert "iterloop_session" in page.headers.get("set-cookie", "")
    asset = await editor.get("/editor/assets/editor-x.js")
    assert asset.status_code == 200 and "console.log" in asset.text


# -- runs ---------------------------------------------------------------------------------------


async def test_run_starts_an_offline_run_of_the_file_and_its_console_page_answers(
        offline_worker: None, temporal_env: Any, task_queue: str, tmp_path: Path) -> None:
    from temporalio.client import WorkflowExecutionStatus

    from runtime.worker_fingerprint import offline_task_queue

    root = tmp_path / "flows"
    root.mkdir()
    (root / "review.iter").write_text(FLOW, encoding="utf-8")
    temporal = temporal_env.client
    runtime = Settings(address=temporal.service_client.config.target_host, address_configured=True,
                       task_queue=task_queue, home=tmp_path / ".iterloop")
    app = create_editor_app(editor_settings(root, make_bundle(tmp_path / "bundle"), runtime))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        assert (await client.get("/editor/")).status_code == 200  # the page gives the dashboard session
        response = await client.post("/editor/api/run", headers=HEADERS, json={"path": "review.iter",
                                                                               "mode": "offline"})
        assert response.status_code == 200, response.text
        started = response.json()
        assert started["console_url"] == f"/runs/{started['run_id']}"
        handle = temporal.get_workflow_handle(started["run_id"])
        desc = await handle.describe()
        assert desc.task_queue == offline_task_queue(task_queue)  # the scripted model's queue, never a real one

        async def closed() -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await poll(closed, f"run {started['run_id']} to end", timeout=60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        page = await client.get(started["console_url"], headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:300]
        assert started["run_id"] in page.text


async def test_run_of_a_file_that_does_not_compile_is_422_with_its_diagnostics(editor: httpx.AsyncClient) -> None:
    (root_of(editor) / "broken.iter").write_text(FLOW.replace("output: draft", "output: nowhere"))
    response = await editor.post("/editor/api/run", headers=HEADERS, json={"path": "broken.iter", "mode": "offline"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "compile_errors"
    assert any(d["code"] == "C002" for d in response.json()["error"]["details"])


async def test_a_real_run_never_takes_the_scripted_models_queue(temporal_env: Any, task_queue: str,
                                                                 tmp_path: Path) -> None:
    from api.editor_server import editor_settings as settings_from_env

    root = tmp_path / "flows"
    root.mkdir()
    (root / "review.iter").write_text(FLOW, encoding="utf-8")
    (root / "review.script.yaml").write_text("writer: {text: scripted}\n")  # an offline run would use it
    temporal = temporal_env.client
    env = {"TEMPORAL_ADDRESS": temporal.service_client.config.target_host, "ITERLOOP_TASK_QUEUE": task_queue,
           "ITERLOOP_HOME": str(tmp_path / ".iterloop"), "ITERLOOP_OFFLINE": "1",
           "ITERLOOP_EDITOR_BUNDLE_DIR": str(make_bundle(tmp_path / "bundle"))}
    settings = settings_from_env(env, directory=root, host="127.0.0.1", port=4891, allow_remote=False)
    # no worker polls the queue, and this service starts none: the run only has to be started
    app = create_editor_app(settings, runs=RunService(settings.api.runtime))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        response = await client.post("/editor/api/run", headers=HEADERS, json={"path": "review.iter",
                                                                               "mode": "real"})
        assert response.status_code == 200, response.text
    from runtime.temporal_runs import read_run_input

    handle = temporal.get_workflow_handle(response.json()["run_id"])
    try:
        run_input = await read_run_input(temporal, handle)
        assert run_input is not None and run_input.options.script is None  # ITERLOOP_OFFLINE and the script beside: ignored
        assert (await handle.describe()).task_queue == task_queue
    finally:
        await handle.terminate("test finished")


async def test_errors_carry_the_message_as_detail_too(editor: httpx.AsyncClient) -> None:
    response = await editor.post("/editor/api/edit", headers=HEADERS, json={"source": FLOW})
    assert response.status_code == 422
    assert "ops" in response.json()["detail"] and response.json()["error"]["code"] == "invalid_request"
