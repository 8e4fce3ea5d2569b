"""The runtime commands (`run`, `answer`, `inspect`, `list`, `events`, `report`, `retry`, `cancel`).

Integration tests run `iterloop` as a real subprocess against the session's dev server, with an
in-test worker on a fresh task queue (so `run` finds a poller and starts no worker of its own),
except the one test that checks the background worker. Unit tests cover the pure parts: the
Markdown report, event descriptions and `--var` parsing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli, Result, cli_env  # noqa: F401

import dsl
from runtime.command_errors import UsageError
from runtime.report import describe_event, format_event_line, render_report
from runtime.run_inputs import parse_answer_assignments, parse_var_assignments, resolve_env_defaults
from workflows.contract.messages import Usage
from workflows.contract.state import AnswerRecord, Event, Failure, NodeState, RunView

REPO = Path(__file__).resolve().parent.parent

REVIEW = """\
vars:
  topic: string = "${ITERLOOP_TEST_TOPIC}"

schema verdict:
  approved: bool
  summary: string

agent writer:
  model: "scripted"
  output: verdict
  publish: draft

judge reviewer:
  model: "scripted"
  output: verdict

workflow review:
  budget:
    max_tokens: 100000
    max_iterations: 20
  entry: writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(2)
  reviewer -> fail
"""

REVIEW_SCRIPT = """\
writer:
  - {approved: true, summary: "v1"}
  - {approved: true, summary: "v2"}
reviewer:
  - {approved: false, summary: "too short"}
  - {approved: true, summary: "good"}
"""

GATE = """\
schema plan:
  text: string

schema decision:
  approved: bool
  level: string [enum: "low", "high"]

prompt ask:
  Approve {{input.plan}}?

agent planner:
  model: "scripted"
  output: plan

human approval:
  instructions: ask
  output: decision

workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""

SHELL = """\
vars:
  marker: string

tool check:
  command: "test -f {{vars.marker}} || { echo 'marker missing' >&2; exit 3; }"

workflow guarded:
  entry: check
  check -> done
"""


async def eventually(check: Any, *, timeout: float = 20, interval: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy (visibility and retries take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await asyncio.sleep(interval)


async def inspect_json(cli: Cli, run_id: str) -> dict[str, Any]:
    result = await cli("inspect", run_id, "--json")
    assert result.code == 0, result.err
    return result.json()


async def wait_for_status(cli: Cli, run_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        doc = await inspect_json(cli, run_id)
        return doc if doc["status"] == status else None

    return await eventually(reached)


async def gated_run(cli: Cli, run_id: str) -> Result:
    """A run of GATE, followed until it stops at the gate (no TTY: exit 3)."""
    cli.write("gate.iter", GATE)
    result = await cli("run", "gate.iter", "--offline", "--run-id", run_id)
    assert result.code == 3, result.out + result.err
    return result


# -- run -----------------------------------------------------------------------------------------


async def test_run_with_a_script_streams_events_and_exits_0(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    result = await cli("run", "review.iter", "--script", "script.yaml", "--run-id", "review-ok")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0] == "started run review-ok (workflow review, file review.iter)"
    assert any("reviewer" in line and "→ writer (when not approved) [loop revise, iteration 1]" in line
               for line in lines)
    assert any("writer" in line and "started · llm node (visit 2)" in line for line in lines)
    assert lines[-2].startswith("run review-ok finished in") and "(scripted model)" in lines[-2]
    assert lines[-1] == "report: iterloop report review-ok"
    assert "background worker" not in result.err  # the in-test worker polls the queue


async def test_offline_run_uses_the_script_beside_the_file_and_says_so(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("review.script.yaml", REVIEW_SCRIPT)
    result = await cli("run", "review.iter", "--offline", "--run-id", "review-beside")
    assert result.code == 0, result.out + result.err
    assert "iterloop: offline: model outputs from review.script.yaml (found beside the file" in result.err
    assert "[loop revise, iteration 1]" in result.out  # the script's first review rejects


async def test_an_explicit_script_wins_over_the_one_beside_the_file(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    # the script beside the file rejects every draft: the run would end at `fail` (exit 1)
    cli.write("review.script.yaml", "writer: {approved: true, summary: 'x'}\nreviewer: {approved: false, summary: 'no'}\n")
    cli.write("script.yaml", REVIEW_SCRIPT)
    result = await cli("run", "review.iter", "--offline", "--script", "script.yaml", "--run-id", "review-explicit")
    assert result.code == 0, result.out + result.err
    assert "found beside the file" not in result.err


async def test_run_resolves_env_in_var_defaults_at_start(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    assert (await cli("run", "review.iter", "--script", "script.yaml", "--run-id", "review-env")).code == 0
    doc = await inspect_json(cli, "review-env")
    assert doc["vars"]["topic"] == "durable loops"


async def test_run_stops_at_a_gate_without_a_tty_and_prints_the_answer_command(cli: Cli) -> None:
    result = await gated_run(cli, "gate-wait")
    assert "run gate-wait waits for a human answer at gate 'approval':" in result.out
    assert "Approve planner.text?" in result.out
    assert "expected: approved (bool: true/false), level (string, one of low, high)" in result.out
    assert "iterloop answer gate-wait --gate approval --answer approved=… --answer level=…" in result.out


async def test_run_with_compile_errors_exits_1_with_diagnostics(cli: Cli) -> None:
    cli.write("broken.iter", "agent x:\n  model: \"m\"\n  output: nope\nworkflow w:\n  entry: x\n  x -> done\n")
    result = await cli("run", "broken.iter")
    assert result.code == 1
    assert "broken.iter:3:" in result.err and "error" in result.err


async def test_run_with_a_bad_var_value_exits_2_naming_the_var(cli: Cli) -> None:
    cli.write("typed.iter", "vars:\n  days: int = 28\nagent a:\n  model: \"scripted\"\n"
                            "workflow w:\n  entry: a\n  a -> done\n")
    result = await cli("run", "typed.iter", "--var", "days=soon")
    assert result.code == 2
    assert "--var days" in result.err and "int" in result.err


async def test_run_detach_starts_a_background_worker_and_the_next_run_reuses_it(bare_cli: Cli) -> None:
    cli = bare_cli
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    state_file = Path(cli.env["ITERLOOP_HOME"]) / "worker.json"
    try:
        first = await cli("run", "review.iter", "--script", "script.yaml", "--detach", "--json", "--offline")
        assert first.code == 0, first.err
        started = first.json()
        assert started["worker"]["state"] == "started"
        pid = started["worker"]["pid"]
        [record] = json.loads(state_file.read_text())["workers"]
        # offline runs (and runs with a script) have their own task queue, so this worker serves no real run
        assert record["pid"] == pid and record["task_queue"] == cli.env["ITERLOOP_TASK_QUEUE"] + "-offline"
        assert record["offline"] and record["fingerprint"] == {"offline": True, "model_keys": [], "settings": {},
                                                               "model_vars": {}}
        assert Path(record["log_path"]).name == "worker.log"

        second = await cli("run", "review.iter", "--script", "script.yaml", "--detach", "--json")
        assert second.code == 0, second.err
        assert second.json()["worker"]["state"] == "polling"
        assert [w["pid"] for w in json.loads(state_file.read_text())["workers"]] == [pid]

        for run in (started["run_id"], second.json()["run_id"]):
            await wait_for_status(cli, run, "finished")  # the background worker ran both
    finally:
        for record in json.loads(state_file.read_text())["workers"] if state_file.exists() else []:
            with_pid_gone(record["pid"])


def with_pid_gone(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


# -- answer --------------------------------------------------------------------------------------


async def test_answer_with_a_bad_value_exits_1_with_the_validators_message(cli: Cli) -> None:
    await gated_run(cli, "gate-bad")
    result = await cli("answer", "gate-bad", "--gate", "approval", "--answer", "approved=maybe",
                       "--answer", "level=low")
    assert result.code == 1
    assert "answer rejected: gate 'approval' field 'approved' expects bool, got 'maybe'" in result.err
    assert (await inspect_json(cli, "gate-bad"))["status"] == "waiting_human"  # nothing recorded


async def test_answer_for_an_unknown_gate_names_the_gates(cli: Cli) -> None:
    await gated_run(cli, "gate-unknown")
    result = await cli("answer", "gate-unknown", "--gate", "aproval", "--answer", "approved=true")
    assert result.code == 1
    assert "'aproval' is not a human gate" in result.err and "approval" in result.err


async def test_answer_resumes_the_run_to_finished(cli: Cli) -> None:
    await gated_run(cli, "gate-good")
    result = await cli("answer", "gate-good", "--gate", "approval", "--answer", "approved=yes",
                       "--answer", "level=high", "--by", "ada")
    assert result.code == 0, result.err
    assert "recorded the answer for gate 'approval' of run gate-good (by ada)" in result.out
    doc = await wait_for_status(cli, "gate-good", "finished")
    assert [(a["gate"], a["answered_by"], a["answers"]) for a in doc["answers"]] == [
        ("approval", "ada", {"approved": True, "level": "high"})]


async def test_answer_from_a_file_by_signal(cli: Cli) -> None:
    await gated_run(cli, "gate-signal")
    cli.write("answers.yaml", "approved: false\nlevel: low\n")
    result = await cli("answer", "gate-signal", "--gate", "approval", "--answers-file", "answers.yaml",
                       "--signal", "--by", "slack:U1")
    assert result.code == 0, result.err
    doc = await wait_for_status(cli, "gate-signal", "failed")  # `approval -> fail when not approved`
    assert doc["answers"][0]["answered_by"] == "slack:U1"


# -- inspect, list, events, report ----------------------------------------------------------------


async def test_inspect_json_shows_nodes_open_gates_budget_and_ui_link(cli: Cli) -> None:
    await gated_run(cli, "gate-inspect")
    doc = await inspect_json(cli, "gate-inspect")
    assert doc["status"] == "waiting_human" and doc["current_nodes"] == ["approval"]
    assert doc["nodes"]["planner"] == {"kind": "agent", "visits": 1, "status": "succeeded", "attempts": 0,
                                       "tokens": doc["nodes"]["planner"]["tokens"], "cached_tokens": 0,
                                       "model_calls": 1, "cost_usd": 0.0, "model": "scripted", "error": "",
                                       "unpriced_calls": 0}
    assert doc["nodes"]["planner"]["tokens"] > 0
    [gate] = doc["open_gates"]
    assert gate["gate"] == "approval" and gate["instructions"] == "Approve planner.text?"
    assert [f["name"] for f in gate["fields"]] == ["approved", "level"]
    assert gate["answer_command"].startswith("iterloop answer gate-inspect --gate approval")
    assert {row["dimension"] for row in doc["budget"]} >= {"tokens", "cost_usd", "iterations", "duration_s"}
    assert doc["ui_url"].endswith("/namespaces/default/workflows/gate-inspect")


async def test_inspect_text_shows_the_node_table_and_the_answer_command(cli: Cli) -> None:
    await gated_run(cli, "gate-text")
    result = await cli("inspect", "gate-text")
    assert result.code == 0, result.err
    assert "status     waiting_human" in result.out
    assert "NODE" in result.out and "VISITS" in result.out and "TOKENS" in result.out
    assert "answer:   iterloop answer gate-text --gate approval" in result.out
    assert "Web UI     http://localhost:" in result.out


async def test_unknown_run_id_exits_2_with_a_clear_message(cli: Cli) -> None:
    for command in ("inspect", "events", "report", "cancel", "retry"):
        result = await cli(command, "no-such-run")
        assert result.code == 2, (command, result.err)
        assert "no run 'no-such-run' in namespace 'default'" in result.err


async def test_list_filters_by_status(cli: Cli) -> None:
    await gated_run(cli, "gate-list")

    async def listed(status: str) -> list[str]:
        result = await cli("list", "--status", status, "--json", "--limit", "100")
        assert result.code == 0, result.err
        return [row["run_id"] for row in result.json()]

    rows = await eventually(lambda: _contains(listed("waiting_human"), "gate-list"))
    assert "gate-list" in rows
    assert "gate-list" not in await listed("finished")
    table = await cli("list", "--status", "waiting_human")
    assert table.out.splitlines()[0].split() == ["ID", "WORKFLOW", "STATUS", "STARTED", "COST"]
    assert any(line.startswith("gate-list ") and " gated " in line for line in table.out.splitlines())


async def _contains(rows: Any, run_id: str) -> list[str] | None:
    found = await rows
    return found if run_id in found else None


async def test_list_rejects_an_unknown_status(cli: Cli) -> None:
    result = await cli("list", "--status", "sleeping")
    assert result.code == 2 and "unknown status 'sleeping'" in result.err


async def test_events_json_is_one_event_per_line(cli: Cli) -> None:
    await gated_run(cli, "gate-events")
    result = await cli("events", "gate-events", "--json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[0]["type"] == "run_started"
    assert events[-1] == {**events[-1], "type": "human_input_requested", "node": "approval"}


async def test_report_has_the_summary_and_the_per_node_table(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    assert (await cli("run", "review.iter", "--script", "script.yaml", "--run-id", "review-report")).code == 0
    result = await cli("report", "review-report", "--output", "report.md")
    assert result.code == 0, result.err
    text = (cli.cwd / "report.md").read_text()
    assert "| Workflow | review (`review.iter`) |" in text
    assert "| Status | finished: reached done |" in text
    assert "| Model calls | 4 |" in text
    assert "## Timeline" in text and "## Tokens and cost per node" in text
    assert "| `draft` | writer | 1 |" in text  # the artifact the writer published (versions 0 and 1)
    assert any(line.startswith("| reviewer | 2 | succeeded |") for line in text.splitlines())


async def test_report_and_inspect_show_each_nodes_final_output(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    assert (await cli("run", "review.iter", "--script", "script.yaml", "--run-id", "review-outputs",
                      "--detach")).code == 0
    await wait_for_status(cli, "review-outputs", "finished")
    report = await cli("report", "review-outputs")
    assert report.code == 0, report.err
    outputs = report.out.split("## Outputs", 1)[1].split("## Timeline", 1)[0]
    assert "### writer" in outputs and "- **summary**: v2" in outputs
    assert "### reviewer" in outputs and "- **summary**: good" in outputs
    doc = (await cli("report", "review-outputs", "--json")).json()
    assert doc["exit_code"] == 0 and doc["status"] == "finished" and doc["cost_complete"] is True
    assert doc["outputs"]["reviewer"] == {**doc["outputs"]["reviewer"], "approved": True, "summary": "good"}
    assert "_session_id" not in outputs  # the runtime's own field (the timeline's event lines keep it)
    assert doc["markdown"] == report.out and doc["summary"] == []
    text = await cli("inspect", "review-outputs")
    assert text.code == 0, text.err
    section = text.out.split("\noutputs\n", 1)[1]
    assert "  writer\n    approved: true\n    summary: v2" in section


async def test_run_json_reports_compile_and_var_errors_as_one_document(cli: Cli) -> None:
    cli.write("bad.iter", "agent a:\n  output: nope\nworkflow w:\n  entry: a\n  a -> done\n")
    bad = await cli("run", "bad.iter", "--json")
    assert bad.code == 1
    doc = bad.json()
    assert doc["exit_code"] == 1 and doc["ok"] is False and "C002" in {d["code"] for d in doc["diagnostics"]}
    assert "[C002]" in bad.err  # the diagnostics are on stderr as well
    cli.write("review.iter", REVIEW)
    wrong = await cli("run", "review.iter", "--json", "--var", "nope=1")
    assert wrong.code == 2
    assert wrong.json() == {"error": wrong.json()["error"], "exit_code": 2} and "nope" in wrong.json()["error"]
    missing = await cli("run", "nowhere.iter", "--json")
    assert missing.code == 2 and missing.json()["exit_code"] == 2


async def test_events_follow_ends_with_the_runs_exit_code_when_it_parks_or_waits(cli: Cli) -> None:
    cli.write("guarded.iter", SHELL)
    parked = await cli("run", "guarded.iter", "--var", f"marker={cli.cwd / 'absent'}", "--run-id", "guarded-follow")
    assert parked.code == 4, parked.out + parked.err
    followed = await cli("events", "guarded-follow", "--follow", timeout=30)
    assert followed.code == 4, followed.out + followed.err
    assert "failed" in followed.out and "run guarded-follow is failed_resumable" in followed.err
    await gated_run(cli, "gate-follow")
    waiting = await cli("events", "gate-follow", "--follow", "--json", timeout=30)
    assert waiting.code == 3, waiting.err
    assert json.loads(waiting.out.splitlines()[-1])["type"] == "human_input_requested"
    assert (await cli("answer", "gate-follow", "--gate", "approval", "--answer", "approved=true",
                      "--answer", "level=low")).code == 0
    await wait_for_status(cli, "gate-follow", "finished")
    assert (await cli("events", "gate-follow", "--follow", timeout=30)).code == 0


async def test_the_init_scaffold_runs_offline_stops_at_its_gate_and_finishes_once_answered(cli: Cli) -> None:
    assert (await cli("init", "proj")).code == 0
    project = cli.cwd / "proj"
    readme = (project / "README.md").read_text()
    for command in ("iterloop validate hello.iter", "iterloop run hello.iter --offline",
                    "iterloop answer RUN --gate publish_gate", "export ANTHROPIC_API_KEY", "iterloop run hello.iter "):
        assert command in readme, command
    result = await cli("run", "proj/hello.iter", "--offline", "--run-id", "hello-offline")
    assert result.code == 3, result.out + result.err
    assert "iterloop answer hello-offline --gate publish_gate" in result.out
    answered = await cli("answer", "hello-offline", "--gate", "publish_gate", "--answer", "approved=true",
                         "--answer", "comment=ship it")
    assert answered.code == 0, answered.err
    doc = await wait_for_status(cli, "hello-offline", "finished")
    assert doc["nodes"]["reviewer"]["visits"] == 2 and doc["artifacts"]["paragraph"]["approved"] is True


# -- recovery ------------------------------------------------------------------------------------


async def test_retry_reruns_a_parked_shell_node_once_fixed(cli: Cli) -> None:
    marker = cli.cwd / "marker"
    cli.write("guarded.iter", SHELL)
    result = await cli("run", "guarded.iter", "--var", f"marker={marker}", "--run-id", "guarded")
    assert result.code == 4, result.out + result.err
    assert "run guarded is parked" in result.out and "marker missing" in result.out
    assert "iterloop retry guarded --node check" in result.out

    wrong = await cli("retry", "guarded", "--node", "nope")
    assert wrong.code == 2 and "parked nodes: check" in wrong.err

    marker.write_text("fixed")
    result = await cli("retry", "guarded", "--node", "check")
    assert result.code == 0, result.err
    doc = await wait_for_status(cli, "guarded", "finished")
    assert doc["nodes"]["check"]["visits"] == 2 and doc["failures"] == []


async def test_cancel_ends_the_run_as_cancelled(cli: Cli) -> None:
    await gated_run(cli, "gate-cancel")
    result = await cli("cancel", "gate-cancel")
    assert result.code == 0, result.err
    assert "cancelled run gate-cancel" in result.out
    assert (await inspect_json(cli, "gate-cancel"))["status"] == "cancelled"
    again = await cli("cancel", "gate-cancel")
    assert again.code == 1 and "already ended (cancelled)" in again.err


# -- pure parts: --var parsing, the report, event lines ------------------------------------------

TYPED = """\
vars:
  name: string = "x"
  days: int = 28
  alpha: float = 0.05
  auto: bool = false
  metrics: string[] = ["a"]
  split: json = {"a": 1}
  home: string = "${ITERLOOP_TEST_HOME}/data"
agent a:
  model: "scripted"
workflow typed:
  entry: a
  a -> done
"""


def typed_workflow() -> dsl.Workflow:
    result = dsl.check_source(TYPED)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    return result.workflow


def test_vars_are_typed_by_their_declaration() -> None:
    values = parse_var_assignments(["name=42", "days=7", "alpha=1", "auto=true", 'metrics=["x","y"]',
                                    'split={"b": [1]}'], typed_workflow())
    assert values == {"name": "42", "days": 7, "alpha": 1.0, "auto": True, "metrics": ["x", "y"],
                      "split": {"b": [1]}}


@pytest.mark.parametrize(("assignment", "message"), [
    ("days=soon", "--var days: 'soon' is not valid JSON; var 'days' is int"),
    ("days=1.5", "var 'days' is int, so give an integer"),
    ("auto=1", "var 'auto' is bool, so give true or false"),
    ('metrics=[1]', "var 'metrics' is string[]"),
    ("nope=1", "workflow 'typed' declares no var 'nope'; declared vars: name, days"),
    ("days", "--var 'days' is not NAME=VALUE"),
])
def test_bad_var_values_name_the_var(assignment: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_var_assignments([assignment], typed_workflow())
    assert message in str(err.value)


def test_env_in_var_defaults_is_resolved_unless_the_var_is_given() -> None:
    wf = typed_workflow()
    resolved, warnings = resolve_env_defaults(wf, {}, {"ITERLOOP_TEST_HOME": "/srv"})
    assert resolved == {"home": "/srv/data"} and warnings == []
    resolved, warnings = resolve_env_defaults(wf, {}, {})
    assert resolved == {"home": "/data"} and "ITERLOOP_TEST_HOME is not set" in warnings[0]
    assert resolve_env_defaults(wf, {"home": "/given"}, {}) == ({}, [])


def test_answer_assignments_keep_text_and_refuse_duplicates() -> None:
    assert parse_answer_assignments(["approved=yes", "note=a=b"]) == {"approved": "yes", "note": "a=b"}
    with pytest.raises(UsageError, match="given twice"):
        parse_answer_assignments(["a=1", "a=2"])


def _event(seq: int, type_: str, node: str = "", second: int = 0, **data: Any) -> Event:
    return Event(seq=seq, time=f"2026-01-02T10:00:{second:02d}+00:00", type=type_, node=node, data=data)


def _view(**changes: Any) -> RunView:
    base: dict[str, Any] = dict(
        workflow="review", source="review.iter", status="finished", current_nodes=[],
        nodes={"writer": NodeState(status="succeeded", visits=2, usage=Usage(
                   model="claude-x", input_tokens=1000, output_tokens=200, cost_usd=0.0123)),
               "reviewer": NodeState(status="succeeded", visits=1, usage=Usage(
                   model="claude-x", input_tokens=300, output_tokens=50, cost_usd=0.004)),
               "gate": NodeState(status="succeeded", visits=1), "unused": NodeState()},
        outputs={}, artifacts={"draft": {"text": "v2"}}, vars={}, loop_counters={},
        budget_used={"tokens": 1550, "cost_usd": 0.0163, "iterations": 3},
        usage=Usage(model="claude-x", input_tokens=1300, output_tokens=250, cost_usd=0.0163),
        open_gates=[], failures=[], answers=[AnswerRecord(gate="gate", interaction_id="i", answers={"ok": True},
                                                          answered_by="ada", answered_at="2026-01-02T10:00:30+00:00")],
        last_seq=5, reason="reached done")
    base.update(changes)
    return RunView(**base)


EVENTS = [
    _event(1, "run_started", workflow="review", entry="writer"),
    _event(2, "node_started", "writer", kind="agent", visit=1),
    _event(3, "artifact_written", "writer", 5, publish="draft", version=0),
    _event(4, "edge_selected", "reviewer", 20, to="writer", condition="approved", negated=True, loop="revise",
           iteration=1),
    _event(5, "run_finished", "done", 42),
]


def test_report_summary_has_workflow_status_duration_tokens_cost_and_model_calls() -> None:
    text = render_report(_view(), EVENTS, run_id="review-1")
    assert text.startswith("# Run report: review (`review-1`)")
    for row in ("| Workflow | review (`review.iter`) |", "| Status | finished: reached done |",
                "| Duration | 42.0s |", "| Tokens | 1,550 (1,300 in, 250 out) |", "| Cost | $0.0163 |",
                "| Model calls | 3 |"):
        assert row in text, row


def test_report_has_a_timeline_an_artifact_table_and_a_per_node_table() -> None:
    text = render_report(_view(), EVENTS)
    assert "| 10:00:20 | +20.0s | reviewer |  | → writer (when not approved) [loop revise, iteration 1] |" in text
    assert "| `draft` | writer | 0 | {\"text\": \"v2\"} |" in text
    assert "| writer | 2 | succeeded | 1,000 | 0 | 200 | 1,200 | $0.0123 | claude-x |" in text
    assert "| **total** | 4 |  | 1,300 | 0 | 250 | 1,550 | $0.0163 |  |" in text
    assert "unused" not in text  # nodes that never ran stay out of the table
    assert "| gate | ada |" in text


def test_report_counts_turns_cached_tokens_and_caching_savings() -> None:
    usage = Usage(model="claude-x", input_tokens=5000, cached_tokens=4000, output_tokens=300, reasoning_tokens=100,
                  cost_usd=0.0081, cache_savings_usd=0.0108, calls=5)
    text = render_report(_view(usage=usage), EVENTS, run_id="r")
    assert "| Tokens | 5,300 (5,000 in, 300 out, 4,000 of the input from the prompt cache, " \
           "100 of the output reasoning) |" in text
    assert "| Cost | $0.0081 (prompt caching saved $0.0108) |" in text
    assert "| Model calls | 5 |" in text  # turns, not visits, once the run counts them


def test_report_of_a_parked_run_gives_the_retry_command() -> None:
    view = _view(status="failed_resumable", reason="", failures=[Failure(node="check", error="exit 3 | oops")])
    text = render_report(view, EVENTS[:2], run_id="r")
    assert "| check |  | exit 3 \\| oops | `iterloop retry r --node check` |" in text
    assert "(so far)" in text


def test_event_lines_say_what_happened() -> None:
    assert describe_event(_event(1, "node_started", "w", kind="judge", visit=2)) == "started · llm judge (visit 2)"
    assert describe_event(_event(1, "budget_warning", dimension="tokens", used=85, limit=100)) == (
        "budget warning: tokens at 85 of 100")
    assert describe_event(_event(1, "run_budget_exceeded", reason="budget exceeded: tokens")) == (
        "run budget exceeded: budget exceeded: tokens")
    line = format_event_line(Event(seq=1, time="2026-01-02T10:00:05+00:00", type="branch_started", node="a",
                                   branch="split>a"))
    assert line.startswith("10:00:05  a") and line.endswith("[split>a]  branch started")


def test_an_llm_turn_line_formats_its_cost_like_every_other_cost() -> None:
    turn = {"turn": 1, "status": "final", "input_tokens": 1200, "output_tokens": 300}
    assert describe_event(_event(1, "llm_step_finished", "a", **turn, cost_usd=1.5)).endswith("300 out, $1.50)")
    assert describe_event(_event(1, "llm_step_finished", "a", **turn, cost_usd=0.0123)).endswith("300 out, $0.0123)")
    assert describe_event(_event(1, "llm_step_finished", "a", **turn, cost_usd=0.0, unpriced=True)).endswith(
        "300 out, unpriced)")


def test_report_shows_the_summary_block_and_each_output_long_values_folded() -> None:
    long = "word " * 100
    view = _view(outputs={"writer": {"summary": "v2", "body": long.strip(), "tags": ["a", "b"],
                                     "table": {str(i): i for i in range(40)}}})
    text = render_report(view, EVENTS, run_id="r", summary=["Verdict   SHIP_WINNER", "Why       it won"])
    result = text.split("## Result", 1)[1].split("## Outputs", 1)[0]
    assert "```text\nVerdict   SHIP_WINNER\nWhy       it won\n```" in result
    outputs = text.split("## Outputs", 1)[1].split("## Timeline", 1)[0]
    assert "### writer" in outputs and "- **summary**: v2" in outputs and '- **tags**: `["a", "b"]`' in outputs
    assert "- <details><summary><b>body</b> (499 characters)</summary>" in outputs
    assert "- <details><summary><b>table</b> (40 items)</summary>" in outputs and "```json" in outputs
    assert "## Result" not in render_report(_view(), EVENTS)  # no preset summary: no block
    assert "No node produced an output." in render_report(_view(), EVENTS)


def test_unpriced_model_calls_are_marked_and_the_cost_flagged_incomplete() -> None:
    from runtime.console import final_line
    from runtime.report import cost_text

    assert cost_text(0.0, 2) == "unpriced" and cost_text(0.5, 1) == "$0.5000 + unpriced"
    assert cost_text(0.5) == "$0.5000"
    nodes = {"writer": NodeState(status="succeeded", visits=1, usage=Usage(
                 model="house-model", input_tokens=100, output_tokens=10, calls=1, unpriced_calls=1)),
             "reviewer": NodeState(status="succeeded", visits=1, usage=Usage(
                 model="claude-x", input_tokens=100, output_tokens=10, cost_usd=0.004, calls=1))}
    usage = Usage(model="claude-x", input_tokens=200, output_tokens=20, cost_usd=0.004, calls=2, unpriced_calls=1)
    view = _view(nodes=nodes, usage=usage)
    text = render_report(view, EVENTS, run_id="r")
    assert "| Cost | $0.0040 + unpriced (incomplete: 1 model call unpriced" in text
    assert "| writer | 1 | succeeded | 100 | 0 | 10 | 110 | unpriced | house-model |" in text
    assert "| **total** | 2 |  | 200 | 0 | 20 | 220 | $0.0040 + unpriced |  |" in text
    line = final_line("r", "finished", view, EVENTS)
    assert "$0.0040 + unpriced (incomplete: 1 model call unpriced" in line


def test_inspect_text_marks_unpriced_costs_and_shows_outputs_and_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.console import print_inspection
    from runtime.run_models import BudgetRow, NodeDetail, RunDetail

    detail = RunDetail(
        run_id="r", workflow="w", source="w.iter", status="finished", reason="", execution_status="completed",
        task_queue="q", started_at=None, closed_at=None, current_nodes=[],
        nodes={"a": NodeDetail(kind="agent", visits=1, status="succeeded", attempts=1, tokens=10, cost_usd=0.0,
                               model="house-model", error="", unpriced_calls=1)},
        open_gates=[], failures=[], answers=[], usage=Usage(input_tokens=5, output_tokens=5, calls=1, unpriced_calls=1),
        budget=[BudgetRow(dimension="cost_usd", used=0.0, limit=1.0)], loop_counters={},
        outputs={"a": {"text": "hello"}}, artifacts={}, vars={}, executions=1, ui_url="http://ui",
        cost_complete=False, summary=["Verdict   ship"])
    print_inspection(detail)
    out = capsys.readouterr().out
    assert "unpriced" in out.split("\n\n")[1]  # the node table
    assert "cost       incomplete: 1 model call unpriced" in out
    assert "  cost_usd           unpriced of $1.00" in out
    assert "\nsummary\n  Verdict   ship\n" in out
    assert out.endswith("\noutputs\n  a\n    text: hello\n")


# -- settings the commands cannot use ---------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value", "args", "expected"), [
    ("ITERLOOP_TRACING", "jaeger", ["list"], "iterloop: ITERLOOP_TRACING='jaeger' is not one of off, otlp, console"),
    ("ITERLOOP_NOTIFY_EVENTS", "run_ended", ["inspect", "some-run"],
     "iterloop: ITERLOOP_NOTIFY_EVENTS names unknown event(s) run_ended"),
    ("ITERLOOP_LOG_LEVEL", "loud", ["worker"], "iterloop: ITERLOOP_LOG_LEVEL='LOUD' is not a log level"),
    ("ITERLOOP_UI_PORT", "eighty", ["cancel", "some-run"], "iterloop: ITERLOOP_UI_PORT='eighty' is not a TCP port"),
])
def test_a_setting_the_runtime_commands_cannot_use_is_one_line_and_exit_2(
        tmp_path: Path, variable: str, value: str, args: list[str], expected: str) -> None:
    result = _iterloop(*args, cwd=tmp_path, env={variable: value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("ITERLOOP_OPENAI_API", "grpc", "iterloop: ITERLOOP_OPENAI_API='grpc' is not one of chat, responses"),
    ("ITERLOOP_PRICES_FILE", "{missing}", "iterloop: "),
    ("ITERLOOP_TRACING", "jaeger", "iterloop: ITERLOOP_TRACING='jaeger'"),
])
def test_a_worker_that_cannot_use_its_settings_says_why_in_one_line(
        tmp_path: Path, variable: str, value: str, expected: str) -> None:
    env = {variable: value.replace("{missing}", str(tmp_path / "no-such-prices.yaml")),
           "TEMPORAL_ADDRESS": "127.0.0.1:1"}  # never reached: the configuration is checked first
    result = _iterloop("worker", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
    background = subprocess.run([sys.executable, "-m", "worker"], cwd=REPO, env=_clean_env(env), capture_output=True,
                                text=True, timeout=60)  # how `iterloop run` starts its background worker
    assert background.returncode == 2 and background.stderr.startswith(expected), background.stderr
    assert background.stderr.count("\n") == 1


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    names = ("ITERLOOP_", "TEMPORAL_", "OTEL_", "SLACK_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(names)}, **extra}


def _iterloop(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], cwd=REPO,
                          env={**_clean_env(env), "ITERLOOP_HOME": str(cwd / ".iterloop")}, capture_output=True,
                          text=True, timeout=60)
