"""The run service's parts that have one home now: the typed run view both the CLI and the API
serialise, start preparation (presets, vars, script) for both callers, following a run, listing.

No Temporal server here: the run view is built from a hand-made `state` and description, and the
followed run is a scripted handle. The end-to-end behaviour is in tests/test_run_cli.py and tests/api.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from runs import compile_ok
from temporalio.client import WorkflowExecutionStatus

from runtime.command_errors import EXIT_USAGE, InvalidFilter, InvalidScript, UsageError
from runtime.console import print_json
from runtime.run_models import RunDetail
from runtime.run_service import FoundRun, answer_message, run_detail, visibility_query, watch_events
from runtime.run_start import CompiledWorkflow, StartRequest, prepare_start
from runtime.settings import Settings
from workflows.contract.messages import Usage
from workflows.contract.state import WORKFLOW_TYPE, AnswerRecord, Event, Failure, Gate, NodeState, RunInput, RunView

GATED = """
vars:
  topic: string = "${ITERLOOP_TEST_TOPIC}"
  days: int = 14
  owner: string

schema plan:
  text: string

schema decision:
  approved: bool
  level: string [enum: "low", "high"]

prompt ask:
  Approve the plan for {{vars.topic}}?

agent planner:
  model: "scripted"
  output: plan

human approval:
  instructions: ask
  output: decision

workflow gated:
  budget:
    max_tokens: 1000
  entry: planner
  planner -> approval
  approval -> done when approved
  approval -> fail when not approved
"""

SETTINGS = Settings(ui_url="http://temporal-ui.test:8233")


# -- one run view for `iterloop inspect --json` and `GET /api/runs/{id}` ---------------------------


def _gated_view() -> tuple[RunView, RunInput]:
    wf = compile_ok(GATED)
    gate = Gate.model_validate({"gate": "approval", "interaction_id": "approval-1", "instructions": "Approve?",
                                "questions": {"plan": "v2", "_internal": 1}, "opened_at": "2026-01-02T10:00:05+00:00",
                                "schema": wf.schemas["decision"].model_dump()})
    view = RunView(
        workflow="gated", source="gated.iter", status="waiting_human", current_nodes=["approval"],
        nodes={"planner": NodeState(status="succeeded", visits=1, usage=Usage(
                   model="scripted", provider="scripted", input_tokens=10, output_tokens=5, calls=1)),
               "approval": NodeState(status="running", visits=1)},
        outputs={"planner": {"text": "v2"}}, artifacts={}, vars={"topic": "checkout", "days": 14, "owner": "ada"},
        loop_counters={}, budget_used={"tokens": 15, "cost_usd": 0.0, "iterations": 2},
        usage=Usage(model="scripted", provider="scripted", input_tokens=10, output_tokens=5, calls=1),
        open_gates=[gate], failures=[Failure(node="check", error="exit 3")],
        answers=[AnswerRecord(gate="earlier", interaction_id="e-1", answers={"ok": True}, answered_by="ada",
                              answered_at="2026-01-02T10:00:01+00:00")],
        last_seq=7)
    return view, RunInput(workflow=wf)


def _description() -> Any:
    return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING, task_queue="tq-1", close_time=None,
                           start_time=datetime(2026, 1, 2, 10, 0, tzinfo=UTC))


def _detail() -> RunDetail:
    view, run_input = _gated_view()
    return run_detail("gated-1", SETTINGS, _description(), view, run_input)


async def _served_by_the_api(detail: RunDetail) -> Any:
    """What a FastAPI route declared with `response_model=RunDetail` sends (as GET /api/runs/{id} is)."""
    app = FastAPI()

    @app.get("/run", response_model=RunDetail)
    async def get_run() -> RunDetail:
        return detail

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        return (await http.get("/run")).json()


async def test_inspect_json_and_the_api_serialise_the_same_run_view(capsys: pytest.CaptureFixture[str]) -> None:
    detail = _detail()
    print_json(detail.model_dump(mode="json"))  # what `iterloop inspect --json` prints
    printed = json.loads(capsys.readouterr().out)

    served = await _served_by_the_api(detail)

    assert printed == served
    assert RunDetail.model_validate(served) == detail  # and it reads back into the one model


async def test_the_run_view_has_what_the_cli_and_the_api_tests_assert() -> None:
    doc = await _served_by_the_api(_detail())
    assert list(doc) == ["run_id", "workflow", "source", "status", "reason", "execution_status", "task_queue",
                         "started_at", "closed_at", "current_nodes", "nodes", "open_gates", "failures", "answers",
                         "usage", "budget", "loop_counters", "outputs", "artifacts", "vars", "rewind_points",
                         "executions", "ui_url", "cost_complete", "summary", "paused_by", "budget_wait", "loop_grants"]
    assert doc["nodes"]["planner"] == {"kind": "agent", "visits": 1, "status": "succeeded", "attempts": 0,
                                       "tokens": 15, "cached_tokens": 0, "model_calls": 1, "cost_usd": 0.0,
                                       "model": "scripted", "error": "", "unpriced_calls": 0}
    assert doc["cost_complete"] is True and doc["usage"]["unpriced_calls"] == 0 and doc["summary"] == []
    [gate] = doc["open_gates"]
    assert [(f["name"], f["type"], f["enum_values"]) for f in gate["fields"]] == [
        ("approved", "bool", None), ("level", "string", ["low", "high"])]
    assert gate["answer_command"] == "iterloop answer gated-1 --gate approval --answer approved=… --answer level=…"
    assert doc["failures"] == [{"node": "check", "branch": "", "error": "exit 3", "error_type": "", "at": "",
                                "retry_command": "iterloop retry gated-1 --node check"}]
    assert doc["budget"][0] == {"dimension": "tokens", "used": 15, "limit": 1000}
    assert {row["dimension"] for row in doc["budget"]} == {"tokens", "cost_usd", "iterations", "duration_s"}
    assert (doc["execution_status"], doc["task_queue"], doc["started_at"]) == (
        "running", "tq-1", "2026-01-02T10:00:00+00:00")
    assert doc["ui_url"] == "http://temporal-ui.test:8233/namespaces/default/workflows/gated-1"


def test_without_the_run_input_the_view_has_no_kinds_and_no_limits() -> None:
    view, _ = _gated_view()
    detail = run_detail("gated-1", SETTINGS, _description(), view, None)
    assert detail.nodes["planner"].kind == "" and all(row.limit is None for row in detail.budget)


# -- preparing a start: the same rules for `iterloop run` and `POST /api/runs` ----------------------


def _request(**fields: Any) -> StartRequest:
    wf = compile_ok(GATED)
    compiled = CompiledWorkflow(workflow=wf, source="gated.iter", location="/srv/gated.iter")
    return StartRequest(**{"compiled": compiled, "origin": "a test", "given_by": "request", **fields})


def test_inputs_then_vars_win_and_each_caller_gives_vars_its_own_way() -> None:
    from_api = prepare_start(_request(inputs={"plan": "v1", "days": 1}, vars={"owner": "ada", "days": "7"}),
                             Settings())
    assert from_api.inputs["days"] == 7 and from_api.inputs["plan"] == "v1" and from_api.inputs["owner"] == "ada"
    from_cli = prepare_start(_request(given_by="command_line", input_json='{"plan": "v2", "days": 1}',
                                      var_assignments=["owner=grace", "days=8"]), Settings())
    assert (from_cli.inputs["days"], from_cli.inputs["plan"], from_cli.inputs["owner"]) == (8, "v2", "grace")


def test_a_missing_var_names_the_callers_syntax() -> None:
    with pytest.raises(UsageError, match=r"needs a value for var\(s\) owner; --var owner=…"):
        prepare_start(_request(given_by="command_line"), Settings())
    with pytest.raises(UsageError, match='needs a value for var\\(s\\) owner; give "owner" in "vars"'):
        prepare_start(_request(), Settings())


def test_env_defaults_resolve_from_the_callers_environment_and_say_what_is_withheld() -> None:
    prepared = prepare_start(_request(vars={"owner": "ada"}, env={"ITERLOOP_TEST_TOPIC": "checkout"}), Settings())
    assert prepared.inputs["topic"] == "checkout" and prepared.warnings == []
    withheld = prepare_start(_request(vars={"owner": "ada"}, withheld=lambda name: name.startswith("ITERLOOP_")),
                             Settings())
    assert withheld.inputs["topic"] == "" and "is not resolved here" in withheld.warnings[0]


def test_scripts_inline_from_a_file_or_offline() -> None:
    base: dict[str, Any] = {"vars": {"owner": "ada"}}
    assert prepare_start(_request(**base), Settings()).script is None
    assert prepare_start(_request(**base, offline=True), Settings()).script == {}
    assert prepare_start(_request(**base), Settings(offline=True)).script == {}
    given = {"planner": {"text": "v3"}}
    assert prepare_start(_request(**base, script=given), Settings()).script == given
    with pytest.raises(InvalidScript, match="planner") as refused:
        prepare_start(_request(**base, script={"planner": []}), Settings())
    assert refused.value.exit_code == EXIT_USAGE


def test_a_script_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "gated.script.yaml"
    path.write_text("planner: {text: from the file}\n", encoding="utf-8")
    prepared = prepare_start(_request(vars={"owner": "ada"}, script_file=path), Settings())
    assert prepared.script is not None and "planner" in prepared.script


def test_skip_gates_and_stop_after_become_run_options_and_notes() -> None:
    prepared = prepare_start(_request(vars={"owner": "ada"}, skip_gates=True, stop_after=["planner"]), Settings())
    assert prepared.run_options["stop_after"] == ["planner"]
    assert prepared.run_options["gate_answers"]["approval"]["approved"] is True
    assert any(note.startswith("--skip-gates") for note in prepared.notes)
    with pytest.raises(UsageError, match="--stop-after nope: workflow 'gated' has no node 'nope'"):
        prepare_start(_request(vars={"owner": "ada"}, stop_after=["nope"]), Settings())


# -- answers, listing, following ------------------------------------------------------------------


def test_an_answer_goes_to_the_gates_current_opening_unless_one_is_pinned() -> None:
    view, _ = _gated_view()
    assert answer_message(view, "approval", {"approved": True}, "ada", None).interaction_id == "approval-1"
    assert answer_message(view, "approval", {}, "ada", "approval-0").interaction_id == "approval-0"
    assert answer_message(view, "elsewhere", {}, "ada", None).interaction_id == ""


def test_an_answer_in_advance_is_bound_to_no_open_opening() -> None:
    view, _ = _gated_view()
    ahead = answer_message(view, "approval", {"approved": True}, "ada", None, in_advance=True)
    assert ahead.in_advance and ahead.interaction_id == ""


def test_the_visibility_query_asks_live_statuses_and_gates_of_running_executions() -> None:
    assert visibility_query(None) == f'WorkflowType="{WORKFLOW_TYPE}"'
    assert visibility_query("finished").endswith('IterloopStatus="finished"')
    assert visibility_query("waiting_human").endswith('ExecutionStatus="Running"')
    assert 'IterloopOpenGates="approval"' in visibility_query(None, gate="approval")


def test_a_filter_that_is_not_a_name_never_reaches_the_visibility_query() -> None:
    for gate in ('ap"proval', "a\\b", "x' OR '1'='1"):
        with pytest.raises(InvalidFilter, match="gate filter"):
            visibility_query(None, gate=gate)
    with pytest.raises(InvalidFilter, match="workflow filter"):
        visibility_query(None, workflow='growth"loop')


class _ScriptedRun:
    """A run whose `events` query returns one scripted batch per call; it ends with `run_finished`."""

    id = "run-1"

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches, self.seq, self.ended = batches, 0, False

    async def describe(self, rpc_timeout: Any = None) -> Any:
        status = WorkflowExecutionStatus.COMPLETED if self.ended else WorkflowExecutionStatus.RUNNING
        return SimpleNamespace(status=status)

    async def query(self, name: str, *args: Any, result_type: Any = None, rpc_timeout: Any = None) -> Any:
        if name == "events":
            batch = []
            for kind in self.batches.pop(0) if self.batches else []:
                self.seq += 1
                batch.append(Event(seq=self.seq, time="2026-01-01T00:00:00+00:00", type=kind))
                self.ended = self.ended or kind == "run_finished"
            return [e for e in batch if e.seq > args[0]]
        view, _ = _gated_view()
        return view.model_copy(update={"status": "finished" if self.ended else "running", "reason": "reached done",
                                       "open_gates": []})


async def test_following_a_run_yields_its_events_once_then_how_it_ended() -> None:
    run = _ScriptedRun([["run_started"], [], ["node_started", "node_finished"], ["run_finished"]])
    found = FoundRun(client=None, settings=Settings(), handle=run, desc=None)  # type: ignore[arg-type]

    batches = [b async for b in watch_events(found, 0, poll_seconds=0.001, status_seconds=3600)]

    seen = [e.type for b in batches for e in b.events]
    assert seen == ["run_started", "node_started", "node_finished", "run_finished"]
    assert [b.end for b in batches[:-1]] == [None] * (len(batches) - 1)
    assert batches[-1].end is not None and batches[-1].end.model_dump() == {
        "run_id": "run-1", "status": "finished", "reason": "reached done"}
