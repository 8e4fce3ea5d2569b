"""Watching the editor's directory for changes made outside the editor, for `WS /editor/ws`.

Polling, not OS notifications: `watchfiles` is not installed with this project's uvicorn, and
a scan of a directory of workflow files every 250 ms is cheap and behaves the same on every
system (network file systems, containers). The watcher scans only while a browser listens.

A change the editor made itself (a `PUT /editor/api/file`) is not pushed back: `EditorFiles`
tells the watcher the version it wrote (`note_written`), and a file whose text has that version
is not news.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dsl.source_files import WORKFLOW_SUFFIXES

log = logging.getLogger("iterloop.editor")

POLL_SECONDS = 0.25
#: Directories never scanned: version control, caches, dependencies, iterloop's own state.
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", ".git", ".iterloop", ".venv", "venv"})
#: More files than this under --dir are not listed (a mistaken --dir such as a home directory).
MAX_FILES = 5000


Stamp = tuple[int, int, int, int]


def scan(root: Path) -> dict[str, Stamp]:
    """Every workflow file under ``root`` (relative POSIX path → (mtime_ns, size, ctime_ns, inode)); links
    not followed. The inode tells an atomic save (a new file renamed over the old one) even within one
    tick of the file system's clock."""
    found: dict[str, Stamp] = {}
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(WORKFLOW_SUFFIXES) or name.startswith("."):
                continue
            path = Path(directory) / name
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file():
                continue
            found[path.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino)
            if len(found) >= MAX_FILES:
                return found
    return found


class DirectoryWatcher:
    """Pushes `file_changed` / `files_changed` messages to every subscriber's queue."""

    def __init__(self, root: Path, read_version: Any) -> None:
        #: ``read_version(rel) -> (source, version) | None``: the file's text and version now.
        self.root = root
        self.read_version = read_version
        self.written: dict[str, str] = {}  # path → the version this editor wrote last
        self.known: dict[str, str] = {}  # path → the version last pushed or written
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.task: asyncio.Task[None] | None = None
        self.snapshot: dict[str, Stamp] = {}

    def note_written(self, path: str, version: str) -> None:
        self.written[path] = version
        self.known[path] = version

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        if self.task is None or self.task.done():
            self.snapshot = await asyncio.to_thread(scan, self.root)
            self.task = asyncio.create_task(self._run(), name="editor-watch")
        self.subscribers.add(queue)
        try:
            yield queue
        finally:
            self.subscribers.discard(queue)
            if not self.subscribers and self.task is not None:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.task
                self.task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.poll_once()
            except Exception:  # a scan that fails (a directory removed meanwhile) is retried next tick
                log.exception("scanning %s for changes failed", self.root)

    async def poll_once(self) -> None:
        now = await asyncio.to_thread(scan, self.root)
        before, self.snapshot = self.snapshot, now
        if set(now) != set(before):
            self._push({"type": "files_changed"})
        for path, stamp in now.items():
            if path not in before or before[path] == stamp:
                continue
            current = await asyncio.to_thread(self.read_version, path)
            if current is None:
                continue
            source, version = current
            if version == self.written.get(path) or version == self.known.get(path):
                continue
            self.known[path] = version
            self._push({"type": "file_changed", "path": path, "version": version, "source": source})

    def _push(self, message: dict[str, Any]) -> None:
        for queue in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):  # a browser that stopped reading misses messages
                queue.put_nowait(message)
