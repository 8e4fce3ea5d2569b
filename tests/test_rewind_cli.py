"""`iterloop rewind` and `iterloop fork` against the session's dev server (an in-test offline worker).

The growth loop's failure mode: the planner's plan passes its schema, a person approves it, and
only the node after the gate fails on it. `retry` repeats the failure; `rewind --to planner` with a
fixed script runs the planner again, opens the gate again (the earlier answer is not reused) and,
answered, finishes. `fork --at apply` starts a new run at the node after the gate with the
planner's and the gate's outputs.
"""

from __future__ import annotations

from typing import Any

from cli_harness import Cli
from test_run_cli import inspect_json, wait_for_status

from workflows.contract import rewind as R
from workflows.contract.state import Answer, Checkpoint, NodeState, RunState

PLAN_APPLY = """\
vars:
  env: string = "prod"

schema plan:
  flag_key: string

schema decision:
  approved: bool

agent planner:
  model: "scripted"
  output: plan

human approval:
  output: decision

tool apply:
  command: "case {{outputs.planner.flag_key}} in *' '*) echo 'flag key has spaces' >&2; exit 3;; esac; echo applied {{outputs.planner.flag_key}} to {{vars.env}}"

workflow growth:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.flag_key}}" }
  approval -> apply when approved
  approval -> fail when not approved
  apply -> done
"""


async def parked_after_approval(cli: Cli, run_id: str) -> None:
    """Run PLAN_APPLY with a plan whose flag key has a space: approved, then `apply` parks."""
    cli.write("growth.iter", PLAN_APPLY)
    cli.write("bad.yaml", 'planner: {flag_key: "new checkout"}\n')
    started = await cli("run", "growth.iter", "--offline", "--script", "bad.yaml", "--run-id", run_id)
    assert started.code == 3, started.out + started.err
    answered = await cli("answer", run_id, "--gate", "approval", "--answer", "approved=true")
    assert answered.code == 0, answered.err
    doc = await wait_for_status(cli, run_id, "failed_resumable")
    assert doc["failures"][0]["node"] == "apply" and "flag key has spaces" in doc["failures"][0]["error"]


async def test_rewind_reruns_the_planner_reopens_the_gate_and_finishes(cli: Cli) -> None:
    await parked_after_approval(cli, "rw")
    refused = await cli("retry", "rw", "--node", "planner")
    assert refused.code == 2 and "not parked" in refused.err
    before = await inspect_json(cli, "rw")
    assert "planner" in before["rewind_points"] and "apply" in before["rewind_points"]

    unknown = await cli("rewind", "rw", "--to", "nope")
    assert unknown.code == 2 and "has no node 'nope'" in unknown.err

    cli.write("fixed.yaml", 'planner: {flag_key: "new_checkout"}\n')
    result = await cli("rewind", "rw", "--to", "planner", "--script", "fixed.yaml", "--json")
    assert result.code == 0, result.err
    rewound = result.json()
    assert rewound["run_id"] == "rw" and rewound["node"] == "planner" and rewound["outputs"] == []
    assert rewound["execution"] != rewound["replaced_execution"]

    doc = await wait_for_status(cli, "rw", "waiting_human")  # asked again, not auto-answered
    assert [g["gate"] for g in doc["open_gates"]] == ["approval"]
    assert doc["open_gates"][0]["interaction_id"].endswith("2")  # a new opening: visit 2
    assert doc["outputs"]["planner"]["flag_key"] == "new_checkout" and "apply" not in doc["outputs"]
    assert doc["nodes"]["planner"]["visits"] == 2 and doc["nodes"]["apply"]["status"] == "pending"
    assert doc["failures"] == [] and doc["executions"] == 2

    answered = await cli("answer", "rw", "--gate", "approval", "--answer", "approved=true")
    assert answered.code == 0, answered.err
    doc = await wait_for_status(cli, "rw", "finished")
    assert "applied new_checkout to prod" in doc["outputs"]["apply"]["result"]
    assert [a["gate"] for a in doc["answers"]] == ["approval", "approval"]  # both answers stay on record
    events = await cli("events", "rw", "--json")
    types = [line for line in events.out.splitlines() if '"run_rewound"' in line]
    assert len(types) == 1 and '"planner"' in types[0]


async def test_fork_starts_a_new_run_at_a_node_with_the_earlier_outputs(cli: Cli) -> None:
    await parked_after_approval(cli, "fk-src")
    cli.write("fixed.yaml", 'planner: {flag_key: "new_checkout"}\n')
    assert (await cli("rewind", "fk-src", "--to", "planner", "--script", "fixed.yaml")).code == 0
    await wait_for_status(cli, "fk-src", "waiting_human")
    assert (await cli("answer", "fk-src", "--gate", "approval", "--answer", "approved=true")).code == 0
    await wait_for_status(cli, "fk-src", "finished")

    result = await cli("fork", "fk-src", "--at", "apply", "--var", "env=staging", "--run-id", "fk", "--json")
    assert result.code == 0, result.err
    forked = result.json()
    assert forked["run_id"] == "fk" and forked["forked_from"] == "fk-src" and forked["node"] == "apply"
    assert forked["outputs"] == ["approval", "planner"] and forked["vars"] == {"env": "staging"}

    doc = await wait_for_status(cli, "fk", "finished")
    # the node after the fork point sees the earlier outputs ({{outputs.planner.flag_key}}) and the new var
    assert "applied new_checkout to staging" in doc["outputs"]["apply"]["result"]
    assert doc["nodes"]["planner"]["status"] == "succeeded" and doc["nodes"]["apply"]["visits"] == 3  # visits go on counting
    assert doc["answers"] == [] and doc["open_gates"] == []
    events = (await cli("events", "fk", "--json")).out.splitlines()
    assert '"run_forked"' in events[0]
    source = await inspect_json(cli, "fk-src")
    assert source["status"] == "finished" and source["vars"] == {"env": "prod"}

    taken = await cli("fork", "fk-src", "--at", "apply", "--run-id", "fk")
    assert taken.code == 2 and "already exists" in taken.err
    nowhere = await cli("fork", "fk-src", "--at", "done")
    assert nowhere.code == 0, nowhere.err  # `done` was entered on the main walk: a fork there just ends


# -- the pure part: the state before a node ------------------------------------------------------


def _state(**changes: Any) -> RunState:
    base = RunState(next_node="a", vars={}, outputs={}, history={}, artifacts={}, artifact_versions={},
                    loop_counters={}, rr_counters={}, budget_used={}, budget_warned=[], nodes={}, answers=[],
                    early_answers={}, events=[], seq=0, started_at="", executions=1)
    return base.model_copy(update=changes)


def test_state_before_cuts_histories_by_count_even_when_trimmed() -> None:
    from runs import compile_ok

    wf = compile_ok("""
        agent a:
          model: "scripted"
          publish: draft
        agent b:
          model: "scripted"
        workflow w:
          entry: a
          a -> b
          b -> done
    """)
    state = _state(
        # `a` produced 5 outputs, the first 2 trimmed; the checkpoint of b's latest visit saw 4 of them
        history={"a": [{"n": 3}, {"n": 4}, {"n": 5}], "b": [{"m": 1}, {"m": 2}]},
        history_trimmed={"a": 2}, outputs={"a": {"n": 5}, "b": {"m": 2}}, artifacts={"draft": {"n": 5}},
        loop_counters={"again": 2}, early_answers={"gate": Answer(gate="gate", answers={"ok": True})},
        nodes={"a": NodeState(status="succeeded", visits=5), "b": NodeState(status="running", visits=3)},
        checkpoints={"a": Checkpoint(seq=40, visit=5, produced={"a": 4, "b": 2}),
                     "b": Checkpoint(seq=30, visit=3, produced={"a": 4, "b": 2}, statuses={"a": "succeeded"},
                                     loop_counters={"again": 1})})
    before = R.state_before(state, wf, "b")
    assert before.history["a"] == [{"n": 3}, {"n": 4}] and before.outputs == {"a": {"n": 4}, "b": {"m": 2}}
    assert before.artifacts == {"draft": {"n": 4}} and before.loop_counters == {"again": 1}
    assert before.nodes["b"].status == "pending" and before.nodes["b"].visits == 3
    assert list(before.checkpoints) == [] and before.next_node == "b"
    assert before.early_answers == {}  # an answer queued before the rewind is not reused
    assert R.rewind_points(state) == ["b", "a"]
    try:
        R.state_before(state.model_copy(update={"history_trimmed": {"a": 4}}), wf, "b")
    except R.RewindError as exc:
        assert "no longer kept" in str(exc)
    else:
        raise AssertionError("expected a RewindError")
