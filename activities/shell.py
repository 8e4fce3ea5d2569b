"""The `iterloop.shell_exec` activity: run a tool node's shell command on the worker.

How it behaves, and why:

- **Values are data.** The command arrives rendered: each template became `"${ITERLOOP_VALUE_n}"`
  and the values travel beside it (`req.values`). This activity resolves them by structure
  (recorded artifact references only, never tokens found in text), sets them as environment
  variables of the process, and expands only the operator's `$VAR` / `${VAR}` references in the
  command text (`workflows.contract.env_refs.expand_env_in_command`), so history holds the
  unexpanded command and secrets stay on the worker. The shell reads a value only as a parameter
  expansion, which it never parses again as code. A value no process can receive (a NUL byte)
  fails the node before anything runs.
- **`/bin/sh -c` in its own process group** (`start_new_session=True`). Commands start children
  (pipelines, `&`, `make`); killing only `sh` would leave them running after a cancel or a
  timeout. We signal the whole group: SIGTERM, up to `KILL_GRACE_SECONDS` for it to exit, then
  SIGKILL. The group is also tied to the worker's life (`activities.shell_process`): if the
  worker dies, a guardian in the group kills it, and a retry first stops what its previous
  attempt left on this host.
- **Heartbeats** every `req.heartbeat_seconds` with the elapsed time and the last output line.
  Temporal delivers cancellation to an activity only through heartbeats, and the details show
  progress in the UI. A cancel (or heartbeat timeout, or worker shutdown) arrives as
  `asyncio.CancelledError`: we kill the group, then re-raise.
- **Bounded output.** stdout and stderr are captured separately and only the last
  `OUTPUT_LIMIT_BYTES` of each is kept, with a marker saying how much was dropped.
- **Failures are permanent** (non-retryable): a non-zero exit (`CommandFailed`), a timeout
  (`CommandFailed`: re-running a hung command blindly rarely helps and doubles the wait; the
  user can `iterloop retry` the node once the cause is fixed), a command that cannot be started
  (`BadRequest`). Messages name the node and never contain the expanded command.
- **The run's working directory.** `req.cwd` is the directory the run was started from
  (`iterloop run` records its caller's, or `--workdir`); a worker that cannot see it (another host,
  a container without that volume) fails the node at once (`BadRequest`, not retried), naming the
  directory and the worker's host, so the person can run a worker there or retry elsewhere.
- **Output shape** is Iterion's: the JSON object printed on stdout, else `{"result": stdout}`
  (trimmed).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import signal
import socket
import time
from collections.abc import Mapping
from typing import Any

from temporalio import activity

from activities import artifacts
from activities.errors import BadRequestError, CommandFailedError
from activities.heartbeats import wait_heartbeating
from activities.redaction import redact
from activities.shell_process import signal_group, spawn_guarded, stop_group
from dsl.templates import to_text
from workflows.contract.artifact_refs import ARTIFACT_KEY
from workflows.contract.env_refs import VALUE_ENV_PREFIX, expand_env_in_command
from workflows.contract.messages import SHELL_EXEC, ShellRequest, ShellResult

SHELL = "/bin/sh"
#: Per stream. Note the result holds stdout twice (as `stdout` and in `output`) and Temporal
#: rejects payloads over 2 MiB (PayloadSizeError, non-retryable in the workflow).
PREVIEW_CHARS = 2000
OUTPUT_LIMIT_BYTES = 256 * 1024  # two copies of stdout + stderr stay well under the 2 MiB payload limit
#: Time between SIGTERM and SIGKILL for the command's process group.
KILL_GRACE_SECONDS = 3.0
#: How much of each stream goes into a failure's details, and how many stderr lines into its message.
FAILURE_TAIL_BYTES = 8 * 1024
FAILURE_MESSAGE_LINES = 10
_HEARTBEAT_LINE_CHARS = 200
_READ_CHUNK = 64 * 1024

_write_order = itertools.count()


@activity.defn(name=SHELL_EXEC)
async def shell_exec(req: ShellRequest) -> ShellResult:
    """Run ``req.command`` with `sh -c` in ``req.cwd`` and return its output (see module doc)."""
    if req.timeout_seconds <= 0 or req.heartbeat_seconds <= 0:
        raise BadRequestError(
            f"shell node '{req.node_id}': timeout_seconds and heartbeat_seconds must be positive, "
            f"got {req.timeout_seconds} and {req.heartbeat_seconds}")
    env = await value_environment(req)
    # The command text holds no values, so `${ENV}` expansion can never reach into one.
    command = expand_env_in_command(req.command)
    started = time.monotonic()
    proc = await _spawn(req, command, env)
    stdout, stderr = _Tail(OUTPUT_LIMIT_BYTES, "stdout"), _Tail(OUTPUT_LIMIT_BYTES, "stderr")
    assert proc.stdout is not None and proc.stderr is not None
    finished = asyncio.ensure_future(
        asyncio.gather(proc.wait(), stdout.read_all(proc.stdout), stderr.read_all(proc.stderr)))
    try:
        completed = await _wait_heartbeating(finished, req, started, stdout, stderr)
    except BaseException:  # cancellation (cancel, heartbeat timeout, worker shutdown) or a bug
        await _stop_process_group(proc, finished)
        raise
    if not completed:
        await _stop_process_group(proc, finished)
        raise _failure(req, f"timed out after {req.timeout_seconds:g} s and was killed "
                            "(raise the run's shell timeout, a preset's `timeouts: shell:`, if the command needs longer)",
                       proc.returncode, stdout, stderr, timed_out=True)

    duration_ms = int((time.monotonic() - started) * 1000)
    exit_code = proc.returncode
    assert exit_code is not None
    if exit_code != 0:
        what = (f"was killed by signal {_signal_name(-exit_code)}" if exit_code < 0
                else f"exited with code {exit_code}")
        raise _failure(req, what, exit_code, stdout, stderr, timed_out=False)
    out = stdout.text()
    output = await artifacts.offload_async(node_output(out), run_id=req.run_id, node_id=req.node_id,
                               threshold=req.offload_threshold_bytes)
    err = stderr.text()
    if ARTIFACT_KEY in output:  # the full stdout is in the store; keep history small
        out = out[:PREVIEW_CHARS] + f"\n… ({len(out)} characters, stored as {output[ARTIFACT_KEY]['uri']})"
        err = err[-PREVIEW_CHARS:]
    return ShellResult(exit_code=0, stdout=out, stderr=err, duration_ms=duration_ms, output=output)


async def value_environment(req: ShellRequest) -> dict[str, str]:
    """The worker's environment plus one variable per template value, as the command reads them.

    Values are resolved by structure (a recorded artifact reference is read from the store; text
    is never searched for tokens) and turned into text as templates do (strings as they are,
    anything else as JSON). A value a process cannot receive fails the node before anything runs.
    Variables of the value prefix inherited from the worker are dropped, so a command only ever
    reads the values of its own templates.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(VALUE_ENV_PREFIX)}
    cache: dict[str, Any] = {}
    for item in req.values:
        if not item.env.startswith(VALUE_ENV_PREFIX) or not item.env[len(VALUE_ENV_PREFIX):].isdigit():
            raise BadRequestError(f"shell node '{req.node_id}': value variable {item.env!r} for {item.ref} is not "
                                  f"named {VALUE_ENV_PREFIX}N")
        text = to_text(await artifacts.resolve_async(item.value, cache))
        if "\0" in text:
            raise BadRequestError(
                f"shell node '{req.node_id}': the value of {item.ref} contains a NUL character, which no process "
                "can receive in its arguments or environment; nothing was run. Remove the NUL from the value "
                "(or pass binary data through a file).", details={"ref": item.ref})
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError(
                f"shell node '{req.node_id}': the value of {item.ref} is not valid Unicode text (it holds a lone "
                "surrogate); nothing was run.", details={"ref": item.ref}) from None
        env[item.env] = text
    return env


def node_output(stdout: str) -> dict[str, Any]:
    """Iterion's tool-node output: the JSON object on stdout, else ``{"result": trimmed stdout}``."""
    text = stdout.strip()
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: not JSON, and not storable in history


async def _spawn(req: ShellRequest, command: str, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start the command in its own process group, tied to this worker's life (`shell_process`).

    ``env`` is the command's whole environment (None: the worker's).
    """
    if req.cwd and not os.path.isdir(req.cwd):
        raise BadRequestError(
            f"shell node '{req.node_id}': the run's working directory {req.cwd!r} does not exist on the worker "
            f"(host {socket.gethostname()}, pid {os.getpid()}): run the command from a worker that can see that "
            "directory (e.g. on the machine the run was started from), then `iterloop retry` the node; or start "
            "the run with `--workdir` (API: \"workdir\") naming a directory the workers have",
            details={"cwd": req.cwd, "worker_host": socket.gethostname()})
    try:
        return await spawn_guarded(SHELL, command, cwd=req.cwd, env=env, kill_grace_seconds=KILL_GRACE_SECONDS)
    except OSError as e:
        if e.errno == errno.E2BIG:
            sizes = ", ".join(f"{v.ref}: {len((env or {}).get(v.env, '').encode())} bytes" for v in req.values)
            raise BadRequestError(
                f"shell node '{req.node_id}': the command and its values are too large to start a process "
                f"({sizes or 'no template values'}; Linux takes at most 128 KiB per value): have the node that "
                "produces a large value write it to a file, and pass the file's path instead") from None
        where = f"in working directory {req.cwd!r}" if req.cwd else "in the worker's working directory"
        raise BadRequestError(
            f"shell node '{req.node_id}': cannot start {SHELL} {where} on worker host {socket.gethostname()}: "
            f"{e.strerror or e}. Check that the directory exists and is readable on the worker.") from None


async def _wait_heartbeating(finished: asyncio.Future[Any], req: ShellRequest, started: float,
                             stdout: _Tail, stderr: _Tail) -> bool:
    """Wait for the command to exit and close its output; heartbeat its latest line meanwhile.

    Returns False when ``req.timeout_seconds`` ran out first. Waiting never cancels ``finished``.
    """

    def progress() -> dict[str, Any]:
        latest = max(stdout, stderr, key=lambda t: t.written_at)
        return {"elapsed_seconds": round(time.monotonic() - started, 1), "last_line": latest.last_line(),
                "stdout_bytes": stdout.total, "stderr_bytes": stderr.total}

    return await wait_heartbeating(finished, started=started, timeout_seconds=req.timeout_seconds,
                                   every_seconds=req.heartbeat_seconds, details=progress)


async def _stop_process_group(proc: asyncio.subprocess.Process, finished: asyncio.Future[Any]) -> None:
    """SIGTERM the command's process group, give it `KILL_GRACE_SECONDS`, then SIGKILL it (`stop_group`)."""
    await stop_group(proc.pid, finished, KILL_GRACE_SECONDS)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    signal_group(pgid, sig)  # a group already gone is not an error


def _failure(req: ShellRequest, what: str, exit_code: int | None, stdout: _Tail, stderr: _Tail, *,
             timed_out: bool) -> CommandFailedError:
    # Redacted before the tails are cut, so a secret is never cut in two (half of it would not be recognised).
    err_text, out_text = redact(stderr.text()), redact(stdout.text())
    shown, label = (err_text, "stderr") if err_text.strip() else (out_text, "stdout")
    lines = shown.rstrip().splitlines()[-FAILURE_MESSAGE_LINES:]
    message = f"shell node '{req.node_id}': command {what}"
    if lines:
        message += f"; last lines of {label}:\n" + "\n".join(lines)[-FAILURE_TAIL_BYTES:]
    details = {
        "exit_code": exit_code,
        "timed_out": timed_out,
        "stdout_tail": out_text[-FAILURE_TAIL_BYTES:],
        "stderr_tail": err_text[-FAILURE_TAIL_BYTES:],
    }
    return CommandFailedError(message, details=details)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class _Tail:
    """The last ``limit`` bytes written to one stream, and how many were written in all."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self.total = 0
        self.written_at = -1  # position in the global write order, to find the latest line
        self._buf = bytearray()

    async def read_all(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_READ_CHUNK):
            self.total += len(chunk)
            self.written_at = next(_write_order)
            self._buf += chunk
            if len(self._buf) > 2 * self.limit:  # trim in batches: O(total), not O(total * limit)
                del self._buf[: len(self._buf) - self.limit]

    def _kept(self) -> bytes:
        data = bytes(self._buf[-self.limit:])
        if self.total > len(data):
            # Don't start in the middle of a UTF-8 sequence.
            start = 0
            while start < min(len(data), 3) and data[start] & 0xC0 == 0x80:
                start += 1
            data = data[start:]
        return data

    def text(self) -> str:
        data = self._kept()
        kept = data.decode("utf-8", errors="replace")
        dropped = self.total - len(data)
        if dropped > 0:
            return f"[iterloop: {dropped} earlier bytes of {self.name} dropped; last {len(data)} kept]\n{kept}"
        return kept

    def last_line(self) -> str:
        tail = bytes(self._buf[-4096:]).decode("utf-8", errors="replace").rstrip()
        line = tail.rsplit("\n", 1)[-1].strip()
        return line[-_HEARTBEAT_LINE_CHARS:]
