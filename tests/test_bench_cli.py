"""Recipes on the command line: `iterloop run --recipe` and `iterloop bench`.

`iterloop` runs as a real subprocess against the session's dev server, with an in-test offline
worker (scripted model) polling the test's task queue. The scripted model counts about one input
token per four characters of prompt and charges `cost_per_call_usd` per call, so what a recipe
changes (prompts, vars, budget) shows in the figures the runs record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_harness import Cli

REPO = Path(__file__).resolve().parent.parent

REVIEW = """\
vars:
  topic: string = "durable loops"

prompt writer_system:
  Write a short draft.

prompt writer_user:
  Topic: {{vars.topic}}

schema draft:
  summary: string

schema verdict:
  approved: bool
  summary: string

agent writer:
  model: "scripted"
  output: draft
  system: writer_system
  user: writer_user

judge reviewer:
  model: "scripted"
  output: verdict

workflow review:
  entry: writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(2)
  reviewer -> fail
"""

# Four model calls for a run that goes to the end: writer, reviewer (rejects), writer, reviewer.
REVIEW_SCRIPT = """\
cost_per_call_usd: 0.01
writer:
  - {summary: "v1"}
  - {summary: "v2"}
reviewer:
  - {approved: false, summary: "too short"}
  - {approved: true, summary: "good"}
"""


def recipe(cli: Cli, name: str, **fields: object) -> str:
    doc = {"name": name, "workflow_ref": {"name": "review", "path": "review.iter"}, **fields}
    return cli.write(f"{name}.json", json.dumps(doc))


async def test_run_with_a_recipe_sends_its_prompt_pack_and_vars_to_the_model_and_records_it(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    long_system = "Write a short draft. " * 200  # 4,200 characters: about 1,050 more input tokens per writer call
    recipe(cli, "verbose", prompt_pack={"writer_system": long_system}, preset_vars={"topic": "recipes"})
    plain = await cli("run", "review.iter", "--script", "script.yaml", "--run-id", "plain-1")
    assert plain.code == 0, plain.out + plain.err
    result = await cli("run", "review.iter", "--script", "script.yaml", "--recipe", "verbose.json",
                       "--run-id", "recipe-1")
    assert result.code == 0, result.out + result.err
    assert "iterloop: recipe verbose (verbose.json):\n  preset_vars: topic\n  prompt_pack: writer_system" in result.err

    async def detail(run_id: str) -> dict:
        shown = await cli("inspect", run_id, "--json")
        assert shown.code == 0, shown.err
        return shown.json()

    with_recipe, without = await detail("recipe-1"), await detail("plain-1")
    # The replaced system prompt reached both writer calls (Iterion's executor never saw prompt packs).
    extra = with_recipe["nodes"]["writer"]["tokens"] - without["nodes"]["writer"]["tokens"]
    assert 2 * 1000 < extra < 2 * 1100
    assert with_recipe["vars"]["topic"] == "recipes"
    assert with_recipe["summary"] == ["recipe verbose (verbose.json)"]
    report = await cli("report", "recipe-1")
    assert report.code == 0, report.err
    assert "recipe verbose (verbose.json)" in report.out


async def test_a_var_on_the_command_line_wins_over_the_recipes_preset_var(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    recipe(cli, "topical", preset_vars={"topic": "recipes"})
    result = await cli("run", "review.iter", "--script", "script.yaml", "--recipe", "topical.json",
                       "--var", "topic=benchmarks", "--run-id", "var-wins")
    assert result.code == 0, result.out + result.err
    shown = await cli("inspect", "var-wins", "--json")
    assert shown.json()["vars"]["topic"] == "benchmarks"


async def test_run_refuses_a_recipe_with_an_unknown_field_naming_file_and_field(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    recipe(cli, "typo", budgett={"max_tokens": 10})
    result = await cli("run", "review.iter", "--offline", "--recipe", "typo.json")
    assert result.code == 2, result.out + result.err
    assert "typo.json: unknown field 'budgett'; did you mean 'budget'?" in result.err


async def test_run_refuses_a_recipe_for_another_workflow(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("other.json", json.dumps({"name": "x", "workflow_ref": {"name": "pr_refine"}}))
    result = await cli("run", "review.iter", "--offline", "--recipe", "other.json")
    assert result.code == 2
    assert "workflow_ref.name is 'pr_refine', but the file compiles to workflow 'review'" in result.err


async def test_bench_reports_distinct_figures_per_recipe(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    policy = {"primary_metric": "approved", "success_value": "true"}
    recipe(cli, "full", evaluation_policy=policy)
    # 0.025 USD pays for writer, reviewer, writer (0.03 spent): the run stops before the second review.
    recipe(cli, "cheap", budget={"max_cost_usd": 0.025}, evaluation_policy=policy)
    result = await cli("bench", "review.iter", "--recipe", "full.json", "--recipe", "cheap.json", "-n", "2",
                       "--script", "script.yaml", "--json", timeout=120)
    assert result.code == 0, result.out + result.err
    report = result.json()
    full, cheap = report["recipes"]
    assert (full["recipe"], cheap["recipe"]) == ("full", "cheap")
    assert (full["runs"], full["succeeded"], full["success_rate"]) == (2, 2, 1.0)
    assert full["statuses"] == {"finished": 2}
    assert full["mean_cost_usd"] == full["median_cost_usd"] == 0.04  # four calls at 0.01
    assert (cheap["succeeded"], cheap["success_rate"], cheap["statuses"]) == (0, 0.0, {"budget_exceeded": 2})
    assert cheap["mean_cost_usd"] == 0.03
    assert full["mean_tokens"] > cheap["mean_tokens"] > 0
    # The primary metric is the reviewer's last verdict: approved (1), or the rejection the cheap runs end on (0).
    assert (full["primary_metric"], full["mean_score"]) == ("approved", 1.0)
    assert cheap["mean_score"] == 0.0
    assert full["mean_duration_seconds"] > 0
    runs = {r["run_id"]: r for r in report["runs"]}
    assert len(runs) == 4 and set(full["run_ids"]) | set(cheap["run_ids"]) == set(runs)
    # Every bench run is an ordinary run that records its recipe.
    shown = await cli("inspect", cheap["run_ids"][0], "--json")
    assert shown.json()["status"] == "budget_exceeded"
    assert shown.json()["summary"] == ["recipe cheap (cheap.json)"]


async def test_bench_text_output_has_one_row_per_recipe(cli: Cli) -> None:
    shutil.copy(REPO / "examples" / "dual_model_plan_implement_review.iter", cli.cwd / "review.iter")
    recipes = REPO / "examples" / "recipes"
    result = await cli("bench", "review.iter", "--recipe", str(recipes / "review_thorough.json"), "--recipe",
                       str(recipes / "review_capped.json"), "-n", "1", "--offline", "--script",
                       str(recipes / "review.bench.script.yaml"), timeout=120)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("bench bench-") and "workflow dual_model_plan_implement_review" in lines[0]
    assert lines[1].split()[:3] == ["RECIPE", "RUNS", "SUCCESS"]
    assert lines[2].split()[:4] == ["thorough", "1", "100%", "(1/1)"]
    assert lines[3].split()[:4] == ["capped", "1", "0%", "(0/1)"]
    assert "budget_exceeded" in result.out
    assert "iterloop: bench: thorough 1/1: run bench-" in result.err  # progress, one line per run off a terminal


async def test_bench_needs_two_recipes(cli: Cli) -> None:
    cli.write("review.iter", REVIEW)
    recipe(cli, "only")
    result = await cli("bench", "review.iter", "--recipe", "only.json", "--offline")
    assert result.code == 2
    assert "give at least two" in result.err
