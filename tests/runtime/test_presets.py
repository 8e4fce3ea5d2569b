"""Presets (`iterloop run --config`): loading, validation messages, and what they do to a workflow.

Pure tests: no server. The end-to-end behaviour of the growth loop's preset is in
tests/e2e/test_growth_loop.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from runs import running_worker, start, wait_for

import dsl
from runtime.command_errors import UsageError
from runtime.presets import (
    PRESET_NOTE,
    SKIP_GATES_NOTE,
    PresetError,
    apply_preset,
    load_preset,
    prepare_run,
    render_summary,
)

REPO = Path(__file__).resolve().parents[2]
GROWTH_LOOP = REPO / "examples" / "growth_loop.iter"


@pytest.fixture(scope="module")
def growth_loop() -> dsl.Workflow:
    result = dsl.check_file(GROWTH_LOOP)
    assert result.ok and result.workflow is not None
    return result.workflow


def write(tmp_path: Path, text: str, name: str = "preset.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str, wf: dsl.Workflow) -> str:
    with pytest.raises(PresetError) as err:
        apply_preset(load_preset(write(tmp_path, text)), wf)
    return str(err.value)


# -- the shipped presets -------------------------------------------------------------------------


def test_the_shipped_presets_apply_to_the_growth_loop(growth_loop: dsl.Workflow) -> None:
    for name in ("growth_loop.yaml", "growth_loop.demo.yaml"):
        applied = apply_preset(load_preset(REPO / "examples" / name), growth_loop)
        assert applied.inputs["connector"] == {"name": "mock", "settings": {}}
        assert applied.gate_answers == {}  # approval stays human


def test_demo_preset_extends_the_base_and_overrides_the_ir(growth_loop: dsl.Workflow) -> None:
    applied = apply_preset(load_preset(REPO / "examples" / "growth_loop.demo.yaml"), growth_loop)
    wf = applied.workflow
    monitor = wf.nodes["monitor"]
    assert (monitor.duration, monitor.duration_seconds) == ("2s", 2.0)
    # cycles: 2 → one loop back; 5 looks per cycle → 4 re-looks; 2 replans. The monitoring and replan
    # loops are inside the cycle loop, so every cycle starts them afresh.
    assert {name: loop.max_iterations for name, loop in wf.loops.items()} == {"cycle": 1, "monitoring": 4, "replan": 2}
    assert {wf.nodes[n].model for n in ("analyst", "planner", "critic", "synthesizer")} == {"anthropic/claude-sonnet-4-6"}
    assert wf.budget is not None and (wf.budget.max_cost_usd, wf.budget.max_duration_seconds) == (50.0, 90 * 86400)
    # From the base file, merged: metrics and thresholds; from the demo file: the minimum runtime.
    assert applied.inputs["primary_metric"] == "checkout_conversion"
    assert applied.inputs["guardrail_metrics"][2] == {"name": "revenue_per_user", "higher_is_better": True,
                                                      "max_drop": None}
    assert applied.inputs["min_days"] == pytest.approx(3 / 86400)
    assert applied.inputs["flag_provider"] == {"name": "local", "settings": {"path": ".iterloop/demo/flags.json"}}
    # The compiled source is untouched; the run's graph has its own content hash.
    assert growth_loop.nodes["monitor"].duration == "1d"
    assert wf.content_hash == wf.compute_hash() != growth_loop.content_hash
    assert applied.source_hash == growth_loop.content_hash


# -- validation messages -------------------------------------------------------------------------


def test_an_unknown_key_names_file_line_and_the_closest_key(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, """
        connector:
          name: mock
        thresholds:
          alpha: 0.05
          max_guardrail_dorp: 0.02
        """, growth_loop)
    assert f"{tmp_path / 'preset.yaml'}:5:3: unknown key 'thresholds.max_guardrail_dorp'" in message
    assert "did you mean 'max_guardrail_drop'?" in message
    assert "allowed here: alpha, max_guardrail_drop, mde, method, min_runtime, power" in message


def test_an_unknown_top_level_section_lists_the_sections(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, "monitorring:\n  cadence: 1d\n", growth_loop)
    assert ":1:1: unknown key 'monitorring'; did you mean 'monitoring'?" in message


def test_a_bad_value_names_the_key_line_what_is_expected_and_what_was_found(
        tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, """
        thresholds:
          alpha: 1.5
        monitoring:
          cadence: every day
        """, growth_loop)
    assert ":2:3: thresholds.alpha: Input should be less than 1 (got 1.5)" in message
    assert ":4:3: monitoring.cadence: 'every day' is not a duration" in message


def test_a_bad_guardrail_in_a_list_points_at_its_line(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, """
        metrics:
          guardrails:
            - refund_rate
            - {name: revenue_per_user, higher_is_bettr: true}
        """, growth_loop)
    assert ":4:32: unknown key 'metrics.guardrails.1.higher_is_bettr'; did you mean 'higher_is_better'?" in message


def test_a_setting_for_a_var_the_workflow_lacks_says_which_var(tmp_path: Path) -> None:
    wf = dsl.check_source("agent a:\n  model: \"m\"\nworkflow w:\n  entry: a\n  a -> done\n").workflow
    assert wf is not None
    message = problem(tmp_path, "thresholds:\n  alpha: 0.1\n", wf)
    assert "thresholds.alpha sets var 'alpha', which workflow 'w' does not declare" in message


def test_a_var_of_the_wrong_type_is_refused(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, "vars:\n  lookback_days: soon\n", growth_loop)
    assert "vars.lookback_days gives var 'lookback_days' 'soon', but 'lookback_days' is int: give an integer" in message


def test_a_credential_written_in_a_preset_is_refused_before_it_reaches_history(
        tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, """
        connector:
          name: warehouse
          settings: {url: "postgresql://bi:hunter2@db/analytics"}
        """, growth_loop)
    assert "connector.settings.url holds a credential; preset values are stored in the run's history" in message
    assert "${WAREHOUSE_PASSWORD}" in message and "hunter2" not in message
    assert "flags.settings.api_key holds a credential" in problem(
        tmp_path, "flags:\n  provider: growthbook\n  settings: {api_key: secret_abc}\n", growth_loop)
    fine = write(tmp_path, 'connector:\n  name: warehouse\n  settings: {url: "postgresql://bi:${PW}@db/a"}\n', "ok.yaml")
    assert apply_preset(load_preset(fine), growth_loop).inputs["connector"]["settings"]["url"].endswith("${PW}@db/a")


def test_unknown_gate_model_node_and_wait_are_named(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    assert "gates.aproval: workflow 'growth_loop' has no human gate 'aproval'; its gates: approval" in problem(
        tmp_path, "gates:\n  aproval: auto\n", growth_loop)
    assert "models.writer: workflow 'growth_loop' has no agent, judge or llm router 'writer'" in problem(
        tmp_path, "models:\n  writer: openai/gpt-4.1\n", growth_loop)
    assert "waits.critic sets the duration of wait node 'critic'" in problem(
        tmp_path, "waits:\n  critic: 1h\n", growth_loop)


def test_an_auto_answer_that_does_not_fit_the_gate_is_refused(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    message = problem(tmp_path, "gates:\n  approval: {mode: auto, answer: {approved: maybe}}\n", growth_loop)
    assert "gates.approval.answer:" in message and "approved" in message


def test_invalid_yaml_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"preset\.yaml:2:\d+: not valid YAML"):
        load_preset(write(tmp_path, "cycles: 2\n  bad: [\n"))
    with pytest.raises(PresetError, match="does not exist; check the path given with --config"):
        load_preset(tmp_path / "missing.yaml")


def test_extends_cycles_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(PresetError, match="extends itself in a cycle"):
        load_preset(tmp_path / "a.yaml")


def test_a_preset_for_another_workflow_is_refused(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    assert "this preset is for workflow 'weekly', not 'growth_loop'" in problem(tmp_path, "workflow: weekly\n",
                                                                             growth_loop)


# -- gates, --skip-gates and --stop-after ----------------------------------------------------------


def test_skip_gates_approves_with_a_note(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    prepared = prepare_run(None, growth_loop, skip_gates=True, stop_after=[])
    assert prepared.run_options == {"gate_answers": {"approval": {"approved": True, "reviewer_notes": SKIP_GATES_NOTE}}}
    assert prepared.workflow is growth_loop and prepared.inputs == {}


def test_an_auto_gate_uses_the_preset_answer_even_with_skip_gates(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    path = write(tmp_path, "gates:\n  approval: {mode: auto, answer: {approved: true, reviewer_notes: ok by policy}}\n")
    prepared = prepare_run(path, growth_loop, skip_gates=True, stop_after=[])
    assert prepared.run_options["gate_answers"] == {"approval": {"approved": True, "reviewer_notes": "ok by policy"}}
    plain = apply_preset(load_preset(write(tmp_path, "gates:\n  approval: auto\n", "auto.yaml")), growth_loop)
    assert plain.gate_answers == {"approval": {"approved": True, "reviewer_notes": PRESET_NOTE}}


def test_an_llm_gate_is_answered_by_its_model(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    path = write(tmp_path, "gates:\n  approval: {mode: llm, model: openai/gpt-4.1}\n")
    gate = apply_preset(load_preset(path), growth_loop).workflow.nodes["approval"]
    assert (gate.interaction, gate.interaction_model) == ("llm", "openai/gpt-4.1")


def test_stop_after_must_name_a_node(growth_loop: dsl.Workflow) -> None:
    assert prepare_run(None, growth_loop, skip_gates=False, stop_after=["analyst"]).run_options == {
        "stop_after": ["analyst"]}
    with pytest.raises(UsageError, match="--stop-after analist: workflow 'growth_loop' has no node 'analist'"):
        prepare_run(None, growth_loop, skip_gates=False, stop_after=["analist"])


# -- the summary -----------------------------------------------------------------------------------


def test_summary_lines_render_and_lines_without_values_are_left_out() -> None:
    lines = ["Verdict {{outputs.significance.headline}}", "Flag {{outputs.executor.flag_key}}", "Alpha {{vars.alpha}}"]
    assert render_summary(lines, outputs={"significance": {"headline": "SHIP_WINNER: +9.5%"}},
                          vars={"alpha": 0.05}, artifacts={}) == ["Verdict SHIP_WINNER: +9.5%", "Alpha 0.05"]


# -- timeouts --------------------------------------------------------------------------------------


def test_timeouts_become_run_options_and_a_bad_duration_is_named(tmp_path: Path, growth_loop: dsl.Workflow) -> None:
    path = write(tmp_path, "timeouts:\n  delegate: 2h\n  shell: 90s\n")
    prepared = prepare_run(path, growth_loop, skip_gates=False, stop_after=["analyst"])
    assert prepared.run_options == {"delegate_timeout_seconds": 7200.0, "shell_timeout_seconds": 90.0,
                                    "stop_after": ["analyst"]}
    assert any("timeouts: shell 90s, delegate 2h" in note for note in prepared.notes)
    assert "timeouts.model" in problem(tmp_path, "timeouts:\n  model: soon\n", growth_loop)


async def test_a_preset_timeout_stops_a_slow_step_of_the_run(tmp_path: Path, temporal_env: Any, task_queue: str) -> None:
    wf = dsl.check_source('tool slow:\n  command: "sleep 30"\nworkflow w:\n  entry: slow\n  slow -> done\n').workflow
    assert wf is not None
    prepared = prepare_run(write(tmp_path, "timeouts:\n  shell: 1s\n"), wf, skip_gates=False, stop_after=[])
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, prepared.workflow, max_attempts=1,
                             **prepared.run_options)
        view = await wait_for(handle, lambda v: v.status == "failed_resumable", timeout=60)
    assert "timed out after 1 s" in view.failures[0].error
