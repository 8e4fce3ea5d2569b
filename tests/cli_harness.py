"""`iterloop` as a real subprocess against the session's dev server (the CLI tests' harness).

The `bare_cli` and `cli` fixtures (conftest.py) hand tests a `Cli` on their own task queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """`iterloop` against the session's dev server, on this test's task queue, in ``cwd``."""

    env: dict[str, str]
    cwd: Path

    async def __call__(self, *args: str, timeout: float = 60) -> Result:
        # Asynchronous on purpose: the in-test worker runs on this event loop and must keep polling.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", *args, cwd=self.cwd, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    def write(self, name: str, text: str) -> str:
        (self.cwd / name).write_text(text, encoding="utf-8")
        return name


def cli_env(address: str, task_queue: str, home: Path) -> dict[str, str]:
    dropped = ("NO_COLOR", "ITERION_DEFAULT_SUPERVISOR_MODEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ITERLOOP_")) and k not in dropped}
    env.update(TEMPORAL_ADDRESS=address, ITERLOOP_TASK_QUEUE=task_queue, ITERLOOP_HOME=str(home),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
               ITERLOOP_TEST_TOPIC="durable loops")
    return env
