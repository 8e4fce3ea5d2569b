"""`iterloop editor` as a real process: it serves the bundle and the API, pushes external changes
over its WebSocket, stops cleanly on SIGINT/SIGTERM, and refuses what it must."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets
from cli_harness import REPO

from api.editor_document import source_version

FLOW = "agent a:\n  model: \"scripted\"\n\nworkflow w:\n  entry: a\n\n  a -> done\n"


def make_bundle(path: Path) -> Path:
    (path / "assets").mkdir(parents=True)
    (path / "editor.html").write_text('<!doctype html><title>editor</title><script src="./assets/e.js"></script>')
    (path / "assets" / "e.js").write_text("window.editor = 1")
    return path


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    root = tmp_path / "flows"
    root.mkdir()
    (root / "w.iter").write_text(FLOW, encoding="utf-8")
    return root


def test_editor_serves_the_bundle_and_the_files_api(editor_server: Callable[..., str], flows: Path,
                                                     tmp_path: Path) -> None:
    url = editor_server(flows, make_bundle(tmp_path / "bundle"))
    page = httpx.get(f"{url}/editor/")
    assert page.status_code == 200 and "./assets/e.js" in page.text
    assert httpx.get(f"{url}/editor/assets/e.js").text == "window.editor = 1"
    assert [f["path"] for f in httpx.get(f"{url}/editor/api/files").json()["files"]] == ["w.iter"]


async def test_websocket_pushes_an_external_change_within_2_seconds(editor_server: Callable[..., str],
                                                                    flows: Path, tmp_path: Path) -> None:
    url = editor_server(flows, make_bundle(tmp_path / "bundle"))
    ws_url = url.replace("http://", "ws://") + "/editor/ws"
    async with websockets.connect(ws_url, origin=url) as ws:  # type: ignore[arg-type]
        changed = FLOW.replace("a -> done", "a -> fail")
        (flows / "w.iter").write_text(changed, encoding="utf-8")
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=2))
    assert message == {"type": "file_changed", "path": "w.iter", "version": source_version(changed),
                       "source": changed}


async def test_websocket_does_not_echo_the_editors_own_save(editor_server: Callable[..., str],
                                                            flows: Path, tmp_path: Path) -> None:
    url = editor_server(flows, make_bundle(tmp_path / "bundle"))
    async with websockets.connect(url.replace("http://", "ws://") + "/editor/ws", origin=url) as ws:  # type: ignore[arg-type]
        saved = FLOW.replace("a -> done", "a -> fail")
        async with httpx.AsyncClient() as http:
            response = await http.put(f"{url}/editor/api/file", headers={"X-Iterloop-Editor": "1"},
                                      json={"path": "w.iter", "source": saved})
            assert response.status_code == 200
        (flows / "new.iter").write_text(FLOW, encoding="utf-8")  # something that is news, to know it looked
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=2))
    assert message == {"type": "files_changed"}


async def test_websocket_from_another_origin_is_refused(editor_server: Callable[..., str], flows: Path,
                                                        tmp_path: Path) -> None:
    url = editor_server(flows, make_bundle(tmp_path / "bundle"))
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(url.replace("http://", "ws://") + "/editor/ws",
                                      origin="http://attacker.example") as ws:  # type: ignore[arg-type]
            await asyncio.wait_for(ws.recv(), timeout=2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_editor_stops_cleanly_on_a_signal(editor_process: Callable[..., tuple[subprocess.Popen[str], str]],
                                          flows: Path, tmp_path: Path, sig: signal.Signals) -> None:
    proc, url = editor_process(flows, make_bundle(tmp_path / "bundle"))
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/editor/api/files", timeout=2)


def run_editor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "editor", "--no-browser", "--port", "0", *args],
                          check=False, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=60)


def test_a_non_loopback_host_is_refused_without_allow_remote(editor_env: dict[str, str], flows: Path) -> None:
    result = run_editor(editor_env, "--dir", str(flows), "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr and "0.0.0.0" in result.stderr


def test_a_missing_bundle_says_to_run_make_web(editor_env: dict[str, str], flows: Path, tmp_path: Path) -> None:
    env = {**editor_env, "ITERLOOP_EDITOR_BUNDLE_DIR": str(tmp_path / "no-bundle")}
    result = run_editor(env, "--dir", str(flows))
    assert result.returncode == 2
    assert "make web" in result.stderr
