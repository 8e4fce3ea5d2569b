"""Recipes (`runtime/recipes.py`) and the bench's figures (`runtime/bench.py`): pure tests, no server.

What a recipe does to a run on the server (its prompt pack reaching the model, the bench's
figures) is in tests/test_bench_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import dsl
from runtime.bench import BenchRun, bench_run_ids, check_recipe_names, is_success, recipe_figures, verdict_of
from runtime.command_errors import UsageError
from runtime.recipes import RecipeError, apply_recipe, load_recipe
from workflows.contract.state import Event

REPO = Path(__file__).resolve().parents[2]

REVIEW = """\
vars:
  topic: string = "loops"
  rounds: int = 2

prompt writer_system:
  Write about {{vars.topic}}.

schema verdict:
  approved: bool
  score: float

agent writer:
  model: "scripted"
  output: verdict
  system: writer_system
  tool_policy: [get_funnel_data]

judge reviewer:
  model: "scripted"
  output: verdict

workflow review:
  entry: writer
  budget:
    max_tokens: 1000
    max_cost_usd: 2
  writer -> reviewer
  reviewer -> done
"""


@pytest.fixture(scope="module")
def review() -> dsl.Workflow:
    result = dsl.check_source(REVIEW)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    return result.workflow


def write(tmp_path: Path, doc: Any, name: str = "recipe.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def recipe(tmp_path: Path, **fields: Any) -> Path:
    return write(tmp_path, {"name": "r", "workflow_ref": {"name": "review"}, **fields})


def load_problem(path: Path) -> str:
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    return str(err.value)


def apply_problem(path: Path, wf: dsl.Workflow) -> str:
    with pytest.raises(RecipeError) as err:
        apply_recipe(load_recipe(path), wf)
    return str(err.value)


# -- loading -------------------------------------------------------------------------------------


def test_an_unknown_nested_field_is_named_with_its_file_and_the_fields_allowed(tmp_path: Path) -> None:
    path = recipe(tmp_path, budget={"max_tokenz": 5})
    message = load_problem(path)
    assert f"{path}: unknown field 'budget.max_tokenz'; did you mean 'max_tokens'?" in message
    assert "allowed here: max_cost_usd, max_duration, max_iterations, max_parallel_branches, max_tokens" in message


def test_a_missing_workflow_ref_says_how_to_write_it(tmp_path: Path) -> None:
    message = load_problem(write(tmp_path, {"name": "r"}))
    assert "workflow_ref is required (e.g. \"workflow_ref\": {\"name\": \"<the workflow's name>\"})" in message


def test_a_file_that_is_not_json_names_the_file_and_the_position(tmp_path: Path) -> None:
    path = write(tmp_path, '{"name": "r",}')
    assert f"recipe file '{path}' is not valid JSON (" in load_problem(path)
    assert "line 1 column" in load_problem(path)


def test_a_json_array_is_not_a_recipe(tmp_path: Path) -> None:
    assert "a recipe is a JSON object" in load_problem(write(tmp_path, "[]"))


def test_a_missing_file_says_to_check_the_path(tmp_path: Path) -> None:
    assert "does not exist; check the path given with --recipe" in load_problem(tmp_path / "nope.json")


def test_an_unparsable_duration_is_refused_not_ignored(tmp_path: Path) -> None:
    message = load_problem(recipe(tmp_path, budget={"max_duration": "ten minutes"}))
    assert "budget.max_duration: 'ten minutes' is not a duration" in message


def test_a_negative_budget_is_refused(tmp_path: Path) -> None:
    assert "budget.max_cost_usd: Input should be greater than or equal to 0" in load_problem(
        recipe(tmp_path, budget={"max_cost_usd": -1}))


# -- applying -------------------------------------------------------------------------------------


def test_preset_vars_become_typed_defaults_and_the_source_is_untouched(tmp_path: Path, review: dsl.Workflow) -> None:
    applied = apply_recipe(load_recipe(recipe(tmp_path, preset_vars={"topic": "recipes", "rounds": "3"})), review)
    wf = applied.workflow
    assert (wf.vars["topic"].default, wf.vars["rounds"].default) == ("recipes", 3)  # "3" read as --var reads it
    assert review.vars["topic"].default == "loops"
    assert wf.content_hash == wf.compute_hash() != review.content_hash
    assert applied.changes == ["preset_vars: rounds, topic"]


def test_a_preset_var_of_the_wrong_type_names_the_var(tmp_path: Path, review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, preset_vars={"rounds": "many"}), review)
    assert "preset_vars.rounds: 'many' is not valid JSON; var 'rounds' is int" in message


def test_a_preset_var_the_workflow_does_not_declare_lists_the_declared_ones(tmp_path: Path,
                                                                           review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, preset_vars={"model_name": "gpt-4o"}), review)
    assert "workflow 'review' declares no var 'model_name'; declared vars: topic, rounds" in message


def test_a_prompt_pack_replaces_the_body_and_its_references(tmp_path: Path, review: dsl.Workflow) -> None:
    applied = apply_recipe(load_recipe(recipe(tmp_path, prompt_pack={"writer_system": "Be brief: {{vars.rounds}}"})),
                           review)
    prompt = applied.workflow.prompts["writer_system"]
    assert prompt.body == "Be brief: {{vars.rounds}}"
    assert [ref.raw for ref in prompt.template_refs or []] == ["{{vars.rounds}}"]


def test_a_prompt_pack_for_an_unknown_prompt_lists_the_prompts(tmp_path: Path, review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, prompt_pack={"review_sys": "x"}), review)
    assert "prompt_pack.review_sys: workflow 'review' has no prompt 'review_sys'; its prompts: writer_system" in message


def test_a_prompt_pack_referring_to_an_undeclared_var_is_refused(tmp_path: Path, review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, prompt_pack={"writer_system": "{{vars.tone}}"}), review)
    assert "prompt_pack.writer_system: {{vars.tone}} names no declared var" in message


def test_a_malformed_template_in_a_prompt_pack_is_refused(tmp_path: Path, review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, prompt_pack={"writer_system": "{{vars.topic"}), review)
    assert "prompt_pack.writer_system: unterminated template expression" in message


def test_budget_fields_that_are_set_override_and_zeros_keep_the_workflows(tmp_path: Path,
                                                                         review: dsl.Workflow) -> None:
    path = recipe(tmp_path, budget={"max_tokens": 50, "max_cost_usd": 0, "max_duration": "90s",
                                    "max_iterations": 0, "max_parallel_branches": 2})
    applied = apply_recipe(load_recipe(path), review)
    budget = applied.workflow.budget
    assert budget is not None
    assert (budget.max_tokens, budget.max_cost_usd, budget.max_duration_seconds, budget.max_parallel_branches) == (
        50, 2.0, 90.0, 2)
    assert applied.changes == ["budget: max_parallel_branches 2, max_duration 90s, max_tokens 50"]


def test_a_budget_is_created_for_a_workflow_without_one(tmp_path: Path) -> None:
    wf = dsl.check_source("agent a:\n  model: \"scripted\"\n\nworkflow w:\n  entry: a\n  a -> done\n").workflow
    assert wf is not None and wf.budget is None
    path = write(tmp_path, {"name": "r", "workflow_ref": {"name": "w"}, "budget": {"max_iterations": 3}})
    budget = apply_recipe(load_recipe(path), wf).workflow.budget
    assert budget is not None and budget.max_iterations == 3


def test_a_tool_policy_replaces_the_workflows_and_says_which_nodes_keep_their_own(tmp_path: Path,
                                                                                 review: dsl.Workflow) -> None:
    applied = apply_recipe(load_recipe(recipe(tmp_path, tool_policy=["mcp.github.*"])), review)
    assert applied.workflow.tool_policy == ["mcp.github.*"]
    assert applied.changes == ["tool_policy: mcp.github.* (nodes with their own keep it: writer)"]


def test_a_recipe_for_another_workflow_is_refused(tmp_path: Path, review: dsl.Workflow) -> None:
    path = write(tmp_path, {"name": "r", "workflow_ref": {"name": "pr_refine"}})
    assert "workflow_ref.name is 'pr_refine', but the file compiles to workflow 'review'" in apply_problem(path, review)


def test_a_primary_metric_that_no_output_has_is_refused_with_a_suggestion(tmp_path: Path,
                                                                         review: dsl.Workflow) -> None:
    message = apply_problem(recipe(tmp_path, evaluation_policy={"primary_metric": "aproved"}), review)
    assert "evaluation_policy.primary_metric 'aproved' is no field of any output schema" in message
    assert "did you mean 'approved'?" in message


def test_the_example_recipes_apply_to_their_workflow() -> None:
    result = dsl.check_file(REPO / "examples" / "dual_model_plan_implement_review.iter")
    assert result.ok and result.workflow is not None
    for name in ("review_thorough.json", "review_capped.json"):
        applied = apply_recipe(load_recipe(REPO / "examples" / "recipes" / name), result.workflow)
        assert applied.evaluation.primary_metric == "approved"
    assert applied.workflow.budget is not None and applied.workflow.budget.max_cost_usd == 0.025


def test_a_config_preset_applied_over_a_recipe_wins(tmp_path: Path, review: dsl.Workflow) -> None:
    from runtime.presets import prepare_run

    applied = apply_recipe(load_recipe(recipe(tmp_path, budget={"max_tokens": 50}, preset_vars={"topic": "a"})), review)
    preset = tmp_path / "preset.yaml"
    preset.write_text("budget:\n  max_tokens: 70\nvars:\n  topic: b\n", encoding="utf-8")
    prepared = prepare_run(preset, applied.workflow, skip_gates=False, stop_after=[])
    assert prepared.workflow.budget is not None and prepared.workflow.budget.max_tokens == 70
    assert prepared.inputs["topic"] == "b"  # an input: it wins over the recipe's default at the start


# -- the bench's figures -----------------------------------------------------------------------------


def event(seq: int, node: str) -> Event:
    return Event(seq=seq, time="", type="node_finished", node=node)


def test_the_verdict_is_the_metric_of_the_last_finished_node_that_has_it() -> None:
    outputs = {"writer": {"approved": True}, "reviewer": {"approved": False}, "done": {}}
    assert verdict_of([event(1, "writer"), event(2, "reviewer"), event(3, "done")], outputs, "approved") is False
    assert verdict_of([event(1, "reviewer"), event(2, "writer")], outputs, "approved") is True
    assert verdict_of([], outputs, "missing") is None


def test_success_is_finishing_with_the_success_value_when_one_is_given() -> None:
    assert is_success("finished", None, "")
    assert is_success("finished", True, "true") and is_success("finished", "ship", "ship")
    assert not is_success("finished", False, "true")
    assert not is_success("budget_exceeded", True, "true")


def run(recipe: str, status: str, cost: float, tokens: int, seconds: float | None, verdict: Any = None) -> BenchRun:
    return BenchRun(recipe=recipe, run_id=f"{recipe}-{cost}", status=status, success=status == "finished",
                    cost_usd=cost, tokens=tokens, duration_seconds=seconds, verdict=verdict)


def test_figures_aggregate_a_recipes_runs() -> None:
    runs = [run("a", "finished", 0.01, 100, 1.0, True), run("a", "finished", 0.03, 300, 3.0, True),
            run("a", "failed", 0.08, 800, 2.0, False), run("a", "error", 0.0, 0, None)]
    figures = recipe_figures("a", "a.json", runs, primary_metric="approved")
    assert (figures.runs, figures.succeeded, figures.success_rate) == (4, 2, 0.5)
    assert figures.statuses == {"error": 1, "failed": 1, "finished": 2}
    # The run that could not start has no cost, tokens or duration: it is left out of those figures.
    assert figures.mean_cost_usd == pytest.approx(0.04) and figures.median_cost_usd == pytest.approx(0.03)
    assert (figures.mean_tokens, figures.median_tokens) == (400, 300)
    assert (figures.mean_duration_seconds, figures.median_duration_seconds) == (2.0, 2.0)
    assert figures.mean_score == pytest.approx(2 / 3)


def test_bench_run_ids_name_the_bench_and_the_recipe() -> None:
    assert bench_run_ids("bench-1a2b", "fast review!", 2) == ["bench-1a2b-fast-review-1", "bench-1a2b-fast-review-2"]


def test_a_bench_needs_two_recipes_with_distinct_names(tmp_path: Path, review: dsl.Workflow) -> None:
    one = apply_recipe(load_recipe(recipe(tmp_path)), review)
    with pytest.raises(UsageError, match="give at least two"):
        check_recipe_names([one])
    with pytest.raises(UsageError, match="are both named 'r'"):
        check_recipe_names([one, one])
    spaced = apply_recipe(load_recipe(write(tmp_path, {"name": "fast review", "workflow_ref": {"name": "review"}},
                                            "a.json")), review)
    dashed = apply_recipe(load_recipe(write(tmp_path, {"name": "fast-review", "workflow_ref": {"name": "review"}},
                                            "b.json")), review)
    with pytest.raises(UsageError, match="named 'fast review' and 'fast-review', which give the same run ids"):
        check_recipe_names([spaced, dashed])

