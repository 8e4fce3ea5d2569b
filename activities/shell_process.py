"""A shell command's process group, tied to the worker that started it by a lifeline.

Why: a command runs in its own process group (`start_new_session=True`) so that a cancel or a
timeout can signal all of it (pipelines, `&`, `make`'s children). But nothing signals the group
when the *worker* dies (SIGKILL, the OOM killer, a crash): the command lives on, and Temporal's
retry of the activity runs it again beside the first one. `PR_SET_PDEATHSIG` does not help: it
reaches only the direct child (not the command's own children), and it fires when the spawning
*thread* exits, not the process.

How:

- **The lifeline.** The worker opens a pipe per command and keeps the write end (close-on-exec,
  and `subprocess` closes every other descriptor, so no other process holds a copy). The
  command's `sh` gets the read end as stdin and, before it execs the command, starts a *guardian*
  in the same process group: a background subshell blocked reading the pipe. When the worker
  dies, the kernel closes its end; the guardian reads end-of-file, SIGTERMs the group, waits the
  grace period and SIGKILLs it. The guardian writes to /dev/null (the worker waits for the
  command's stdout and stderr to close, so it must hold neither) and the command gets stdin from
  /dev/null as before. `exec` keeps the pid, so exit codes and "killed by signal" are the
  command's own.
- **Release.** When the activity ends (its task is done: the command finished, or was stopped
  and its group killed), the worker writes one line and closes its end: the guardian leaves
  quietly. A background process the command deliberately left behind (`server > log &`) keeps
  running, as before; while the activity runs, everything in the group is tied to the worker.
- **No overlap on retry.** Each attempt records its group (pgid and the leader's start time) in
  a small file per activity. An attempt > 1 on the same host first stops what its previous
  attempt left (TERM, grace, KILL) and waits until the group is gone, so even a command that
  traps SIGTERM, or a heartbeat timeout shorter than the grace period, never runs twice at once.
  On another host the guardian alone applies: the group is gone within the grace period after
  the worker died, and the server only retries after the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from temporalio import activity

#: The guardian, then the command. `$1` is the command, `$2` the grace period in seconds. A
#: background list's stdin is /dev/null, so the lifeline is read through fd 3; the command runs
#: without it (only the worker's end matters, but a command should not see stray descriptors).
_PROLOGUE = """exec 3<&0 </dev/null
{ trap '' TERM; read -r _ <&3 || { kill -s TERM 0; sleep "$2"; kill -s KILL 0; }; } >/dev/null 2>&1 &
exec 3<&-
exec /bin/sh -c "$1"
"""
_RELEASE = b"released\n"
#: How often a leftover group is checked while waiting for it to go.
_GONE_POLL_SECONDS = 0.02
_PROC = Path("/proc")


class Lifeline:
    """The worker's end of one command's lifeline: held while the activity runs."""

    def __init__(self, write_fd: int, record: Path | None) -> None:
        self._fd: int | None = write_fd
        self._record = record

    def release(self) -> None:
        """Tell the guardian the command is done (it leaves without signalling) and forget the group."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # EPIPE: the guardian was killed with its group
            os.write(self._fd, _RELEASE)
        os.close(self._fd)
        self._fd = None
        if self._record is not None:
            with contextlib.suppress(OSError):
                self._record.unlink()


async def spawn_guarded(shell: str, command: str, *, cwd: str | None, env: Mapping[str, str] | None,
                        kill_grace_seconds: float) -> asyncio.subprocess.Process:
    """Start ``shell -c command`` in a new process group that dies with this worker (see module doc).

    The lifeline is released when the calling task (the activity) is done. Raises `OSError` when
    the shell cannot be started.
    """
    record = _attempt_record()
    if record is not None and activity.info().attempt > 1:
        await stop_leftover_group(record, kill_grace_seconds)
    read_fd, write_fd = os.pipe()  # both non-inheritable; the read end is handed over as stdin
    try:
        proc = await asyncio.create_subprocess_exec(
            shell, "-c", _PROLOGUE, "iterloop-shell", command, f"{kill_grace_seconds:g}",
            cwd=cwd, env=env, stdin=read_fd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    lifeline = Lifeline(write_fd, record)
    if record is not None:
        _write_record(record, proc.pid)
    task = asyncio.current_task()
    if task is None:  # not in a task: nothing to wait for, so nothing outlives this call's caller
        lifeline.release()
    else:
        task.add_done_callback(lambda _: lifeline.release())
    return proc


async def stop_group(pgid: int, finished: asyncio.Future[object], grace: float) -> None:
    """SIGTERM a command's process group, give it ``grace`` seconds, then SIGKILL it.

    ``finished`` is the command's exit *and* its output pipes closing (the children sharing them
    have exited too), so a child that traps SIGTERM still gets its grace period, while the guardian
    (which holds no pipe and ignores SIGTERM on purpose) does not make the wait last the whole grace.
    The group is killed in the end whatever happened, guardian included.
    """
    signal_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait({finished}, timeout=grace)
    finally:
        signal_group(pgid, signal.SIGKILL)  # even if a second cancel interrupts the wait
    # Reap. A process that left the group (setsid) could hold the pipes open forever: stop reading.
    await asyncio.wait({finished}, timeout=grace)
    if not finished.done():
        finished.cancel()
    elif not finished.cancelled():
        finished.exception()  # retrieved, so asyncio does not log it


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group; a group already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an orphan's exit status
    waits for whoever adopted it (some containers' init never reaps), but it runs nothing."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's processes: not ours to judge, but not gone
    return any(state != "Z" for state in _member_states(pgid)) if _PROC.is_dir() else True


def _member_states(pgid: int) -> list[str]:
    """The state letter of each process of group ``pgid`` (Linux `/proc`)."""
    states = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if len(fields) > 2 and fields[2] == str(pgid):
            states.append(fields[0])
    return states


async def stop_leftover_group(record: Path, kill_grace_seconds: float) -> None:
    """Stop the group a previous attempt of this activity left on this host, and wait until it is gone."""
    try:
        data = json.loads(record.read_text())
        pgid, started = int(data["pgid"]), data.get("leader_start")
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not group_alive(pgid) or not _same_leader(pgid, started):
        return
    activity.logger.warning("stopping process group %d left by a previous attempt of this shell command", pgid)
    signal_group(pgid, signal.SIGTERM)
    if not await _wait_gone(pgid, kill_grace_seconds):
        signal_group(pgid, signal.SIGKILL)
        await _wait_gone(pgid, kill_grace_seconds)


async def _wait_gone(pgid: int, timeout: float) -> bool:
    """Poll until the group is gone (True) or ``timeout`` passes (False), heartbeating meanwhile:
    a heartbeat timeout shorter than the wait must not give up on this attempt too."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        activity.heartbeat({"waiting_for_previous_attempt": pgid})
        await asyncio.sleep(_GONE_POLL_SECONDS)
    return True


def _same_leader(pgid: int, recorded_start: str | None) -> bool:
    """Whether ``pgid`` still names the recorded group.

    While any member lives, Linux does not hand the group's number to a new process; so the
    number can only name another group if the leader's pid was reused, which its start time shows.
    """
    current = _leader_start(pgid)
    return current is None or recorded_start is None or current == recorded_start


def _leader_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux), or None if unknown or exited."""
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = line.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _attempt_record() -> Path | None:
    """This activity's record file (one per activity of one workflow run), or None outside an
    activity or when the folder is not this user's alone."""
    if not activity.in_activity():
        return None
    info = activity.info()
    key = f"{info.workflow_namespace}\0{info.workflow_id}\0{info.workflow_run_id}\0{info.activity_id}"
    folder = Path(tempfile.gettempdir()) / f"iterloop-shell-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    # A record names a group to kill: one planted by another user (a folder made first in a shared
    # /tmp) must not be read.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        activity.logger.warning("not recording shell process groups: %s is not private to this user", folder)
        return None
    return folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def _write_record(record: Path, pgid: int) -> None:
    try:
        record.write_text(json.dumps({"pgid": pgid, "leader_start": _leader_start(pgid)}))
    except OSError:
        activity.logger.warning("cannot record the shell command's process group in %s", record.parent)
