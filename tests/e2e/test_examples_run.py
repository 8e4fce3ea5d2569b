"""Every example runs to its end, offline, on the session's Temporal dev server.

Each `.iter` file under examples/ (except growth_loop.iter, which tests/e2e/test_growth_loop.py runs
through the CLI) is compiled as `iterloop validate` and `iterloop run` compile it and run by an
in-process offline worker: the scripted model (the `<stem>.script.yaml` beside the file when there
is one, else outputs generated from the schemas, as `iterloop run FILE --offline` does), builtin
tools for real (mock connector; flag store and learning documents in this test's directory),
shell commands for real (in this test's directory). Human gates are answered through the run's
`gate_answers` option: the approving answer `--skip-gates` derives from each gate's schema,
overridden per example where the story needs words. Each case states the status its example is
designed to end in and checks something specific in its outputs.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from runs import finish, running_worker, start, wait_for  # noqa: E402

import dsl  # noqa: E402
from activities.tools.registry import call_tool, registry  # noqa: E402
from dsl import ir  # noqa: E402
from runtime.presets import prepare_run, skip_gate_answers  # noqa: E402
from runtime.run_inputs import script_beside  # noqa: E402
from workflows.contract.scripts import load_script  # noqa: E402
from workflows.contract.state import Event, RunResult, RunView  # noqa: E402
from workflows.contract.tool_catalog import builtin_tool_names  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ALL_EXAMPLES = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.glob("**/*.iter"))
#: Run by tests/e2e/test_growth_loop.py (with its presets), not here.
OWN_TESTS = {"growth_loop.iter"}


@dataclass
class Run:
    """What a case's check gets: the run's result, final state and events, and the test's directory."""

    result: RunResult
    view: RunView
    events_seen: list[Event]
    tmp: Path

    def out(self, node: str) -> dict[str, Any]:
        return self.result.outputs[node]

    def events(self, kind: str, node: str = "") -> list[dict[str, Any]]:
        return [e.data for e in self.events_seen if e.type == kind and (not node or e.node == node)]


@dataclass(frozen=True)
class Case:
    """One example: what it is given, how it is designed to end, and what to check."""

    file: str                                                   # relative to examples/
    status: str                                                 # the run's final status
    ends_at: str                                                # the node it ends at
    check: Callable[[Run], Any]                                 # may be async
    inputs: Callable[[Path], dict[str, Any]] = lambda tmp: {}   # run inputs and --var values
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # gate → answer (else derived)
    config: str = ""                                            # a preset (relative to examples/), as --config
    setup: Callable[[Path], None] = lambda tmp: None
    needs: tuple[str, ...] = ()                                 # executables the example's shell nodes run


def flag_store(tmp: Path) -> dict[str, Any]:
    return {"name": "local", "settings": {"path": str(tmp / "flags.json")}}


def flags(tmp: Path) -> dict[str, Any]:
    path = tmp / "flags.json"
    return json.loads(path.read_text())["flags"] if path.exists() else {}


# -- the cases ------------------------------------------------------------------------------------


def check_guardrail_incident(run: Run) -> None:
    readout = run.out("read_results")
    assert [g["metric"] for g in readout["guardrails"]] == ["refund_rate", "checkout_error_rate", "p95_page_load_ms"]
    assert run.out("srm")["srm_detected"] is False
    assert len(run.out("guardrails")["messages"]) == 3
    assert run.out("oncall")["kill"] is True
    # flag_cli=echo: the shell node prints the flag command it would run, quoted values unquoted by sh
    assert run.out("kill_flag")["result"] == ("disable mobile-trust-badges --env production "
                                              "--reason refund guardrail not established")
    assert run.view.artifacts["incident_postmortem"]["follow_ups"]
    assert run.out("closer")["resolved"] is True


def check_experiment_health_check(run: Run) -> None:
    bundle = run.out("health")
    assert set(bundle) >= {"srm", "guardrails", "readout"}
    assert bundle["srm"]["srm_detected"] is False and bundle["guardrails"]["passed"] is True
    assert bundle["readout"]["decision"] in ("SHIP_WINNER", "KILL_LOSER", "CONTINUE", "INCONCLUSIVE")
    assert run.out("health_judge")["healthy"] is True
    assert "pause_flag" not in run.result.outputs  # healthy: nothing is paused


#: The mock connector's top anomaly (iOS checkout conversion) as detect_anomalies reports it, rounded.
IOS_ANOMALY = {"segment": "platform=ios", "metric": "checkout:checkout_start->purchase", "baseline_rate": 0.4068,
               "current_rate": 0.3026, "relative_change": -0.256, "severity": "high", "recent_daily_users": 1384}


async def check_hypothesis_triage(run: Run) -> None:
    assert run.out("specialists")["selected_routes"] == ["ux_expert", "pricing_expert"]
    assert "onboarding_expert" not in run.result.outputs and "lifecycle_expert" not in run.result.outputs
    # the tool loop: the UX specialist's first turn called a builtin tool, the second answered
    assert run.events("tool_called", "ux_expert") == [{"tool": "get_historical_experiments"}]
    assert run.out("ux_expert")["expected_impact"] == "large"
    assert run.out("pick_hypothesis")["approved"] is True
    expected = await call_tool("calculate_sample_size", {
        "baseline_rate": IOS_ANOMALY["current_rate"], "daily_users": IOS_ANOMALY["recent_daily_users"],
        "mde": 0.05, "alpha": 0.05, "power": 0.8})
    assert run.out("size_test") == expected


def check_experiment_launch_review(run: Run) -> None:
    assert run.out("compliance_check")["collects_personal_data"] is False  # auto_answer: the model
    assert run.out("legal_review")["approved"] is True                    # auto_or_pause: the model was sure
    assert run.events("gate_answered", "final_signoff")[0]["by"] == "auto (preset)"  # the person's answer
    created = run.out("create_flag")
    assert (created["flag_key"], created["enabled"], created["provider"]) == ("mobile-wallets-first", False, "local")
    flag = flags(run.tmp)["mobile-wallets-first"]
    assert flag["enabled"] is False
    assert {v["key"]: v["weight"] for v in flag["variants"]} == {"control": 50, "treatment": 50}
    assert "signed off by growth-lead: ramp as planned" in flag["description"]


def check_weekly_metrics_watch(run: Run) -> None:
    assert run.view.loop_counters == {"weeks": 1}  # the demo preset: two weekly reviews, one loop back
    assert run.view.nodes["pull_funnel"].visits == 2 and run.view.nodes["next_week"].visits == 1
    assert run.out("pull_funnel")["funnel"] == "checkout"
    report = run.out("find_anomalies")
    assert report["found"] is True and report["top"]["segment"] in ("platform=ios", "platform=android")
    assert run.out("triage")["selected_route"] == "growth_analyst"
    assert run.events("tool_called", "growth_analyst") == [{"tool": "get_funnel_data"}] * 4  # 2 per week
    doc = Path(run.out("save_digest")["path"])
    assert doc.parent == run.tmp / "learnings" and doc.read_text().startswith("# Weekly checkout funnel to ")
    assert run.out("post_to_slack")["result"] == "SLACK_APPRISE_URL is not set: digest saved, not posted"


def product_repo(tmp: Path) -> None:
    """A stand-in for the product repository of landing_page_variant: the `test:variant` script it
    needs, failing on the implementer's branch and passing on the fixer's (the script's branches)."""
    repo = tmp / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=repo,
                       check=True, capture_output=True)

    def commit(passed: bool, output: str) -> None:
        script = f"console.log(JSON.stringify({{passed: {json.dumps(passed)}, output: process.argv[2] + ': ' + {json.dumps(output)}}}));\n"
        (repo / "test-variant.js").write_text(script)
        git("add", "-A")
        git("commit", "--quiet", "-m", output)

    git("init", "--quiet", "--initial-branch", "main")
    (repo / "package.json").write_text(json.dumps({"name": "shop", "private": True,
                                                   "scripts": {"test:variant": "node test-variant.js"}}))
    commit(True, "no variant yet")
    git("checkout", "--quiet", "-b", "exp/checkout-trust-badges")
    commit(False, "expected 3 badges, found 2")
    git("checkout", "--quiet", "-b", "exp/checkout-trust-badges-fix")
    commit(True, "3 tests passed")
    git("checkout", "--quiet", "main")


def check_landing_page_variant(run: Run) -> None:
    assert run.view.nodes["run_tests"].visits == 2 and run.view.loop_counters == {"fix": 1}
    assert run.out("fixer")["_session_id"] == run.out("implementer")["_session_id"]  # inherit continues it
    assert run.out("run_tests") == {"passed": True, "output": "CheckoutTrustBadges: 3 tests passed"}
    forks = {run.out(n)["_session_id"] for n in ("compact_variant", "bold_variant")}
    assert len(forks) == 2 and run.out("implementer")["_session_id"] not in forks  # fork: copies of their own
    assert set(run.view.artifacts) >= {"variant_spec", "compact_variant", "bold_variant"}
    assert run.out("reviewer")["preferred"] == "compact"


def check_copy_variants(run: Run) -> None:
    # round robin: Claude, then GPT after the editor's first "not ready"
    assert [run.view.nodes[n].visits for n in ("claude_writer", "gpt_writer", "copy_editor")] == [1, 1, 2]
    assert run.view.loop_counters == {"rewrite": 1}
    assert run.view.artifacts["treatment_copy"]["author_model"] == "openai/gpt-4.1"
    assert run.out("copy_editor")["ready"] is True


def check_minimal_linear(run: Run) -> None:
    # no script beside it: the output is generated from the schema (bools true), so `when approved`
    assert run.out("reviewer") == {"approved": True, "summary": "reviewer.summary", "_session_id": "reviewer#1"}


def check_human_gate(run: Run) -> None:
    assert run.view.artifacts["release_notes"]["notes"] == "drafter.notes"
    [answer] = run.view.answers
    assert (answer.gate, answer.answers) == ("approval_gate", {"approved": True, "comment": "Ship it."})


def check_loop_with_judge(run: Run) -> None:
    assert run.view.loop_counters == {"refine": 1} and run.view.nodes["writer"].visits == 2
    assert run.view.artifacts["article_draft"]["text"].startswith("Durable workflows record every step. Example:")
    assert run.out("editor")["approved"] is True


def check_parallel_fan_out_join(run: Run) -> None:
    merged = run.out("merge")
    assert set(merged) == {"security", "performance"}  # the join collected both branches
    assert merged["security"]["severity"] == "none" and merged["performance"]["severity"] == "none"
    assert run.out("final_verdict")["approved"] is True


def check_dual_model_plan_implement_review(run: Run) -> None:
    assert run.out("reviewer")["approved"] is True
    assert run.out("implementer")["files_changed"] == ["README.md"]
    assert len(run.events("node_finished", "implementer")) == 2  # revised once, in its own CLI session
    assert run.events("delegate_step", "implementer")  # the scripted answer says no CLI ran


def check_segment_conversion_each(run: Run) -> None:
    # Five segments, four at a time; tablet has no visits, so only its branch fails (best_effort).
    results = run.out("collect")["results"]
    assert [r["item"]["name"] for r in results] == ["mobile", "desktop", "app", "email"]
    assert [r["output"]["rate"] for r in results] == [0.025, 0.05, 0.045, 0.016]
    assert [f["item"]["name"] for f in run.out("collect")["_failed_branches"]] == ["tablet"]
    assert run.out("report") == {"below_target": ["mobile", "email"], "unreadable": ["tablet"]}
    assert [e["max_parallel"] for e in run.events("fan_out", "each_segment")] == [4]


def check_cumulative_conversion_foreach(run: Run) -> None:
    # The weeks run one at a time, in order; each adds its numbers to the totals of the week before.
    results = run.out("collect")["results"]
    assert [r["output"] for r in results] == [
        {"week": "W1", "visits": 1000, "orders": 20, "rate": 0.02},
        {"week": "W2", "visits": 2500, "orders": 65, "rate": 0.026},
        {"week": "W3", "visits": 3000, "orders": 90, "rate": 0.03}]
    assert run.out("report") == {"rates": {"W1": 0.02, "W2": 0.026, "W3": 0.03}, "final_rate": 0.03}
    assert [e["max_parallel"] for e in run.events("fan_out", "each_week")] == [1]


def check_segment_review_subbot(run: Run) -> None:
    # The subbot ran segment_conversion_each.iter as a child run of its own, with the parent's vars.
    child = run.out("conversion")
    assert child["_run"].endswith("-conversion-1")
    assert [r["item"]["name"] for r in child["collect"]["results"]] == ["mobile", "desktop", "app"]
    assert child["report"] == {"below_target": ["mobile"], "unreadable": []}
    assert run.out("follow_up") == {"count": 1, "segments": ["mobile"]}


def check_ship_decision(run: Run) -> None:
    # Look 1 has 400 users per arm: the analyst looks again; look 2 clears the bar with a 9% lift.
    assert run.out("verdict") == {"lift": 0.09, "enough_data": True, "look": 2,
                                  "summary": "look 2: 1500 users per arm"}
    assert run.out("ship") == {"action": "ship", "lift": 0.09, "summary": "Ship: +9.0% (look 2: 1500 users per arm)"}
    assert run.view.nodes["analyst"].visits == 2 and run.view.loop_counters == {"looks": 1}
    chosen = [(e["to"], e.get("expression"), e.get("bound")) for e in run.events("edge_selected", "verdict")]
    assert chosen == [("analyst", "!enough_data", 3), ("ship", "enough_data && lift > vars.min_lift", None)]


CASES = [
    Case("iterion/minimal_linear.iter", "finished", "done", check_minimal_linear,
         inputs=lambda tmp: {"code": "def add(a, b): return a + b"}),
    Case("iterion/human_gate.iter", "finished", "done", check_human_gate,
         inputs=lambda tmp: {"changes": "Faster checkout on mobile"},
         answers={"approval_gate": {"approved": True, "comment": "Ship it."}}),
    Case("iterion/loop_with_judge.iter", "finished", "done", check_loop_with_judge),
    Case("iterion/parallel_fan_out_join.iter", "finished", "done", check_parallel_fan_out_join,
         inputs=lambda tmp: {"diff": "- db.query(q)\n+ db.query(q, timeout=5)"}),
    Case("copy_variants_round_robin.iter", "finished", "done", check_copy_variants,
         inputs=lambda tmp: {"goal": "More mobile shoppers finish checkout",
                             "current_copy": "Choose a payment method"}),
    Case("dual_model_plan_implement_review.iter", "finished", "done", check_dual_model_plan_implement_review),
    Case("landing_page_variant.iter", "finished", "done", check_landing_page_variant,
         setup=product_repo, needs=("git", "npm", "node"),
         inputs=lambda tmp: {"repo_dir": str(tmp / "repo"), "flag_key": "checkout-trust-badges",
                             "treatment_description": "Trust badges under the pay button"}),
    # A watch that never retires its funnel runs 52 weeks; the demo preset ends it after two.
    Case("weekly_metrics_watch.iter", "finished", "done", check_weekly_metrics_watch,
         config="weekly_metrics_watch.demo.yaml", inputs=lambda tmp: {"learnings_dir": str(tmp / "learnings")}),
    Case("experiment_launch_review.iter", "finished", "done", check_experiment_launch_review,
         inputs=lambda tmp: {"hypothesis": "Wallets first on the mobile payment step raises checkout conversion",
                             "flag_key": "mobile-wallets-first", "audience": "mobile checkout starters",
                             "requested_changes": "none", "flag_provider": flag_store(tmp)},
         answers={"final_signoff": {"approved": True, "approver": "growth-lead", "conditions": "ramp as planned"}}),
    Case("hypothesis_triage.iter", "finished", "done", check_hypothesis_triage,
         inputs=lambda tmp: dict(IOS_ANOMALY)),
    # The mock experiment is healthy: the judge ends the run, the pause branch does not run.
    Case("experiment_health_check.iter", "finished", "done", check_experiment_health_check,
         inputs=lambda tmp: {"experiment_id": "exp_mobile_trust_badges", "flag_key": "mobile-trust-badges"}),
    Case("segment_conversion_each.iter", "finished", "done", check_segment_conversion_each,
         needs=("awk", "python3")),
    Case("ship_decision.iter", "finished", "done", check_ship_decision),
    Case("cumulative_conversion_foreach.iter", "finished", "done", check_cumulative_conversion_foreach,
         needs=("python3",)),
    Case("segment_review_subbot.iter", "finished", "done", check_segment_review_subbot, needs=("awk", "python3")),
    Case("guardrail_incident.iter", "finished", "done", check_guardrail_incident,
         inputs=lambda tmp: {"experiment_id": "exp_mobile_trust_badges", "flag_key": "mobile-trust-badges",
                             "flag_cli": "echo"},
         answers={"oncall": {"kill": True, "reason": "refund guardrail not established"}}),
]


# -- running them ---------------------------------------------------------------------------------


def test_every_example_has_a_case() -> None:
    assert sorted(c.file for c in CASES) == [f for f in ALL_EXAMPLES if f not in OWN_TESTS]


def compiled(path: Path) -> ir.Workflow:
    result = dsl.check_file(path, options=dsl.CompileOptions(known_tools=builtin_tool_names()))
    findings = list(result.diagnostics)
    assert result.ok and not findings, [d.render() for d in findings]
    assert result.workflow is not None
    return result.workflow


def gate_answers(wf: ir.Workflow, explicit: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    unknown = set(explicit) - {n for n, node in wf.nodes.items() if isinstance(node, ir.HumanNode)}
    assert not unknown, f"answers for gates the workflow does not have: {unknown}"
    return {**skip_gate_answers(wf), **explicit}


@pytest.mark.parametrize("file", ALL_EXAMPLES)
def test_tool_nodes_pass_arguments_the_tool_takes_and_read_fields_it_returns(file: str) -> None:
    """A tool ignores keys it does not know, and nothing checks a tool node's `output:` schema at run
    time: a misnamed argument or field would only show as a wrong result. Check both here."""
    wf = compiled(EXAMPLES / file)
    tools = registry()
    for node in wf.nodes.values():
        if not (isinstance(node, ir.ToolNode) and node.call):
            continue
        tool = tools[node.call]
        takes = set(tool.input_model.model_fields)
        for edge in (e for e in wf.edges if e.target == node.id):
            unknown = [m.key for m in edge.with_ if m.key not in takes]
            assert not unknown, f"{file}: {edge.source} -> {node.id} passes {unknown}; {node.call} takes {sorted(takes)}"
        if node.id == wf.entry:  # no edge leads in at first: its input is the vars
            needed = {n for n, f in tool.input_model.model_fields.items() if f.is_required()}
            assert needed <= set(wf.vars), f"{file}: entry {node.id} needs vars {sorted(needed - set(wf.vars))}"
        if node.output_schema:
            returns = set(tool.output_model.model_fields)
            declared = [f.name for f in wf.schemas[node.output_schema].fields]
            assert set(declared) <= returns, f"{file}: {node.id}'s schema declares {declared}; {node.call} returns {sorted(returns)}"


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
async def test_example_runs_to_its_end(case: Case, temporal_env: Any, task_queue: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [tool for tool in case.needs if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{case.file} runs {', '.join(missing)}, not installed here")
    path = EXAMPLES / case.file
    wf = compiled(path)
    inputs = case.inputs(tmp_path)
    if case.config:
        prepared = prepare_run(EXAMPLES / case.config, wf, skip_gates=False, stop_after=[])
        wf, inputs = prepared.workflow, {**prepared.inputs, **inputs}
    # The compiled graph travels in the run input, so the test may edit it before the start, as a
    # preset does: every `wait` sleeps one second instead of days.
    for node in wf.nodes.values():
        if isinstance(node, ir.WaitNode):
            node.duration, node.duration_seconds = "1s", 1.0
    script_path = script_beside(path)
    case.setup(tmp_path)
    monkeypatch.delenv("SLACK_APPRISE_URL", raising=False)  # the worker is in this process: no real Slack
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, wf, inputs=inputs,
                             script=load_script(script_path) if script_path else {}, shell_cwd=str(tmp_path),
                             gate_answers=gate_answers(wf, case.answers))
        # A node that fails parks the run (failed_resumable) and a gate without an answer waits:
        # neither ends it, so stop waiting at any status but running.
        view = await wait_for(handle, lambda v: v.status != "running", timeout=90)
        assert view.status != "failed_resumable", [f"{f.node}: {f.error}" for f in view.failures]
        assert view.status != "waiting_human", [g.gate for g in view.open_gates]
        result = await finish(handle)
        events = await handle.query("events", 0, result_type=list[Event])
    assert (result.status, result.last_node) == (case.status, case.ends_at), result.reason
    checked = case.check(Run(result=result, view=view, events_seen=events, tmp=tmp_path))
    if inspect.isawaitable(checked):
        await checked
