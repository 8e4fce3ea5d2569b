"""Issue 12, F2: a gate opening takes exactly one answer, however and however often it is sent.

A gate inside a loop opens once per cycle. Before the fix, an answer that lost a race (a double
click, two approvers, the CLI and the API at once) or arrived between two openings was queued and
approved the *next* opening, which nobody had seen. These tests reproduce that through the real
senders (the CLI as a subprocess, the REST API, the signal the Slack handler sends) against the
session's dev server, and check that the loser is refused with who answered first and that the
next opening stays open and unanswered.

The loop's `hold` step waits for a marker file, so the test decides when the next opening comes
and the gate's closed window is as long as the test needs (no sleeps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from api_harness import ApiHarness, api  # noqa: F401  (the fixture)
from cli_harness import Cli
from runs import poll, start, wait_for
from temporalio.client import WorkflowHandle

from runtime.run_service import send_answer_signal
from runtime.settings import Settings
from workflows.contract.state import Answer, RunView

CYCLES = """
vars:
  marker: string
schema decision:
  approved: bool
prompt ask:
  Launch the next cycle?
tool hold:
  command: "while [ ! -e {{vars.marker}} ]; do sleep 0.05; done; rm -f {{vars.marker}}"
human approval:
  instructions: ask
  output: decision
workflow cycles:
  entry: hold
  hold -> approval
  approval -> hold when approved as cycle(5)
  approval -> done
"""


def opening(view: RunView, number: int) -> str | None:
    """The interaction id of the gate's opening ``number`` if that is the one open now."""
    return next((g.interaction_id for g in view.open_gates if g.interaction_id.endswith(f":approval:{number}")), None)


async def open_next(handle: WorkflowHandle[Any, Any], marker: Path, number: int) -> RunView:
    """Let the loop go on to the gate's opening ``number`` and wait until it is open."""
    marker.touch()
    return await wait_for(handle, lambda v: opening(v, number) is not None)


async def gate_closed(handle: WorkflowHandle[Any, Any], answers: int) -> RunView:
    """Wait until the gate took ``answers`` answers and closed (the loop waits in `hold`)."""
    return await wait_for(handle, lambda v: len(v.answers) == answers and not v.open_gates)


async def start_cycles(client: Any, task_queue: str, tmp_path: Path,
                       started: list[str] | None = None) -> tuple[WorkflowHandle[Any, Any], Path]:
    """A run of CYCLES; its id goes to ``started`` (the API harness terminates those at the end)."""
    marker = tmp_path / "go"
    handle = await start(client, task_queue, CYCLES, inputs={"marker": str(marker)})
    if started is not None:
        started.append(handle.id)
    return handle, marker


# -- the CLI ---------------------------------------------------------------------------------------


async def test_two_cli_answers_to_one_opening_one_is_refused_and_the_next_opening_stays_open(
        cli: Cli, temporal_env: Any, task_queue: str, tmp_path: Path) -> None:
    handle, marker = await start_cycles(temporal_env.client, task_queue, tmp_path)
    await open_next(handle, marker, 1)

    results = await asyncio.gather(*(cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true",
                                         "--by", who) for who in ("alice", "bob")))

    assert sorted(r.code for r in results) == [0, 1], [(r.code, r.out, r.err) for r in results]
    winner = "alice" if results[0].code == 0 else "bob"
    refused = results[1 if winner == "alice" else 0]
    assert f"already answered by {winner}" in refused.err, refused.err
    view = await gate_closed(handle, 1)
    assert [(a.answered_by, a.interaction_id.endswith(":1")) for a in view.answers] == [(winner, True)]

    view = await open_next(handle, marker, 2)  # the loser's answer was not kept for this opening
    assert view.status == "waiting_human" and len(view.answers) == 1
    await handle.terminate("test finished")


async def test_cli_answer_to_a_closed_gate_is_refused_and_in_advance_answers_only_the_next_opening(
        cli: Cli, temporal_env: Any, task_queue: str, tmp_path: Path) -> None:
    handle, marker = await start_cycles(temporal_env.client, task_queue, tmp_path)
    await open_next(handle, marker, 1)
    assert (await cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true", "--by", "alice")).code == 0
    await gate_closed(handle, 1)

    late = await cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true", "--by", "bob")
    assert late.code == 1 and "is not open" in late.err and "already answered by alice" in late.err, late.err
    assert "--in-advance" in late.err
    late_signal = await cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true", "--by", "bob",
                            "--signal")
    assert late_signal.code == 1 and "is not open" in late_signal.err, late_signal.err

    ahead = await cli("answer", handle.id, "--gate", "approval", "--answer", "approved=true", "--by", "carol",
                      "--in-advance")
    assert ahead.code == 0 and "in advance" in ahead.out, (ahead.out, ahead.err)
    again = await cli("answer", handle.id, "--gate", "approval", "--answer", "approved=false", "--by", "dave",
                      "--in-advance")
    assert again.code == 1 and "already has an answer kept for its next opening, by carol" in again.err, again.err

    marker.touch()  # opening 2 takes carol's answer without opening; the loop goes round to opening 3
    await gate_closed(handle, 2)
    view = await open_next(handle, marker, 3)
    assert [(a.answered_by, a.interaction_id.rsplit(":", 1)[1]) for a in view.answers] == [("alice", "1"),
                                                                                           ("carol", "2")]
    assert view.status == "waiting_human"  # carol's answer was used once, for opening 2 only
    await handle.terminate("test finished")


# -- the API ---------------------------------------------------------------------------------------


async def test_two_api_answers_to_one_opening_one_is_refused_and_a_late_one_too(
        api: ApiHarness, tmp_path: Path) -> None:  # noqa: F811
    handle, marker = await start_cycles(api.temporal, api.task_queue, tmp_path, api.started)
    view = await open_next(handle, marker, 1)
    first = opening(view, 1)
    url = f"/api/runs/{handle.id}/gates/approval/answer"

    responses = await asyncio.gather(
        api.http.post(url, json={"answers": {"approved": True}, "answered_by": "grace", "interaction_id": first}),
        api.http.post(url, json={"answers": {"approved": True}, "answered_by": "linus", "interaction_id": first}),
        api.http.post(url, json={"answers": {"approved": True}, "answered_by": "ken"}))  # the dashboard's double

    assert sorted(r.status_code for r in responses) == [200, 409, 409], [r.text for r in responses]
    winner = next(r.json()["answered_by"] for r in responses if r.status_code == 200)
    for refused in (r for r in responses if r.status_code == 409):
        error = refused.json()["error"]
        assert error["code"] == "gate_opening_closed" and f"already answered by {winner}" in error["message"], error

    view = await open_next(handle, marker, 2)
    assert view.status == "waiting_human" and [a.answered_by for a in view.answers] == [winner]
    stale = await api.http.post(url, json={"answers": {"approved": False}, "interaction_id": first})
    assert stale.status_code == 409 and f"opening 1 was already answered by {winner}" in stale.json()["error"]["message"]
    assert [a.answered_by for a in (await wait_for(handle, lambda v: opening(v, 2) is not None)).answers] == [winner]


async def test_api_in_advance_answers_the_next_opening_and_a_bare_answer_to_a_closed_gate_is_refused(
        api: ApiHarness, tmp_path: Path) -> None:  # noqa: F811
    handle, marker = await start_cycles(api.temporal, api.task_queue, tmp_path, api.started)
    url = f"/api/runs/{handle.id}/gates/approval/answer"
    await wait_for(handle, lambda v: v.nodes["hold"].status == "running")

    bare = await api.http.post(url, json={"answers": {"approved": True}})
    assert bare.status_code == 409 and '"in_advance": true' in bare.json()["error"]["message"], bare.text
    ahead = await api.http.post(url, json={"answers": {"approved": True}, "in_advance": True})
    assert ahead.status_code == 200 and ahead.json()["gate_open"] is False, ahead.text

    marker.touch()
    await gate_closed(handle, 1)
    view = await open_next(handle, marker, 2)
    assert [a.interaction_id.rsplit(":", 1)[1] for a in view.answers] == ["1"] and view.status == "waiting_human"


# -- Slack ---------------------------------------------------------------------------------------


async def test_slack_clicks_cannot_double_approve(api: ApiHarness, tmp_path: Path) -> None:  # noqa: F811
    """Slack answers by signal, bound to the opening its message was posted for (`api/slack.py`):
    two users clicking at once, a redelivered click and a stale message's click answer once."""
    handle, marker = await start_cycles(api.temporal, api.task_queue, tmp_path, api.started)
    first = opening(await open_next(handle, marker, 1), 1)
    settings: Settings = api.settings.runtime

    def click(user: str, approved: bool = True, interaction_id: str | None = first) -> Any:
        return send_answer_signal(handle, settings, Answer(gate="approval", answers={"approved": approved},
                                                           answered_by=f"slack:{user}",
                                                           interaction_id=interaction_id or ""))

    await asyncio.gather(click("U1"), click("U2"), click("U1"))  # U1's click redelivered
    view = await gate_closed(handle, 1)
    winner = view.answers[0].answered_by
    loser = "slack:U2" if winner == "slack:U1" else "slack:U1"
    view = await open_next(handle, marker, 2)
    assert [a.answered_by for a in view.answers] == [winner] and view.status == "waiting_human"

    before = len(await rejections(handle))
    await click(loser[6:], approved=False)  # a click on the first opening's message, now stale
    rejected = await poll(lambda: _more(handle, before), "the stale click's rejection")
    assert all(d["by"] == loser and f"already answered by {winner}" in d["error"] for d in rejected), rejected
    assert "answer_queued" not in [e["type"] for e in await handle.query("events", 0)]
    view = await wait_for(handle, lambda v: opening(v, 2) is not None)
    assert [a.answered_by for a in view.answers] == [winner]


async def rejections(handle: WorkflowHandle[Any, Any]) -> list[dict[str, Any]]:
    """The data of the run's `answer_rejected` events."""
    return [e["data"] for e in await handle.query("events", 0) if e["type"] == "answer_rejected"]


async def _more(handle: WorkflowHandle[Any, Any], than: int) -> list[dict[str, Any]] | None:
    found = await rejections(handle)
    return found if len(found) > than else None
