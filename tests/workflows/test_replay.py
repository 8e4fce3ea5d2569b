"""GraphRun stays deterministic: recorded histories replay against the current code.

The corpus in `tests/histories/` (see its README) holds finished runs of every kind of history
the interpreter produces; a change to GraphRun that would break runs already in flight fails
here. The live test replays a run made by the current code, for nondeterminism the corpus
cannot show yet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runs import finish, running_worker, start, wait_for
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from runtime.connect import DATA_CONVERTER
from worker import workflow_runner
from workflows.contract.state import Answer
from workflows.graph_run import GraphRun

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
CORPUS = sorted(HISTORIES.glob("*.json"))
#: capture.py runs scenario NAME as workflow id `corpus-NAME`; chains are saved as NAME.<n>.json.
ID_PREFIX = "corpus-"


def replayer() -> Replayer:
    # The worker's own sandbox configuration: replay must see exactly what the worker runs.
    return Replayer(workflows=[GraphRun], data_converter=DATA_CONVERTER, workflow_runner=workflow_runner())


def load(path: Path) -> WorkflowHistory:
    scenario = path.name.split(".", 1)[0]
    return WorkflowHistory.from_json(ID_PREFIX + scenario, path.read_text())


def test_corpus_has_every_kind_of_history() -> None:
    names = {p.name.split(".", 1)[0] for p in CORPUS}
    assert {"continue_as_new", "cancelled_at_gate", "gate_answered_by_update", "wait_all_parked_then_retried"} <= names
    assert len([p for p in CORPUS if p.name.startswith("continue_as_new.")]) > 1, "a whole continue-as-new chain"


@pytest.mark.parametrize("path", CORPUS, ids=[p.name.removesuffix(".json") for p in CORPUS])
async def test_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    result = await replayer().replay_workflow(load(path))  # raises on a nondeterminism error
    assert result.replay_failure is None


LIVE = """
schema verdict:
  approved: bool
agent draft:
  model: "scripted"
judge check:
  model: "scripted"
  output: verdict
router split:
  mode: fan_out_all
wait pause:
  duration: "1s"
human approval:
  output: verdict
tool shout:
  command: "echo hi"
join merge:
  strategy: wait_all
  require: [pause, approval, shout]
workflow live:
  entry: draft
  draft -> check
  check -> split when approved
  check -> draft when not approved as redo(2)
  check -> fail
  split -> pause
  split -> approval
  split -> shout
  pause -> merge
  approval -> merge with { ok: "{{outputs.approval.approved}}" }
  shout -> merge with { said: "{{outputs.shout.result}}" }
  merge -> done
"""


async def test_fresh_run_replays_its_own_history(temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, LIVE,
                             script={"check": [{"approved": False}, {"approved": True}]})
        await wait_for(handle, lambda v: v.status == "waiting_human")
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True}))
        result = await finish(handle)
        history = await handle.fetch_history()
    assert result.status == "finished" and result.outputs["merge"] == {"ok": True, "said": "hi"}
    replayed = await replayer().replay_workflow(history)
    assert replayed.replay_failure is None
