"""`iterloop bench`: one workflow under several recipes, N runs each, compared.

Every run is a real run on the Temporal server, started through the run service exactly as
`iterloop run --recipe` starts it (so a bench run is inspectable, reportable and replayable like
any other), at most ``parallel`` at a time. The bench waits until each run settles (ends, parks as
failed_resumable, or waits for a person: a bench answers no gate, `--skip-gates` does) and then
reads what the run itself recorded: status, usage (tokens, cost), start and close times, outputs.

Per recipe it reports the success rate, mean and median cost, tokens and duration, and, when the
recipe's `evaluation_policy` names a `primary_metric`, that output field's mean over the runs that
produced it (booleans count 1 and 0). A run succeeds when it finishes and, if the policy gives a
`success_value`, its verdict (the primary metric's value in the last output that has it, as Iterion
reads it) equals that value.

Differences from Iterion's benchmark library, on purpose: runs are concurrent (Iterion's were
sequential), a recipe runs N times (Iterion's once), and the figures are aggregated.

The aggregation (`recipe_figures`, `verdict_of`, `is_success`) is pure; `run_bench` is the part
that talks to the server.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from runtime.command_errors import CommandError, UsageError
from runtime.recipes import AppliedRecipe, verdict_text, with_recipe_noted

if TYPE_CHECKING:
    from runtime.run_service import RunService
    from runtime.run_start import PreparedStart
    from workflows.contract.state import Event

#: How many bench runs are in flight at once unless `--parallel` says otherwise.
DEFAULT_PARALLEL = 4
#: The most runs one bench starts (recipes × runs), so a typo in `-n` cannot flood the server.
MAX_BENCH_RUNS = 500


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchRun(_Model):
    """One run of a bench: how it stood when it settled, and what it used."""

    recipe: str
    run_id: str
    status: str = Field(description="The run's status when it settled, or `error` when it could not be started "
                                    "or followed.")
    reason: str = ""
    success: bool
    cost_usd: float = 0.0
    tokens: int = 0
    model_calls: int = 0
    iterations: int = 0
    duration_seconds: float | None = None
    verdict: Any = Field(default=None, description="The primary metric's value in the run's last output that has it.")


class RecipeFigures(_Model):
    """One recipe's runs, aggregated (means and medians over every run that settled)."""

    recipe: str
    file: str
    runs: int
    succeeded: int
    success_rate: float
    statuses: dict[str, int]
    mean_cost_usd: float | None
    median_cost_usd: float | None
    mean_tokens: float | None
    median_tokens: float | None
    mean_duration_seconds: float | None
    median_duration_seconds: float | None
    primary_metric: str = ""
    mean_score: float | None = Field(default=None, description="The primary metric's mean over the runs that "
                                                                "produced a number or a boolean (true = 1).")
    run_ids: list[str]


class BenchReport(_Model):
    """`iterloop bench --json`."""

    bench_id: str
    workflow: str
    file: str
    runs_per_recipe: int
    started_at: str
    finished_at: str
    recipes: list[RecipeFigures]
    runs: list[BenchRun]


@dataclass
class BenchPlan:
    """One recipe's part of a bench: the run it starts N times (prepared once, checked before any start)."""

    applied: AppliedRecipe
    prepared: PreparedStart


# -- pure: verdicts and figures --------------------------------------------------------------------


def verdict_of(events: list[Event], outputs: dict[str, dict[str, Any]], metric: str) -> Any:
    """The value of output field ``metric`` in the last finished node whose output has it (None if none).

    Outputs are the nodes' latest; the events say which of them finished last."""
    if not metric:
        return None
    for event in reversed(events):
        if event.type == "node_finished" and metric in outputs.get(event.node, {}):
            return outputs[event.node][metric]
    having = [out[metric] for out in outputs.values() if metric in out]
    return having[-1] if having else None


def is_success(status: str, verdict: Any, success_value: str) -> bool:
    """Finished, and (when the recipe names one) with the verdict ``success_value`` (compared as text)."""
    if status != "finished":
        return False
    return not success_value or (verdict is not None and verdict_text(verdict) == success_value)


def score_of(verdict: Any) -> float | None:
    """A verdict as a number for the mean score: numbers as they are, booleans 1 and 0, else None."""
    if isinstance(verdict, bool):
        return 1.0 if verdict else 0.0
    if isinstance(verdict, (int, float)):
        return float(verdict)
    return None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def recipe_figures(recipe: str, file: str, runs: list[BenchRun], *, primary_metric: str = "") -> RecipeFigures:
    """One recipe's figures: the success rate over all its runs; cost, tokens and duration over the runs
    that settled (a run that could not be started has none); the score over the runs that have one."""
    settled = [r for r in runs if r.status != "error"]
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    costs = [r.cost_usd for r in settled]
    tokens = [float(r.tokens) for r in settled]
    durations = [r.duration_seconds for r in settled if r.duration_seconds is not None]
    scores = [s for s in (score_of(r.verdict) for r in settled) if s is not None]
    succeeded = sum(r.success for r in runs)
    return RecipeFigures(
        recipe=recipe, file=file, runs=len(runs), succeeded=succeeded,
        success_rate=succeeded / len(runs) if runs else 0.0, statuses=dict(sorted(statuses.items())),
        mean_cost_usd=_mean(costs), median_cost_usd=_median(costs), mean_tokens=_mean(tokens),
        median_tokens=_median(tokens), mean_duration_seconds=_mean(durations),
        median_duration_seconds=_median(durations), primary_metric=primary_metric,
        mean_score=_mean(scores) if primary_metric else None, run_ids=[r.run_id for r in runs])


def _slug(recipe: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", recipe).strip("-")[:60] or "recipe"


def bench_run_ids(bench_id: str, recipe: str, count: int) -> list[str]:
    """`<bench id>-<recipe>-<k>`: run ids that say which bench and recipe a run belongs to."""
    return [f"{bench_id}-{_slug(recipe)}-{k}" for k in range(1, count + 1)]


def check_recipe_names(applied: list[AppliedRecipe]) -> None:
    """Two or more recipes, each named once (the figures are keyed by name, run ids by its slug)."""
    if len(applied) < 2:
        raise UsageError("a bench compares recipes: give at least two (--recipe A.json --recipe B.json)")
    seen: dict[str, AppliedRecipe] = {}
    for a in applied:
        other = seen.get(_slug(a.recipe.name))
        if other is not None:
            same = (f"both named '{a.recipe.name}'" if other.recipe.name == a.recipe.name
                    else f"named '{other.recipe.name}' and '{a.recipe.name}', which give the same run ids")
            raise UsageError(f"recipes {other.path} and {a.path} are {same}; give each recipe of a bench its own name")
        seen[_slug(a.recipe.name)] = a


# -- the server side ---------------------------------------------------------------------------------


Progress = Callable[[BenchRun], None]


async def run_bench(service: RunService, plans: list[BenchPlan], *, workflow: str, file: str, runs: int,
                    parallel: int = DEFAULT_PARALLEL, on_settled: Progress | None = None) -> BenchReport:
    """Start ``runs`` runs of each plan, at most ``parallel`` in flight, wait until each settles, and
    aggregate. A run that cannot be started or followed is recorded as `error` and the bench goes on."""
    if runs < 1 or parallel < 1:
        raise UsageError(f"-n and --parallel must be at least 1 (got -n {runs}, --parallel {parallel})")
    if runs * len(plans) > MAX_BENCH_RUNS:
        raise UsageError(f"{runs} runs × {len(plans)} recipes is {runs * len(plans)} runs, more than a bench starts "
                         f"({MAX_BENCH_RUNS}); lower -n")
    bench_id = f"bench-{uuid.uuid4().hex[:8]}"
    started_at = datetime.now(UTC).isoformat()
    gate = asyncio.Semaphore(parallel)
    start_lock = asyncio.Lock()  # one start at a time: the first may start the server and a worker

    async def one(plan: BenchPlan, run_id: str) -> BenchRun:
        applied = plan.applied
        async with gate:
            try:
                prepared = _with_run_id(plan.prepared, run_id)
                async with start_lock:
                    await service.start(prepared)
                result = await _settled_run(service, applied, run_id)
            except CommandError as exc:
                result = BenchRun(recipe=applied.recipe.name, run_id=run_id, status="error", reason=str(exc),
                                  success=False)
        if on_settled is not None:
            on_settled(result)
        return result

    # Interleaved (A1, B1, A2, B2, …), so each recipe meets the same conditions (a provider's slow
    # minutes, a busy worker) as the others.
    ids = [bench_run_ids(bench_id, plan.applied.recipe.name, runs) for plan in plans]
    jobs = [(plan, ids[i][k]) for k in range(runs) for i, plan in enumerate(plans)]
    results = await asyncio.gather(*(one(plan, run_id) for plan, run_id in jobs))
    figures = []
    for plan in plans:
        applied = plan.applied
        mine = [r for r in results if r.recipe == applied.recipe.name]
        figures.append(recipe_figures(applied.recipe.name, str(applied.path), mine,
                                      primary_metric=applied.evaluation.primary_metric))
    return BenchReport(bench_id=bench_id, workflow=workflow, file=file, runs_per_recipe=runs, started_at=started_at,
                       finished_at=datetime.now(UTC).isoformat(), recipes=figures, runs=list(results))


def _with_run_id(prepared: PreparedStart, run_id: str) -> PreparedStart:
    return prepared.model_copy(update={"request": prepared.request.model_copy(update={"run_id": run_id})})


async def _settled_run(service: RunService, applied: AppliedRecipe, run_id: str) -> BenchRun:
    """Follow the run until it settles, then read its figures from the run itself."""
    from runtime.run_service import SETTLED_STATUSES

    events: list[Event] = []
    status, reason = "running", ""
    async for batch in service.follow(run_id, until=SETTLED_STATUSES):
        events.extend(batch.events)
        if batch.end is not None:
            status, reason = batch.end.status, batch.end.reason
    snapshot = await service.inspect(run_id)
    detail, view = snapshot.detail, snapshot.view
    policy = applied.evaluation
    verdict = verdict_of(events, detail.outputs, policy.primary_metric)
    return BenchRun(recipe=applied.recipe.name, run_id=run_id, status=status, reason=reason,
                    success=is_success(status, verdict, policy.success_text),
                    cost_usd=detail.usage.cost_usd, tokens=detail.usage.total_tokens, model_calls=detail.usage.calls,
                    iterations=int(view.budget_used.get("iterations", 0)),
                    duration_seconds=_duration(detail.started_at, detail.closed_at), verdict=verdict)


def _duration(started_at: str | None, closed_at: str | None) -> float | None:
    """Seconds from start to close (to now for a run that settled without closing: parked, at a gate)."""
    if not started_at:
        return None
    end = datetime.fromisoformat(closed_at) if closed_at else datetime.now(UTC)
    return max(0.0, (end - datetime.fromisoformat(started_at)).total_seconds())


def plan_for(applied: AppliedRecipe, prepared: PreparedStart) -> BenchPlan:
    """A recipe's plan: its prepared start, recording the recipe as `iterloop run --recipe` does. A
    bench measures what each recipe's budget lets a run do, so a budget stop ends its runs
    (`on_budget: end`) instead of parking them for a raise nobody gives."""
    noted = with_recipe_noted(prepared, applied)
    ended = noted.model_copy(update={"run_options": {**noted.run_options, "on_budget": "end"}})
    return BenchPlan(applied=applied, prepared=ended)


# -- output ------------------------------------------------------------------------------------------


def figures_rows(report: BenchReport) -> tuple[tuple[str, ...], list[tuple[str, ...]], set[int]]:
    """The text table: headers, one row per recipe, the right-aligned (number) columns."""
    headers = ("RECIPE", "RUNS", "SUCCESS", "COST MEAN", "COST MEDIAN", "TOKENS MEAN", "TOKENS MEDIAN",
               "DURATION MEAN", "DURATION MEDIAN", "SCORE")
    rows = []
    for f in report.recipes:
        rows.append((f.recipe, str(f.runs), f"{f.success_rate:.0%} ({f.succeeded}/{f.runs})", _usd(f.mean_cost_usd),
                     _usd(f.median_cost_usd), _count(f.mean_tokens), _count(f.median_tokens),
                     _seconds(f.mean_duration_seconds), _seconds(f.median_duration_seconds),
                     f"{f.primary_metric} {f.mean_score:.2f}" if f.mean_score is not None
                     else (f"{f.primary_metric} –" if f.primary_metric else "–")))
    return headers, rows, {1, 3, 4, 5, 6, 7, 8}


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4f}"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}s"


def print_bench(report: BenchReport, *, as_json: bool) -> None:
    """The report: one JSON document, or a header, the per-recipe table and the runs that did not succeed."""
    from runtime.console import print_columns, print_json

    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    n = report.runs_per_recipe
    print(f"bench {report.bench_id}: workflow {report.workflow} ({report.file}), {len(report.recipes)} recipes × "
          f"{n} run{'s' if n != 1 else ''}")
    headers, rows, right = figures_rows(report)
    print_columns(headers, rows, right=right)
    unsettled = [r for r in report.runs if not r.success]
    if unsettled:
        print("\nruns that did not succeed:")
        for r in unsettled:
            print(f"  {r.run_id}  {r.status}" + (f"  {r.reason}" if r.reason else "")
                  + (f"  ({r.recipe}: verdict {verdict_text(r.verdict)})" if r.status == "finished" else ""))
    waiting = [r.run_id for r in report.runs if r.status in ("waiting_human", "failed_resumable")]
    if waiting:
        print(f"\n{len(waiting)} run(s) still wait (a gate, or a park to retry): answer, retry or "
              f"`iterloop cancel` them, e.g. `iterloop cancel {waiting[0]}`")


class BenchProgress:
    """What the bench shows on stderr while it runs: a rich progress bar per recipe on a terminal, a
    line per settled run otherwise (a log, CI)."""

    def __init__(self, recipes: list[str], runs: int, *, live: bool) -> None:
        self.live = live
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, int] = dict.fromkeys(recipes, 0)
        self._runs = runs
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._tasks = {name: self._bar.add_task(name, total=runs, note="") for name in recipes}

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def settled(self, run: BenchRun) -> None:
        self._done[run.recipe] = self._done.get(run.recipe, 0) + 1
        if self._bar is not None:
            self._bar.update(self._tasks[run.recipe], advance=1, note=f"last: {run.status}")
        else:
            import sys

            print(f"iterloop: bench: {run.recipe} {self._done[run.recipe]}/{self._runs}: run {run.run_id} "
                  f"{run.status}", file=sys.stderr, flush=True)
