"""Shell commands die with their worker, and a retried command never runs beside its previous attempt.

Real processes throughout: the session's dev server, worker subprocesses (`python -m worker`)
killed with SIGKILL, and shell commands that log one line per tick with their process group, so
the log shows which attempt ran when. Nothing sleeps for a fixed time: every wait polls with a
deadline.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
from pathlib import Path

import pytest
from runs import events_with, finish, live_members, poll, start, start_worker_process, state, stop_process
from temporalio.testing import WorkflowEnvironment

from workflows.contract.messages import SHELL_EXEC

pytestmark = pytest.mark.asyncio

#: `$$` is the command's shell, the leader of its process group. A background `sleep` stands for
#: the grandchildren real commands start (pipelines, `make`): the whole group must go.
TICKER = """
vars:
  log: string
  ticks: string
tool work:
  command: "TRAP sleep 60 > /dev/null 2>&1 & i=0; while [ $i -lt {{vars.ticks}} ]; do echo $$ $(date +%s%N) >> {{vars.log}}; sleep 0.1; i=$((i+1)); done; kill $!"
workflow ticking:
  entry: work
  work -> done
"""


def ticker(*, trap_term: bool = False) -> str:
    """The workflow; ``trap_term``: the command's shell ignores SIGTERM (only SIGKILL stops it)."""
    return TICKER.replace("TRAP ", "trap '' TERM; " if trap_term else "")


def ticks(log: Path) -> list[tuple[int, int]]:
    """(process group, nanosecond time) of every complete line of the log, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(g), int(t)) for g, t in (line.split() for line in lines if len(line.split()) == 2)]


def groups(log: Path) -> list[int]:
    """The process groups that wrote to the log, in the order they first did."""
    seen: list[int] = []
    for group, _ in ticks(log):
        if group not in seen:
            seen.append(group)
    return seen


def assert_attempts_never_overlap(log: Path, attempts: int) -> None:
    """Each attempt's lines form one block, after the previous attempt's last line."""
    order = groups(log)
    assert len(order) == attempts, order
    blocks = [[t for g, t in ticks(log) if g == group] for group in order]
    for earlier, later in itertools.pairwise(blocks):
        assert max(earlier) < min(later), "a retry ran while its previous attempt was still running"


def shell_attempts(history: object) -> list[int]:
    return [e.attempt for e in events_with(history, "activity_task_started_event_attributes")]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def attempt_ticking(log: Path, attempt: int) -> int:
    """Wait until attempt number ``attempt`` has ticked a few times; return its process group."""
    def ticking() -> int | None:
        order = groups(log)
        if len(order) < attempt:
            return None
        return order[attempt - 1] if sum(1 for g, _ in ticks(log) if g == order[attempt - 1]) >= 3 else None

    group: int = await poll(ticking, f"attempt {attempt} of the command to run", timeout=60, interval=0.05)
    return group


async def kill_worker_once_its_attempt_ticks(worker: subprocess.Popen[bytes], log: Path, attempt: int) -> int:
    """Wait until attempt number ``attempt`` ticks, SIGKILL the worker, and return the attempt's group."""
    group = await attempt_ticking(log, attempt)
    assert parent_of(group) == worker.pid  # the attempt runs on the worker we kill
    await stop_process(worker, sig=signal.SIGKILL)
    return group


async def test_a_killed_workers_command_dies_with_it_and_its_retry_runs_alone(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    log = tmp_path / "ticks.log"
    address = temporal_env.client.service_client.config.target_host
    workers = [start_worker_process(address, task_queue, tmp_path / "worker1.log")]
    try:
        handle = await start(temporal_env.client, task_queue, ticker(), inputs={"log": str(log), "ticks": "60"},
                             shell_heartbeat_timeout_seconds=3)
        group = await kill_worker_once_its_attempt_ticks(workers[0], log, 1)
        # The guardian in the group saw the worker's end of the lifeline close: the command (6 s of
        # ticks), its background child and the guardian itself are gone long before the retry is due.
        await poll(lambda: not live_members(group), "the dead worker's process group to exit", timeout=3)
        workers.append(start_worker_process(address, task_queue, tmp_path / "worker2.log"))
        result = await finish(handle, timeout=90)
        history = await handle.fetch_history()
    finally:
        for proc in workers:
            await stop_process(proc)
    assert result.status == "finished"
    assert_attempts_never_overlap(log, 2)
    assert len(ticks(log)) >= 60  # the retry ran to its end
    assert shell_attempts(history) == [2]


async def test_a_retry_on_the_same_host_first_stops_a_previous_attempt_that_ignores_sigterm(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    # The first attempt (6 s of ticks) ignores the guardian's SIGTERM and lives until its SIGKILL,
    # 3 s after the worker died. A second worker already polls, and the heartbeat timeout (1 s)
    # and the retry's backoff (1 s) are shorter: the retry is due while the first attempt still
    # runs, and must stop it before starting.
    log = tmp_path / "ticks.log"
    address = temporal_env.client.service_client.config.target_host
    workers = [start_worker_process(address, task_queue, tmp_path / f"worker{n}.log") for n in (1, 2)]
    try:
        handle = await start(temporal_env.client, task_queue, ticker(trap_term=True),
                             inputs={"log": str(log), "ticks": "60"}, shell_heartbeat_timeout_seconds=1)
        group = await attempt_ticking(log, 1)
        [running] = [w for w in workers if w.pid == parent_of(group)]
        await stop_process(running, sig=signal.SIGKILL)
        result = await finish(handle, timeout=90)
        history = await handle.fetch_history()
    finally:
        for proc in workers:
            await stop_process(proc)
    assert result.status == "finished"
    assert not live_members(group)
    assert_attempts_never_overlap(log, 2)
    assert shell_attempts(history) == [2]


async def test_a_run_survives_more_worker_deaths_than_max_attempts(
        temporal_env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    log = tmp_path / "ticks.log"
    address = temporal_env.client.service_client.config.target_host
    workers: list[subprocess.Popen[bytes]] = []
    try:
        handle = await start(temporal_env.client, task_queue, ticker(), inputs={"log": str(log), "ticks": "15"},
                             shell_heartbeat_timeout_seconds=1.5, max_attempts=2)
        for attempt in (1, 2, 3):  # three worker deaths in one activity, one more than max_attempts
            workers.append(start_worker_process(address, task_queue, tmp_path / f"worker{attempt}.log"))
            await kill_worker_once_its_attempt_ticks(workers[-1], log, attempt)
        workers.append(start_worker_process(address, task_queue, tmp_path / "worker4.log"))
        result = await finish(handle, timeout=120)
        history = await handle.fetch_history()
        view = await state(handle)
    finally:
        for proc in workers:
            await stop_process(proc)
    assert result.status == "finished", result.reason
    assert shell_attempts(history) == [4]  # retried in the same activity, on the fourth worker
    assert view.nodes["work"].attempts == 0 and not view.failures  # never parked
    assert_attempts_never_overlap(log, 4)
    assert [e.activity_type.name for e in events_with(history, "activity_task_scheduled_event_attributes")] == [
        SHELL_EXEC]
