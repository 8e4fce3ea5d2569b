"""Schedules (runtime/schedules.py): recurring runs as Temporal Schedules, on the session's dev server.

Each test has its own task queue with an in-process offline worker, and its own schedule ids;
schedules are deleted at the end so the dev server stops firing them. Waits poll with a deadline;
the only waits that are not polls are the ones that let firing times pass to show nothing fired.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cli_harness import Cli
from runs import compile_ok, poll, running_worker
from temporalio.service import RPCError

from runtime.run_service import RunService
from runtime.run_start import CompiledWorkflow, StartRequest
from runtime.schedule_models import ScheduleRequest
from runtime.schedules import (
    MEMO_SCHEDULE,
    InvalidSchedule,
    ScheduleExists,
    ScheduleNotFound,
    ScheduleService,
    check_schedule_request,
)
from runtime.settings import Settings
from workflows.contract.state import WORKFLOW_TYPE, RunInput

#: The tiniest run: one scripted model turn, then done.
TINY = """
vars:
  topic: string = "pricing"

schema note:
  text: string

prompt write:
  Write a note about {{vars.topic}}.

agent writer:
  model: "scripted"
  user: write
  output: note

workflow tiny:
  entry: writer
  writer -> done
"""


@pytest_asyncio.fixture
async def schedules(temporal_env: Any, task_queue: str, tmp_path: Path) -> AsyncIterator[ScheduleService]:
    """The schedule service of the API's kind (no local processes) on this test's task queue, with an
    offline worker polling it; every schedule left at the end is deleted."""
    client = temporal_env.client
    settings = Settings(address=client.service_client.config.target_host, address_configured=True,
                        task_queue=task_queue, home=tmp_path / ".iterloop", ui_url="http://temporal-ui.test:8233")
    service = ScheduleService(RunService(settings))
    async with running_worker(client, task_queue):
        try:
            yield service
        finally:
            await _delete_schedules(client, task_queue)


async def _delete_schedules(client: Any, task_queue: str) -> None:
    """Delete the schedules whose runs go to ``task_queue`` (no firing outlives its test)."""
    async for entry in await client.list_schedules():
        handle = client.get_schedule_handle(entry.id)
        with contextlib.suppress(RPCError):  # deleted meanwhile
            desc = await handle.describe()
            if getattr(desc.schedule.action, "task_queue", "") == task_queue:
                await handle.delete()


def _prepared(service: ScheduleService, src: str = TINY, **request: Any) -> Any:
    wf = compile_ok(src)
    return service.runs.prepare(StartRequest(
        compiled=CompiledWorkflow(workflow=wf, source="tiny.iter", location="/work/tiny.iter"),
        origin="`iterloop schedule create tiny.iter`", given_by="command_line", offline=True, **request))


def _sid() -> str:
    return f"tiny-{uuid.uuid4().hex[:8]}"


async def _run_input(client: Any, run_id: str) -> RunInput:
    async for event in client.get_workflow_handle(run_id).fetch_history_events(page_size=1):
        [decoded] = await client.data_converter.decode(
            event.workflow_execution_started_event_attributes.input.payloads, [RunInput])
        return decoded
    raise AssertionError(f"run {run_id} has no history")


async def _sleep_past(times: list[str]) -> None:
    """Let the given firing times pass (a wait the interval needs, not a guess)."""
    last = max(datetime.fromisoformat(t) for t in times)
    await asyncio.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 1.0)


# -- the acceptance test: it fires on its own, then a pause stops it -------------------------------


async def test_schedule_fires_every_interval_and_stops_firing_once_paused(schedules: ScheduleService) -> None:
    sid = _sid()
    created = await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="2s"))
    assert created.schedule_id == sid and created.every == ["2s"] and not created.paused
    assert created.next_runs, created

    async def fired_twice() -> Any:
        detail = await schedules.describe(sid)
        return detail if detail.runs_started >= 2 else None

    detail = await poll(fired_twice, "the schedule to fire twice", timeout=30, interval=0.2)
    assert len(detail.recent_runs) >= 2 and all(r.run_id.startswith(f"{sid}-") for r in detail.recent_runs)

    async def two_finished_runs() -> Any:
        runs = [r for r in (await schedules.runs_of(sid)).runs if r.status == "finished"]
        return runs if len(runs) >= 2 else None

    runs = await poll(two_finished_runs, "two of its runs to finish", timeout=30, interval=0.2)
    assert {r.workflow for r in runs} == {"tiny"}

    upcoming = (await schedules.describe(sid)).next_runs[:2]
    await schedules.pause(sid, note="enough")
    paused = await schedules.describe(sid)
    assert paused.paused and paused.note == "enough" and paused.next_runs == []
    await _sleep_past(upcoming)  # the next two firings it would have made have come and gone
    assert (await schedules.describe(sid)).runs_started == paused.runs_started


async def test_runs_a_schedule_starts_are_ordinary_iterloop_runs_listed_by_schedule(
        schedules: ScheduleService, temporal_env: Any) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules, var_assignments=["topic=churn"]),
                           ScheduleRequest(schedule_id=sid, every="1h", paused=True))
    await schedules.trigger(sid)

    async def listed() -> Any:
        runs = (await schedules.runs_of(sid)).runs
        return runs if runs and runs[0].status == "finished" else None

    [run] = await poll(listed, "the triggered run to be listed as finished", timeout=90, interval=0.2)
    assert run.run_id.startswith(f"{sid}-") and run.workflow == "tiny"
    client = temporal_env.client
    desc = await client.get_workflow_handle(run.run_id).describe()
    assert desc.workflow_type == WORKFLOW_TYPE
    assert await desc.memo_value(MEMO_SCHEDULE) == sid
    run_input = await _run_input(client, run.run_id)
    assert run_input.workflow.name == "tiny" and run_input.run_inputs["topic"] == "churn"
    assert run_input.options.script == {}  # offline, as `iterloop run --offline` would start it


async def test_trigger_fires_a_paused_schedule_once_and_it_stays_paused(schedules: ScheduleService) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1s", paused=True))
    changed = await schedules.trigger(sid)
    assert changed.action == "triggered"
    detail = await poll(lambda: _started(schedules, sid, 1), "the triggered firing", timeout=20, interval=0.2)
    assert detail.paused
    await asyncio.sleep(3.0)  # three of its intervals: a paused schedule that fired by itself would have by now
    assert (await schedules.describe(sid)).runs_started == 1


async def _started(schedules: ScheduleService, sid: str, count: int) -> Any:
    detail = await schedules.describe(sid)
    return detail if detail.runs_started >= count else None


async def test_describe_shows_the_workflow_vars_times_and_policy_it_was_created_with(
        schedules: ScheduleService, task_queue: str) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(
        schedule_id=sid, every="7d", cron="0 9 * * MON", time_zone="Europe/Paris", overlap="buffer_one",
        note="weekly growth"))
    detail = await schedules.describe(sid)
    assert (detail.workflow, detail.source, detail.task_queue, detail.offline) == ("tiny", "tiny.iter", task_queue, True)
    assert detail.content_hash == compile_ok(TINY).content_hash
    assert (detail.vars, detail.run_inputs) == ({"topic": "pricing"}, {})
    assert (detail.every, detail.cron, detail.time_zone) == (["7d"], ["0 9 * * MON"], "Europe/Paris")
    assert (detail.overlap, detail.note, detail.paused) == ("buffer_one", "weekly growth", False)
    assert detail.runs_command == f"iterloop list --schedule {sid}"
    assert detail.ui_url == f"http://temporal-ui.test:8233/namespaces/default/schedules/{sid}"


async def test_creating_an_existing_schedule_is_refused_without_replace(schedules: ScheduleService) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1h"))
    with pytest.raises(ScheduleExists, match=f"schedule '{sid}' exists already; give --replace"):
        await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="2h"))


async def test_replace_recompiles_the_run_and_times_and_keeps_the_paused_state(schedules: ScheduleService) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1h", paused=True,
                                                                 note="on hold"))
    replaced = await schedules.create(_prepared(schedules, var_assignments=["topic=retention"]),
                                      ScheduleRequest(schedule_id=sid, every="2h", replace=True))
    assert replaced.replaced and replaced.paused
    detail = await schedules.describe(sid)
    assert (detail.vars, detail.every, detail.paused, detail.note) == ({"topic": "retention"}, ["2h"], True, "on hold")


async def test_unpause_makes_a_paused_schedule_fire_again(schedules: ScheduleService) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1h", paused=True))
    changed = await schedules.unpause(sid)
    detail = await schedules.describe(sid)
    assert changed.action == "unpaused" and not detail.paused and detail.next_runs


async def test_delete_removes_the_schedule(schedules: ScheduleService) -> None:
    sid = _sid()
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1h"))
    assert (await schedules.delete(sid)).action == "deleted"
    with pytest.raises(ScheduleNotFound, match=f"no schedule '{sid}'"):
        await schedules.describe(sid)


async def test_an_unknown_schedule_is_schedule_not_found_for_every_command(schedules: ScheduleService) -> None:
    for command in (schedules.describe, schedules.pause, schedules.unpause, schedules.trigger, schedules.delete):
        with pytest.raises(ScheduleNotFound, match="see the schedules with `iterloop schedule list`"):
            await command("no-such-schedule")


async def test_list_shows_iterloop_schedules_and_leaves_other_schedules_out(
        schedules: ScheduleService, temporal_env: Any, task_queue: str) -> None:
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec

    sid, other = _sid(), f"other-{uuid.uuid4().hex[:8]}"
    await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=sid, every="1h", note="ours"))
    await temporal_env.client.create_schedule(other, Schedule(
        action=ScheduleActionStartWorkflow("someone.Else", id="x", task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))])))

    async def both_listed() -> Any:
        ids = {e.id async for e in await temporal_env.client.list_schedules()}
        return ids >= {sid, other}

    await poll(both_listed, "both schedules in the visibility store", timeout=20, interval=0.2)
    listing = {s.schedule_id: s for s in (await schedules.list()).schedules}
    assert other not in listing
    assert (listing[sid].workflow, listing[sid].every, listing[sid].note) == ("tiny", ["1h"], "ours")
    with pytest.raises(ScheduleNotFound, match="not iterloop runs"):
        await schedules.delete(other)


async def test_a_cron_expression_temporal_refuses_is_invalid_schedule_naming_the_option(
        schedules: ScheduleService) -> None:
    with pytest.raises(InvalidSchedule, match=r"Temporal refused schedule .*check --cron 'every monday'"):
        await schedules.create(_prepared(schedules), ScheduleRequest(schedule_id=_sid(), cron="every monday"))


# -- checking a request (no server) ----------------------------------------------------------------


def test_a_schedule_without_times_is_refused_with_an_example() -> None:
    with pytest.raises(InvalidSchedule, match=r"give --every \(e.g. --every 7d\) or --cron"):
        check_schedule_request(ScheduleRequest(), from_cli=True)


@pytest.mark.parametrize(("every", "problem"), [("weekly", "is not a duration"), ("500ms", "is shorter than a second")])
def test_an_unusable_interval_is_refused_naming_the_field(every: str, problem: str) -> None:
    with pytest.raises(InvalidSchedule, match=f"every '{every}' {problem}"):
        check_schedule_request(ScheduleRequest(every=every), from_cli=False)


def test_a_schedule_id_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidSchedule, match=r"--id 'a b' is not a schedule id"):
        check_schedule_request(ScheduleRequest(schedule_id="a b", every="1h"), from_cli=True)


# -- the command line -------------------------------------------------------------------------------


async def test_schedule_commands_create_list_pause_trigger_and_delete_from_the_command_line(cli: Cli) -> None:
    cli.write("tiny.iter", textwrap.dedent(TINY).lstrip())
    sid = _sid()
    created = await cli("schedule", "create", "tiny.iter", "--offline", "--every", "1h", "--id", sid,
                        "--var", "topic=onboarding", "--note", "from the CLI", "--json")
    assert created.code == 0, created.err
    assert created.json()["schedule_id"] == sid and created.json()["worker"]["state"] == "polling"
    try:
        async def listed() -> Any:
            result = await cli("schedule", "list", "--json")
            assert result.code == 0, result.err
            return [s for s in result.json()["schedules"] if s["schedule_id"] == sid]

        [row] = await poll(listed, "the schedule to be listed", timeout=20, interval=0.3)
        assert row["note"] == "from the CLI" and row["every"] == ["1h"]
        paused = await cli("schedule", "pause", sid, "--json")
        assert paused.code == 0 and paused.json()["action"] == "paused", paused.err
        triggered = await cli("schedule", "trigger", sid)
        assert triggered.code == 0 and f"schedule {sid} fires now" in triggered.out, triggered.err

        async def run_listed() -> Any:
            result = await cli("list", "--schedule", sid, "--json")
            assert result.code == 0, result.err
            return [r for r in result.json() if r["status"] == "finished"]

        [run] = await poll(run_listed, "the triggered run in `iterloop list --schedule`", timeout=90, interval=0.3)
        assert run["run_id"].startswith(f"{sid}-")
        described = await cli("schedule", "describe", sid)
        assert described.code == 0 and "paused" in described.out and "topic" in described.out, described.err
    finally:
        deleted = await cli("schedule", "delete", sid, "--json")
    assert deleted.code == 0 and deleted.json()["action"] == "deleted", deleted.err
    gone = await cli("schedule", "describe", sid)
    assert gone.code == 2 and f"no schedule '{sid}'" in gone.err
