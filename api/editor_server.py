"""`iterloop editor`: serve the visual editor on this machine and open it in the browser.

Kept apart from `api.editor` (the app) because this is the process's edge: it reads the
environment once, binds the socket (so `--port 0` can print the port it got), prints the URL and
runs uvicorn until SIGINT/SIGTERM. The CLI command in `cli.py` only parses options and calls
`serve_editor`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import webbrowser
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from api.editor import BUNDLE_DIR, BundleMissing, EditorSettings, create_editor_app, editor_api_settings
from api.settings import ApiSettings
from runtime.server_address import is_loopback_host

DEFAULT_PORT = 4891
DEFAULT_HOST = "127.0.0.1"
#: Serve another build of the front end (a development build of web/); default: api/static/web.
BUNDLE_VARIABLE = "ITERLOOP_EDITOR_BUNDLE_DIR"


class EditorStartError(ValueError):
    """The editor cannot start as asked; the message says what to change."""


def editor_settings(env: Mapping[str, str], *, directory: Path, host: str, port: int,
                    allow_remote: bool) -> EditorSettings:
    """Check the options and build the settings (`EditorStartError` for what cannot work)."""
    if not is_loopback_host(host) and not allow_remote:
        raise EditorStartError(f"--host {host} is not a loopback address: the editor writes files and runs workflows "
                               "(whose tool nodes run shell commands) for whoever reaches it. Serve it on "
                               "127.0.0.1, or pass --allow-remote if everyone who can reach this address may run "
                               "commands on this machine")
    if not directory.is_dir():
        raise EditorStartError(f"--dir {directory}: no such directory")
    base = ApiSettings.from_env(env)
    base = replace(base, runtime=base.runtime.with_overrides(offline=False))  # offline runs are asked for per run
    bundle = Path(env[BUNDLE_VARIABLE]) if env.get(BUNDLE_VARIABLE) else BUNDLE_DIR
    settings = EditorSettings(root=directory.resolve(), api=editor_api_settings(base, host=host, port=port,
                                                                                 root=directory.resolve()),
                              host=host, port=port, allow_remote=allow_remote, bundle_dir=bundle,
                              environment=dict(env))
    try:
        settings.check_bundle()
    except BundleMissing as exc:
        raise EditorStartError(str(exc)) from None
    return settings


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise EditorStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                               "(0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def editor_url(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    return f"http://{shown}:{port}/editor/"


def _server_class() -> type:
    import uvicorn

    class StoppedOnPurpose(uvicorn.Server):
        """uvicorn re-raises the SIGINT/SIGTERM it shut down on, so the process would die of it after a clean
        shutdown; for the editor a signal is how a user stops it, so the command ends with exit code 0."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return StoppedOnPurpose


def serve_editor(settings: EditorSettings, *, open_browser: bool, as_json: bool) -> None:
    """Serve until interrupted (uvicorn stops cleanly on SIGINT and SIGTERM)."""
    import uvicorn

    _StoppedOnPurpose = _server_class()
    sock = _bind(settings.host, settings.port)
    port = int(sock.getsockname()[1])
    url = editor_url(settings.host, port)
    if as_json:
        print(json.dumps({"url": url, "dir": str(settings.root), "host": settings.host, "port": port}), flush=True)
    else:
        print(f"iterloop editor: {url}  (files in {settings.root}; Ctrl-C stops it)", flush=True)
    if settings.allow_remote and not is_loopback_host(settings.host):
        print(f"iterloop: WARNING: the editor listens on {settings.host} (--allow-remote): anyone who reaches it can "
              "edit workflow files and run commands on this machine", file=sys.stderr, flush=True)
    app = create_editor_app(replace(settings, port=port))
    server = _StoppedOnPurpose(uvicorn.Config(app, log_level="warning", server_header=False, lifespan="on"))
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
