"""Fixtures of the editor's tests: `editor_server` runs the real `iterloop editor` command.

`editor_server(directory, bundle=None)` starts `iterloop editor --no-browser --port 0 --dir DIR
--json` in a subprocess (the session's Temporal dev server in its environment), waits until it
answers, and gives its base URL (`http://127.0.0.1:PORT`; the editor is at `URL/editor/`). The
process is stopped with SIGTERM when the test ends, and so are the workers it started in the background
for runs. ``bundle`` serves another front-end build
(ITERLOOP_EDITOR_BUNDLE_DIR); by default the one `make web` built.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_harness import REPO, cli_env


def start_editor(env: dict[str, str], directory: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`iterloop editor` on a free port; its process and base URL once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "editor", "--no-browser", "--port", "0", "--dir",
                             str(directory), "--json", *extra], cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise AssertionError(f"iterloop editor did not start: {proc.stderr.read() if proc.stderr else ''}")
    url = json.loads(line)["url"].removesuffix("/editor/")
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/editor/api/files", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_editor(proc)
            raise AssertionError("iterloop editor did not answer within 30 s")
        time.sleep(0.05)


def stop_editor(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def stop_background_workers(env: dict[str, str]) -> None:
    """Stop the workers the editor started in the background for runs (`iterloop worker stop` with its
    ITERLOOP_HOME): they outlive the editor on purpose, but not the test."""
    if (Path(env["ITERLOOP_HOME"]) / "worker.json").exists():
        subprocess.run([sys.executable, "-m", "cli", "worker", "stop"], cwd=str(REPO), env=env, check=False,
                       capture_output=True, timeout=60)


@pytest.fixture
def editor_env(temporal_env: Any, task_queue: str, tmp_path: Path) -> dict[str, str]:
    """The environment `iterloop editor` runs with: the session's dev server and this test's task queue."""
    address = temporal_env.client.service_client.config.target_host
    return cli_env(address, task_queue, tmp_path / ".iterloop")


@pytest.fixture
def editor_server(editor_env: dict[str, str]) -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(directory: Path, bundle: Path | None = None) -> str:
        env = dict(editor_env)
        if bundle is not None:
            env["ITERLOOP_EDITOR_BUNDLE_DIR"] = str(bundle)
        proc, url = start_editor(env, directory)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        stop_editor(proc)
    stop_background_workers(editor_env)


@pytest.fixture
def editor_process(editor_env: dict[str, str]) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Like `editor_server`, giving the process too (to signal it); stopped at the end if still running."""
    procs: list[subprocess.Popen[str]] = []

    def start(directory: Path, bundle: Path) -> tuple[subprocess.Popen[str], str]:
        proc, url = start_editor({**editor_env, "ITERLOOP_EDITOR_BUNDLE_DIR": str(bundle)}, directory)
        procs.append(proc)
        return proc, url

    yield start
    for proc in procs:
        stop_editor(proc)
    stop_background_workers(editor_env)
