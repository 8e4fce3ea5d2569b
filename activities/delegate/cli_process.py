"""Running a coding agent's CLI: its own process group, tied to the worker, killed whole on a
cancel or a timeout, its JSON lines handed over as they stream.

Why a process group: a coding agent starts children of its own (shells, MCP servers, language
servers). Stopping only the CLI would leave them running beside the retry, so the CLI is started
like a shell node's command (`activities/shell_process.py`: a new session and a lifeline, so the
group also dies with the worker) and a stop signals the whole group, TERM then KILL.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from activities.errors import CommandFailedError
from activities.shell_process import spawn_guarded, stop_group

#: What a failure keeps of the CLI's stderr (its last characters: where the reason usually is).
STDERR_TAIL_CHARS = 4000
#: How long a stopped CLI gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 5.0
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class CliExit:
    returncode: int
    stderr_tail: str


async def run_cli(argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str],
                  on_line: Callable[[str], None], timeout_seconds: float, what: str, stdin_path: str = "",
                  kill_grace_seconds: float = KILL_GRACE_SECONDS) -> CliExit:
    """Run ``argv`` to its end, calling ``on_line`` with each line of its stdout.

    ``stdin_path``: a file the CLI reads as its stdin. Prompts go that way, never in ``argv``: any
    local user can read a process's arguments (`ps`, /proc), and one argument is limited to 128 KiB.
    A timeout raises `CommandFailedError` (with the stderr tail); a cancellation (the activity's)
    kills the group and propagates. Either way no process of the group is left.
    """
    command = "exec " + shlex.join(argv) + (" < " + shlex.quote(stdin_path) if stdin_path else "")
    try:
        proc = await spawn_guarded("/bin/sh", command, cwd=cwd, env=env, kill_grace_seconds=kill_grace_seconds)
    except OSError as e:
        raise CommandFailedError(f"{what}: cannot start {argv[0]} in {cwd or '.'}: {e}") from e
    stderr = bytearray()

    async def read_stdout() -> None:
        assert proc.stdout is not None
        pending = b""
        while chunk := await proc.stdout.read(_READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    on_line(line.decode("utf-8", "replace"))
        if pending.strip():
            on_line(pending.decode("utf-8", "replace"))

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(_READ_CHUNK):
            stderr.extend(chunk)
            del stderr[:-STDERR_TAIL_CHARS * 2]

    def tail() -> str:
        return bytes(stderr).decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]

    work = asyncio.gather(read_stdout(), read_stderr(), proc.wait())
    try:
        await asyncio.wait_for(asyncio.shield(work), timeout_seconds)
    except TimeoutError:
        await stop_group(proc.pid, work, kill_grace_seconds)
        raise CommandFailedError(f"{what} did not finish within {timeout_seconds:g}s and was stopped "
                                 "(raise a preset's `timeouts: delegate:` (run option delegate_timeout_seconds) if it needs longer)",
                                 details={"stderr_tail": tail()}) from None
    except BaseException:  # cancelled (or a bug in a reader): nothing of the CLI may outlive us
        await asyncio.shield(stop_group(proc.pid, work, kill_grace_seconds))
        raise
    return CliExit(proc.returncode if proc.returncode is not None else -1, tail())
