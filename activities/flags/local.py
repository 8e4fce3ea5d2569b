"""The local flag provider: the embedded default, a JSON file (default `.iterloop/flags.json`).

Several activities, in one worker or in several worker processes on the same machine, may create
and toggle flags at once, so every change is a read-modify-write under an exclusive `flock` on a
side file (`flags.json.lock`; the data file itself is replaced on every write, so it cannot hold
the lock), and the new contents are written to a temporary file in the same directory, fsynced,
and moved over the old one with `os.replace`: a reader sees the old file or the new one, never
half of one, and a crash leaves the old file intact. Reads take no lock for that reason.

File layout: ``{"version": 1, "flags": {key: {key, enabled, variants, targeting, description,
experiment_key, created_at, updated_at}}}``. Applications (or the demo) read it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from activities.errors import FlagConfigError, FlagNotFoundError, FlagProviderUnavailableError
from activities.flags.base import FlagProvider
from activities.flags.models import Flag, FlagSpec, existing_flag, recorded_time, rolled_back

DEFAULT_PATH = ".iterloop/flags.json"
FILE_VERSION = 1
_LOCK_POLL_SECONDS = 0.005

T = TypeVar("T")
Flags = dict[str, dict[str, Any]]


class LocalFlagProvider(FlagProvider):
    name = "local"

    class Settings(FlagProvider.Settings):
        path: str = Field(DEFAULT_PATH, description="the JSON file holding the flags (relative: to the worker's cwd)")
        lock_timeout_seconds: float = Field(
            30.0, gt=0, description="how long to wait for another process's change before failing (retryably)")

    @property
    def path(self) -> Path:
        return Path(self.settings.path).expanduser()

    # -- the interface -------------------------------------------------------------------------

    async def create_flag(self, spec: FlagSpec) -> Flag:
        def create(flags: Flags) -> Flag:
            if spec.key in flags:
                return existing_flag(spec, self._flag(flags[spec.key]))
            now = _now()
            flags[spec.key] = {"key": spec.key, "enabled": False,
                               "variants": [v.model_dump() for v in spec.variants],
                               "targeting": spec.targeting, "description": spec.description,
                               "experiment_key": spec.experiment_key, "created_at": now, "updated_at": now}
            return self._flag(flags[spec.key], created=True)

        return await self._change(create)

    async def get_flag(self, key: str) -> Flag:
        flags = await asyncio.to_thread(self._read)
        return self._flag(self._record(flags, key))

    async def set_enabled(self, key: str, enabled: bool) -> Flag:
        def toggle(flags: Flags) -> Flag:
            record = self._record(flags, key)
            record.update(enabled=enabled, updated_at=_now())
            return self._flag(record)

        return await self._change(toggle)

    async def rollback(self, key: str) -> Flag:
        def roll_back(flags: Flags) -> Flag:
            record = self._record(flags, key)
            variants = rolled_back(self._flag(record).variants)
            record.update(enabled=False, variants=[v.model_dump() for v in variants], updated_at=_now())
            return self._flag(record)

        return await self._change(roll_back)

    async def list_flags(self) -> list[Flag]:
        flags = await asyncio.to_thread(self._read)
        return [self._flag(flags[k]) for k in sorted(flags)]

    # -- the store -----------------------------------------------------------------------------

    async def _change(self, change: Callable[[Flags], T]) -> T:
        """Run ``change`` on the flags under the file lock, then write them back atomically. A
        thread does the blocking file work, so waiting for the lock never stalls the event loop."""

        def locked_change() -> T:
            with self._locked():
                flags = self._read()
                before = json.dumps(flags, sort_keys=True)
                result = change(flags)
                if json.dumps(flags, sort_keys=True) != before:
                    self._write(flags)
                return result

        return await asyncio.to_thread(locked_change)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise FlagConfigError(f"local flags: cannot create the lock file {str(lock_path)!r}: {e}. "
                                  f"Set the local provider's `path` to a writable location.") from None
        try:
            # flock (not lockf): its locks belong to the open file, so two threads of one worker
            # exclude each other as two processes do. Polling bounds the wait.
            deadline = time.monotonic() + self.settings.lock_timeout_seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise FlagProviderUnavailableError(
                            f"local flags: {str(lock_path)!r} stayed locked by another process for "
                            f"{self.settings.lock_timeout_seconds:g} s", details={"provider": self.name}) from None
                    time.sleep(_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> Flags:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError) as e:
            raise FlagConfigError(f"local flags: {str(self.path)!r} is not valid JSON ({e}); fix or remove it "
                                  f"(it is the local flag store)", details={"provider": self.name}) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("flags"), dict):
            raise FlagConfigError(f"local flags: {str(self.path)!r} is not a flag store: expected an object "
                                  f'{{"version": {FILE_VERSION}, "flags": {{...}}}}', details={"provider": self.name})
        return raw["flags"]

    def _write(self, flags: Flags) -> None:
        data = json.dumps({"version": FILE_VERSION, "flags": flags}, indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable (not possible everywhere)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _record(self, flags: Flags, key: str) -> dict[str, Any]:
        if key not in flags:
            raise FlagNotFoundError(f"local flags: no flag '{key}' in {str(self.path)!r}; flags there: "
                                    f"{', '.join(sorted(flags)) or 'none'}",
                                    details={"provider": self.name, "key": key})
        return flags[key]

    def _flag(self, record: dict[str, Any], *, created: bool = False) -> Flag:
        fields = {k: record[k] for k in ("key", "enabled", "variants", "targeting", "description", "experiment_key")
                  if k in record}
        try:
            return Flag(provider=self.name, created=created, created_at=recorded_time(record.get("created_at")),
                        **fields)
        except ValidationError as e:
            raise FlagConfigError(f"local flags: the record of '{record.get('key')}' in {str(self.path)!r} is "
                                  f"malformed: {e}", details={"provider": self.name}) from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
