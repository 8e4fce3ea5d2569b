"""Recipes: Iterion's JSON description of one way to run a workflow (`iterloop run --recipe`, `iterloop bench`).

A recipe names the workflow it is for and says what to change for this variant of it:

    {"name": "fast_review",
     "workflow_ref": {"name": "pr_refine", "path": "examples/pr_refine.iter"},
     "preset_vars": {"model_name": "gpt-4o"},         var → value (a default: --var still wins)
     "prompt_pack": {"review_sys": "You are …"},      prompt name → replacement body
     "budget": {"max_cost_usd": 5.0, "max_iterations": 0, …},   non-zero fields override
     "tool_policy": ["git_diff", "mcp.github.*"],      replaces the workflow's tool policy
     "evaluation_policy": {"primary_metric": "approved", "success_value": "true"}}

Applying a recipe rewrites the compiled IR, which travels in the run input: whatever the recipe
changes is exactly what the worker executes and what history records. That is the point where
Iterion went wrong (its executor was built from the unmodified workflow, so prompt packs, recipe
tool policies and preset vars in prompts never reached a model call); here every field takes
effect because there is only one graph. `evaluation_policy` changes nothing in the run: it tells
`iterloop bench` (runtime/bench.py) what success and the score are.

Preset vars become the vars' defaults rather than run inputs, which gives the order Iterion
documents (run input > recipe > workflow default) with no special case: `--var`, `--input` and a
`--config` preset all set inputs, and inputs win over defaults.

Pure: JSON and pydantic, no Temporal. Every problem is a `RecipeError` naming the file and the
field, what was expected and how to fix it.
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from dsl import ir
from dsl.durations import parse_duration
from dsl.source_files import read_limited
from runtime.command_errors import UsageError
from runtime.run_inputs import check_var_values
from workflows.contract.json_values import JsonValueError, load_json

if typing.TYPE_CHECKING:
    from runtime.run_start import PreparedStart

#: What the summary line of a run started with a recipe begins with (inspect and report show it).
RECIPE_SUMMARY_PREFIX = "recipe "


class RecipeError(UsageError):
    """A recipe file that cannot be read, is invalid, or does not fit the workflow (exit 2)."""


# -- the file's shape ------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkflowRef(_Section):
    name: str = Field(min_length=1, description="the workflow's name (checked against the compiled file)")
    path: str = Field("", description="where the .iter file is (informational; the command names the file)")


class RecipeBudget(_Section):
    """Iterion's budget fields: 0 (or "") keeps the workflow's own limit, anything else replaces it."""

    max_parallel_branches: int = Field(0, ge=0)
    max_duration: str = ""
    max_cost_usd: float = Field(0.0, ge=0)
    max_tokens: int = Field(0, ge=0)
    max_iterations: int = Field(0, ge=0)

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        # Iterion ignores a duration it cannot parse; a limit that silently does nothing is worse
        # than a refusal, so iterloop refuses it.
        if value and parse_duration(value) is None:
            raise ValueError(f"'{value}' is not a duration; write e.g. \"30m\", \"1h30m\" or \"90s\" (\"\" keeps "
                             "the workflow's limit)")
        return value


class EvaluationPolicy(_Section):
    """How `iterloop bench` judges a run (it changes nothing in the run itself)."""

    primary_metric: str = Field("", description="an output field: the score, and the verdict success_value is "
                                                "compared with")
    success_value: str | bool | int | float = Field("", description="the primary metric's value of a successful "
                                                                    "run (\"\": finishing is success)")
    secondary_metrics: list[str] = Field(default_factory=list, description="informational (bench always reports "
                                                                           "cost, tokens and duration)")

    @property
    def success_text(self) -> str:
        """``success_value`` as text, the way a verdict is written (`true`, `0.5`, `ship`)."""
        return verdict_text(self.success_value)


class Recipe(_Section):
    """One recipe file, as written (every section optional except the names)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^{}\r\n]+$",
                      description="the recipe's name, shown by inspect, report and bench")
    workflow_ref: WorkflowRef
    preset_vars: dict[str, JsonValue] = Field(default_factory=dict)
    prompt_pack: dict[str, str] = Field(default_factory=dict)
    budget: RecipeBudget | None = None
    tool_policy: list[str] = Field(default_factory=list)
    evaluation_policy: EvaluationPolicy | None = None

    @field_validator("tool_policy")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern.strip():
                raise ValueError("a tool pattern is a tool name, `namespace.*` or `*`, not an empty string")
        return patterns


@dataclass
class LoadedRecipe:
    path: Path
    recipe: Recipe


def verdict_text(value: Any) -> str:
    """A value as a verdict is compared: JSON for non-strings (`true`, `3`, `0.5`), strings as they are."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- loading ---------------------------------------------------------------------------------------


def load_recipe(path: Path) -> LoadedRecipe:
    """Read and check a recipe file: a regular, size-capped UTF-8 JSON file (`read_limited`, then the
    project's bounded JSON loader), an object with the recipe's fields and no others."""
    try:
        data = load_json(read_limited(path), what=f"recipe file '{path}'",
                         fix='a recipe is a JSON object: {"name": …, "workflow_ref": {"name": …}, …}')
    except FileNotFoundError:
        raise RecipeError(f"recipe file '{path}' does not exist; check the path given with --recipe") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe file '{path}': {exc.strerror or exc}") from None
    except JsonValueError as exc:
        raise RecipeError(str(exc)) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a JSON object with name, workflow_ref, preset_vars, prompt_pack, "
                          f"budget, tool_policy and evaluation_policy; found {type(data).__name__}")
    try:
        return LoadedRecipe(path=path, recipe=Recipe.model_validate(data))
    except ValidationError as exc:
        raise RecipeError(_problems(exc, path)) from None


def _problems(exc: ValidationError, path: Path) -> str:
    """Every validation problem as `file: field: what is wrong; how to fix it`."""
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, (str, int)) and not str(p).startswith("function-")]
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field '{key}'{_did_you_mean(loc)}")
        elif err["type"] == "missing":
            lines.append(f"{path}: {key} is required{_required_hint(key)}")
        elif err["type"] == "string_pattern_mismatch" and loc == ["name"]:
            lines.append(f"{path}: name: one line without '{{' or '}}' (got {_shown(err.get('input'))})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {key}: {msg} (got {_shown(err.get('input'))})")
    return "invalid recipe:\n  " + "\n  ".join(lines)


def _required_hint(key: str) -> str:
    return {"name": ' (e.g. "name": "fast_review")',
            "workflow_ref": ' (e.g. "workflow_ref": {"name": "<the workflow\'s name>"})',
            "workflow_ref.name": " (the name after `workflow` in the .iter file)"}.get(key, "")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _did_you_mean(loc: list[str | int]) -> str:
    """A hint for an unknown field: the closest field its section accepts, and the fields it accepts."""
    section: Any = Recipe
    for part in loc[:-1]:
        info = section.model_fields.get(str(part)) if isinstance(section, type) else None
        section = _model_in(info.annotation) if info is not None else None
    if not (isinstance(section, type) and issubclass(section, BaseModel)):
        return ""
    allowed = sorted(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return (f"; did you mean '{close[0]}'?" if close else ";") + f" allowed here: {', '.join(allowed)}"


def _model_in(annotation: Any) -> Any:
    """The pydantic model in ``annotation`` (`X | None` → X), or None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# -- what a recipe does to a workflow --------------------------------------------------------------


@dataclass
class AppliedRecipe:
    """A recipe applied to one workflow: the IR a run of it executes, and what changed."""

    recipe: Recipe
    path: Path
    workflow: ir.Workflow  # a copy with the recipe's changes, re-hashed
    changes: list[str] = field(default_factory=list)  # one line per kind of change, for the user and the run

    @property
    def evaluation(self) -> EvaluationPolicy:
        return self.recipe.evaluation_policy or EvaluationPolicy()

    def summary_line(self) -> str:
        """The line the run keeps in its summary (`iterloop inspect`, `iterloop report`)."""
        return f"{RECIPE_SUMMARY_PREFIX}{self.recipe.name} ({self.path})"

    def note(self) -> str:
        """What the recipe changed, as the run's start output and Web UI details show it."""
        return f"recipe {self.recipe.name} ({self.path}):" + "".join(f"\n  {c}" for c in self.changes or ["no change"])


def apply_recipe(loaded: LoadedRecipe, wf: ir.Workflow) -> AppliedRecipe:
    """Check ``loaded`` against ``wf`` and return a copy of the IR with the recipe's changes.

    The compiled workflow is left untouched, so one compile serves several recipes (`bench`)."""
    r, where = loaded.recipe, loaded.path
    if r.workflow_ref.name != wf.name:
        raise RecipeError(f"{where}: workflow_ref.name is '{r.workflow_ref.name}', but the file compiles to workflow "
                          f"'{wf.name}'; use the recipe with its own workflow, or change workflow_ref.name")
    out = wf.model_copy(deep=True)
    changes = [*_apply_preset_vars(r, out, where), *_apply_prompt_pack(r, out, where)]
    if r.tool_policy:
        out.tool_policy = list(r.tool_policy)
        overridden = sorted(n for n, node in out.nodes.items() if getattr(node, "tool_policy", None) is not None)
        changes.append(f"tool_policy: {', '.join(r.tool_policy)}"
                       + (f" (nodes with their own keep it: {', '.join(overridden)})" if overridden else ""))
    if r.budget is not None:
        changes += _apply_budget(r.budget, out)
    _check_evaluation(r, out, where)
    out.with_hash()
    return AppliedRecipe(recipe=r, path=where, workflow=out, changes=changes)


def _apply_preset_vars(r: Recipe, wf: ir.Workflow, where: Path) -> list[str]:
    try:  # typed exactly as the API's `vars` are: JSON values, or text read as --var reads it
        values = check_var_values(r.preset_vars, wf, label=f"{where}: preset_vars")
    except UsageError as exc:
        raise RecipeError(str(exc)) from None
    for name, value in values.items():
        wf.vars[name] = wf.vars[name].model_copy(update={"has_default": True, "default": value})
    return [f"preset_vars: {', '.join(sorted(values))}"] if values else []


def _apply_prompt_pack(r: Recipe, wf: ir.Workflow, where: Path) -> list[str]:
    from dsl.templates import TemplateError, extract_refs

    for name, body in r.prompt_pack.items():
        prompt = wf.prompts.get(name)
        if prompt is None:
            raise RecipeError(f"{where}: prompt_pack.{name}: workflow '{wf.name}' has no prompt '{name}'; its prompts: "
                              f"{', '.join(sorted(wf.prompts)) or '(none)'}")
        try:  # the new body's references are parsed again, so they render like the file's own
            refs = extract_refs(body)
        except TemplateError as exc:
            raise RecipeError(f"{where}: prompt_pack.{name}: {exc.message} (at character {exc.offset + 1} of the "
                              "body)") from None
        for ref in refs:
            problem = _ref_problem(ref, wf)
            if problem:
                raise RecipeError(f"{where}: prompt_pack.{name}: {ref.raw} {problem}")
        wf.prompts[name] = prompt.model_copy(update={"body": body, "template_refs": refs})
    return [f"prompt_pack: {', '.join(sorted(r.prompt_pack))}"] if r.prompt_pack else []


def _ref_problem(ref: ir.Ref, wf: ir.Workflow) -> str | None:
    """Why a reference in a replacement prompt can never have a value, or None."""
    if ref.kind == "vars" and ref.path[0] not in wf.vars:
        return f"names no declared var; declared vars: {', '.join(sorted(wf.vars)) or '(none)'}"
    if ref.kind == "outputs" and ref.path[0] not in wf.nodes:
        return f"names no node of workflow '{wf.name}'; its nodes: {', '.join(sorted(wf.nodes))}"
    return None


def _apply_budget(budget: RecipeBudget, wf: ir.Workflow) -> list[str]:
    set_fields = {k: v for k, v in budget.model_dump().items() if v}
    if not set_fields:
        return []
    wf.budget = wf.budget.model_copy() if wf.budget is not None else ir.Budget()
    for key, value in set_fields.items():
        setattr(wf.budget, key, value)
        if key == "max_duration":
            wf.budget.max_duration_seconds = parse_duration(value)
    return ["budget: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in set_fields.items())]


def _check_evaluation(r: Recipe, wf: ir.Workflow, where: Path) -> None:
    metric = r.evaluation_policy.primary_metric if r.evaluation_policy else ""
    if not metric:
        return
    fields = sorted({f.name for schema in wf.schemas.values() for f in schema.fields})
    if metric not in fields:
        hint = difflib.get_close_matches(metric, fields, n=1)
        raise RecipeError(f"{where}: evaluation_policy.primary_metric '{metric}' is no field of any output schema of "
                          f"workflow '{wf.name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
                          + f" (fields: {', '.join(fields) or 'none'})")


# -- `iterloop run --recipe` -----------------------------------------------------------------------


def recipe_workflow(path: Path | None, wf: ir.Workflow) -> tuple[ir.Workflow, AppliedRecipe | None]:
    """The workflow a run executes: ``wf`` with the recipe at ``path`` applied (``wf`` itself without one)."""
    if path is None:
        return wf, None
    applied = apply_recipe(load_recipe(path), wf)
    return applied.workflow, applied


def with_recipe_noted(prepared: PreparedStart, applied: AppliedRecipe | None) -> PreparedStart:
    """``prepared`` recording the recipe it was made with: a note (the start output, the Web UI's run
    details) and a summary line, kept in the run's options, that inspect and report show."""
    if applied is None:
        return prepared
    return prepared.model_copy(update={"notes": [applied.note(), *prepared.notes],
                                       "summary": [applied.summary_line(), *prepared.summary]})
