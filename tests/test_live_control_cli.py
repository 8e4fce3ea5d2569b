"""`iterloop budget|pause|resume` as real subprocesses against the session's dev server (offline
worker in the test process): a run started by `iterloop run` parks on its budget (exit 5, with the
command that raises it), a raise lets it finish; refusals and bad options; pause and resume."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cli_harness import Cli
from runs import BUDGET_REVIEW

from runtime.command_errors import EXIT_BUDGET, EXIT_FAILED, EXIT_OK, EXIT_USAGE, EXIT_WAITING

REVIEW = BUDGET_REVIEW
SCRIPT = """\
cost_per_call_usd: 0.01
reviewer:
  - {approved: false, summary: "no"}
  - {approved: true, summary: "yes"}
"""
GATED = """\
schema decision:
  approved: bool

agent writer:
  model: "scripted"

human go:
  output: decision

workflow gated:
  entry: go
  go -> writer
  writer -> done
"""


async def inspect(cli: Cli, run_id: str) -> dict[str, Any]:
    result = await cli("inspect", run_id, "--json")
    assert result.code == 0, result.err
    return result.json()


async def until_status(cli: Cli, run_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = await inspect(cli, run_id)
        if doc["status"] == status:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id}: status {doc['status']}, not {status}")
        await asyncio.sleep(0.2)


async def parked_run(cli: Cli, run_id: str) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", SCRIPT)
    result = await cli("run", "review.iter", "--offline", "--script", "script.yaml", "--run-id", run_id)
    assert result.code == EXIT_BUDGET, result.out + result.err
    assert f"iterloop budget {run_id} --max-cost-usd 0.05" in result.out


async def test_a_run_parked_on_its_budget_finishes_after_iterloop_budget_raises_it(cli: Cli) -> None:
    await parked_run(cli, "parked-budget")
    doc = await inspect(cli, "parked-budget")
    assert doc["status"] == "waiting_budget" and "iterloop budget parked-budget" in doc["budget_wait"]
    raised = await cli("budget", "parked-budget", "--max-cost-usd", "0.1", "--reason", "worth it", "--json")
    assert raised.code == EXIT_OK, raised.err
    assert raised.json()["limits"]["cost_usd"] == 0.1 and raised.json()["action"] == "budget"
    done = await until_status(cli, "parked-budget", "finished")
    assert done["nodes"]["writer"]["visits"] == 2 and done["nodes"]["reviewer"]["visits"] == 2
    assert {row["dimension"]: row["limit"] for row in done["budget"]}["cost_usd"] == 0.1


async def test_iterloop_budget_refuses_a_lower_limit_with_exit_1(cli: Cli) -> None:
    await parked_run(cli, "lower-budget")
    lower = await cli("budget", "lower-budget", "--max-cost-usd", "0.02")
    assert lower.code == EXIT_FAILED
    assert "limits only go up; the cost_usd limit is 0.025 now" in lower.err and "nothing was changed" in lower.err
    unknown = await cli("budget", "lower-budget", "--grant", "polish=2")
    assert unknown.code == EXIT_FAILED and "has no loop 'polish'; loops: revise" in unknown.err
    assert (await inspect(cli, "lower-budget"))["status"] == "waiting_budget"
    shown = await cli("inspect", "lower-budget")
    assert "waiting for a budget raise" in shown.out and "iterloop budget lower-budget --max-cost-usd" in shown.out
    await cli("cancel", "lower-budget")


async def test_iterloop_budget_checks_its_options_before_sending_anything(cli: Cli) -> None:
    nothing = await cli("budget", "any-run")
    assert nothing.code == EXIT_USAGE and "nothing to change" in nothing.err
    grant = await cli("budget", "any-run", "--grant", "revise")
    assert grant.code == EXIT_USAGE and "expected LOOP=N" in grant.err
    duration = await cli("budget", "any-run", "--max-duration", "soon", "--json")
    assert duration.code == EXIT_USAGE and "give a duration such as 90s" in duration.json()["error"]


async def test_pause_holds_a_run_at_its_next_node_and_resume_lets_it_finish(cli: Cli) -> None:
    cli.write("gated.iter", GATED)
    started = await cli("run", "gated.iter", "--offline", "--run-id", "pausing")
    assert started.code == EXIT_WAITING, started.out + started.err
    paused = await cli("pause", "pausing", "--by", "ada")
    assert paused.code == EXIT_OK and "holds at its next node boundary" in paused.out
    again = await cli("pause", "pausing")
    assert again.code == EXIT_FAILED and "paused already (by ada)" in again.err
    answered = await cli("answer", "pausing", "--gate", "go", "--answer", "approved=true")
    assert answered.code == EXIT_OK, answered.err
    held = await until_status(cli, "pausing", "paused")
    assert held["paused_by"] == "ada" and held["nodes"]["writer"]["visits"] == 0
    listed = await cli("list", "--status", "paused", "--json")
    assert "pausing" in listed.out
    resumed = await cli("resume", "pausing", "--json")
    assert resumed.code == EXIT_OK and resumed.json()["paused"] is False
    assert (await until_status(cli, "pausing", "finished"))["nodes"]["writer"]["visits"] == 1


async def test_live_control_of_an_ended_run_is_refused(cli: Cli) -> None:
    cli.write("gated.iter", GATED)
    await cli("run", "gated.iter", "--offline", "--run-id", "ended-run")
    await cli("cancel", "ended-run")
    result = await cli("pause", "ended-run")
    assert result.code == EXIT_FAILED and "has ended (cancelled); there is nothing to pause" in result.err
