"""The lifeline between a worker and its shell commands' process groups (no server needed).

A "worker" here is a small Python process that starts a command with `spawn_guarded` and then
waits; SIGKILL-ing it is a worker death. Commands run through the real activity where the
activity's behaviour (exit codes, release) is what is tested.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runs import live_members
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.shell import shell_exec
from workflows.contract.messages import ShellRequest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 10.0

WORKER = textwrap.dedent("""
    import asyncio, sys
    from activities.shell_process import spawn_guarded

    async def main() -> None:
        await spawn_guarded("/bin/sh", sys.argv[1], cwd=None, env=None, kill_grace_seconds=float(sys.argv[2]))
        print("started", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def poll(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def read_pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def test_a_dead_workers_command_group_is_killed_grandchildren_and_sigterm_ignorers_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    # The shell ignores SIGTERM (so only the SIGKILL after the grace stops it) and has a grandchild.
    command = f"trap '' TERM; sleep 300 & echo $$ > {pid_file}; while true; do sleep 0.05; done"
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, command, "0.5", cwd=ROOT,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        assert worker.stdout is not None and await worker.stdout.readline() == b"started\n"
        await poll(lambda: read_pid(pid_file), "the command to start")
        group = read_pid(pid_file)
        assert group is not None and len(live_members(group)) >= 3  # sh, its sleep 300, the guardian
        worker.kill()  # SIGKILL: the worker runs no code of its own
        await worker.wait()
        await poll(lambda: not live_members(group), "the dead worker's command group to be killed")
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_a_finished_command_releases_its_guardian_and_what_it_left_running() -> None:
    env = ActivityEnvironment()
    result = await env.run(shell_exec, ShellRequest(
        run_id="run-1", node_id="start_server", command="sleep 30 > /dev/null 2>&1 & echo $$ $!"))
    group, server = (int(p) for p in result.output["result"].split())
    # The activity is done: the guardian left without signalling, and the server it started runs on.
    await poll(lambda: live_members(group) == [server], "the guardian to leave")
    os.kill(server, signal.SIGTERM)


@pytest.mark.parametrize(("command", "message"), [
    ("exit 3", "command exited with code 3"),
    ("kill -9 $$", "command was killed by signal SIGKILL"),
])
async def test_exit_codes_and_signals_are_the_commands_own(command: str, message: str) -> None:
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(shell_exec, ShellRequest(run_id="run-1", node_id="n", command=command))
    assert message in err.value.message


async def test_the_command_reads_no_lifeline_and_gets_an_empty_stdin() -> None:
    result = await ActivityEnvironment().run(shell_exec, ShellRequest(
        run_id="run-1", node_id="n", command="ls /proc/self/fd | sort -n | tr '\\n' ' '; cat"))
    # `ls` sees stdin, stdout, stderr and the directory it lists; `cat` reads /dev/null and ends.
    assert result.output["result"].split()[:3] == ["0", "1", "2"]
    assert len(result.output["result"].split()) == 4
