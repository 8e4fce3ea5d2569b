"""The Temporal server killed with SIGKILL and started again on the same PostgreSQL database while
runs wait at human gates and at durable timers (`wait` nodes): the workers reconnect on their own,
the gates are answered with `iterloop answer`, the timers fire, every run finishes, and every
history event recorded before the crash is still there, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from cli_harness import Cli
from cluster_harness import ClusterTier, WorkerPool, wait_for_pollers
from runs import events_with, finish, poll, start, state
from temporalio.client import Client, WorkflowHandle

GATED = """
schema decision:
  approved: bool
  note: string
agent planner:
  model: "scripted"
human approval:
  output: decision
tool after:
  command: "echo after-gate"
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> after when approved
  approval -> fail when not approved
  after -> done
"""

TIMED = """
vars:
  tag: string
tool before:
  command: "echo before-{{vars.tag}}"
wait pause:
  duration: "20s"
tool after:
  command: "echo after-{{vars.tag}}"
workflow timed:
  entry: before
  before -> pause
  pause -> after
  after -> done
"""


async def _events(handle: WorkflowHandle[Any, Any]) -> list[tuple[int, str]]:
    """(event id, event type) of the run's whole history, in order."""
    history = await handle.fetch_history()
    return [(e.event_id, e.WhichOneof("attributes") or "") for e in history.events]


async def _timer_started(handle: WorkflowHandle[Any, Any]) -> bool:
    history = await handle.fetch_history()
    return bool(events_with(history, "timer_started_event_attributes"))


async def test_runs_at_gates_and_timers_survive_a_server_crash_and_finish(
        cluster: ClusterTier, cluster_client: Client, shared_workers: WorkerPool, cluster_cli: Cli) -> None:
    task_queue = shared_workers.task_queue
    await wait_for_pollers(cluster_client, task_queue, 2)
    gated = [await start(cluster_client, task_queue, GATED, script={"planner": {"text": f"plan {i}"}})
             for i in range(2)]
    timed = [await start(cluster_client, task_queue, TIMED, inputs={"tag": f"t{i}"}) for i in range(2)]
    for handle in gated:
        await poll(lambda h=handle: _waiting_at_gate(h), f"{handle.id} to wait at its gate", timeout=120)
    for handle in timed:
        await poll(lambda h=handle: _timer_started(h), f"{handle.id} to start its timer", timeout=120)
    before = {h.id: await _events(h) for h in gated + timed}
    assert all("timer_fired_event_attributes" not in {t for _, t in before[h.id]} for h in timed)

    crashed_at = datetime.now(UTC)
    cluster.temporal.kill()
    await asyncio.to_thread(cluster.temporal.restart)

    for i, handle in enumerate(gated):
        view = await poll(lambda h=handle: _waiting_at_gate(h), f"{handle.id} at its gate after the restart",
                          timeout=120)
        assert view.open_gates[0].questions == {"plan": f"plan {i}"}
        answered = await cluster_cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true",
                                     "--answer", f"note=go {i}", "--by", "ada", "--json", timeout=120)
        assert answered.code == 0, answered.out + answered.err
    results = {h.id: await finish(h, timeout=120) for h in gated + timed}

    assert {run_id: r.status for run_id, r in results.items()} == {h.id: "finished" for h in gated + timed}
    for i, handle in enumerate(gated):
        outputs = results[handle.id].outputs
        assert outputs["approval"] == {"approved": True, "note": f"go {i}"}
        assert outputs["after"] == {"result": "after-gate"}
    for i, handle in enumerate(timed):
        outputs = results[handle.id].outputs
        assert outputs["before"] == {"result": f"before-t{i}"} and outputs["after"] == {"result": f"after-t{i}"}
        history = await handle.fetch_history()
        fired = [e for e in history.events if e.HasField("timer_fired_event_attributes")]
        assert len(fired) == 1 and fired[0].event_time.ToDatetime(UTC) > crashed_at
    # Nothing recorded before the crash was lost: each history still starts with those events.
    for run_id, events in before.items():
        after = await _events(cluster_client.get_workflow_handle(run_id))
        assert after[:len(events)] == events and len(after) > len(events)


async def _waiting_at_gate(handle: WorkflowHandle[Any, Any]) -> Any:
    try:
        view = await state(handle)
    except Exception:  # noqa: BLE001 - the server is starting, or no worker has the run yet: ask again
        return None
    return view if view.status == "waiting_human" and view.open_gates else None
