"""How often the growth loop's verdict is wrong, and how often it finds a real effect: a simulation.

    .venv/bin/python benchmarks/bench_stats.py [--sims N] [--seed S] [--json]     (or: make bench-stats)

Every look of every simulated experiment goes through the real verdict path the growth loop uses:
the `calculate_sample_size` and `calculate_significance` tool functions
(`activities/tools/statistics.py`), called with the arguments `examples/growth_loop.iter` passes
(control by name, alpha, `method: sequential`, the planned N from the sequential plan, the minimum
runtime, the target MDE and power, the guardrail margin) on results shaped exactly like
`get_experiment_results`' answer (`ExperimentReadout`, with the CUPED pre-period statistics the
mock connector supplies). Only the data is simulated, as daily summary statistics with numpy
(users per arm, and per metric the arm's sum and its pre-period sum, jointly normal with the
metric's pre/post correlation), which is what a connector returns each day; the tool then judges
the cumulative numbers, as the loop does every `monitoring.cadence`.

Figures (targets from issue 13):
1. A/A under 30 daily looks, stopping at the first conclusive verdict as the loop does: the share
   of experiments called SHIP_WINNER (false ship) and KILL_LOSER (false kill), each <= alpha, for
   - the conversion path: primary `checkout_conversion` only, 2 arms;
   - the guardrail path: the same, plus the loop's three guardrails (refund_rate,
     checkout_error_rate, revenue_per_user), read at every look;
   - the multi-arm path: a control and two treatments, Holm-corrected.
2. Realised power at the planned MDE: the treatment truly lifts conversion by `mde` (5 %), the
   test is sized by `calculate_sample_size(method="sequential")` and traffic reaches that N at the
   30th look; the share called SHIP_WINNER. Target >= 78 %. Twice: with the mock's CUPED
   covariates (what the loop reads on the mock: more power than planned, the plan ignores CUPED)
   and without them (a source with no pre-period data: the plan's own promise).
3. CUPED variance reduction on the mock data: `calculate_significance`'s `variance_reduction` on
   the mock connector's own results for each metric, against rho^2 from the dataset's model.

The simulations run in two processes (the 2-core budget), in chunks of 50 with their own seeds.
A look costs the tool about 1 ms (3 with guardrails or three arms), so the defaults (2,000 A/A
simulations per path, 1,000 at the MDE with and without CUPED: about 190,000 looks) take 2-4
minutes on two cores. Exit status is 0 whatever the figures:
this is a measurement, not a test (tests/benchmarks/test_bench_stats.py checks the functions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.connectors.mock import MockConnector
from activities.connectors.models import VariantResult
from activities.tools.experiments import ExperimentReadout, GuardrailResults
from activities.tools.statistics import (
    SampleSizeQuery,
    SignificanceQuery,
    calculate_sample_size,
    calculate_significance,
)

# The growth loop's defaults (examples/growth_loop.iter vars / growth_loop.yaml thresholds).
ALPHA, POWER, MDE, MIN_DAYS, GUARDRAIL_MARGIN = 0.05, 0.8, 0.05, 3.0, 0.02
METHOD, CONTROL, LOOKS = "sequential", "control", 30
#: Traffic: the arms reach 2 % over the planned N per arm at the 30th look, so all 30 looks are
#: read (the most peeking the loop does: `monitoring.max_looks_per_cycle` 30, cadence 1 day) and
#: the last one is at the horizon.
REACH = 1.02
BASELINE = 0.30  # checkout_conversion in the mock (the post-release mobile rate)
AS_OF = datetime(2025, 4, 28, tzinfo=UTC)


@dataclass(frozen=True)
class MetricModel:
    """One metric's per-unit distribution and its CUPED pre/post correlation (the mock's values)."""

    name: str
    kind: str  # conversion | continuous
    mean: float
    sd: float
    rho: float
    higher_is_better: bool = True

    @staticmethod
    def conversion(name: str, p: float, rho: float, *, higher_is_better: bool = True) -> MetricModel:
        return MetricModel(name, "conversion", p, math.sqrt(p * (1 - p)), rho, higher_is_better)


PRIMARY = MetricModel.conversion("checkout_conversion", BASELINE, 0.45)
GUARDRAILS = (MetricModel.conversion("refund_rate", 0.0072, 0.2, higher_is_better=False),
              MetricModel.conversion("checkout_error_rate", 0.065, 0.3, higher_is_better=False),
              MetricModel("revenue_per_user", "continuous", 19.8, 36.6, 0.55))


@dataclass
class PathResult:
    path: str
    sims: int
    arms: int
    planned_n_per_arm: int
    ship: int = 0
    kill: int = 0
    inconclusive: int = 0
    undecided: int = 0  # still CONTINUE after the last look
    looks: int = 0  # tool calls made
    seconds: float = 0.0
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def ship_rate(self) -> float:
        return self.ship / self.sims

    @property
    def kill_rate(self) -> float:
        return self.kill / self.sims


def run(coro: Any) -> Any:
    """Run a tool coroutine to completion on this process's event loop."""
    return _LOOP.run_until_complete(coro)


_LOOP = asyncio.new_event_loop()


def planned_n(treatments: int = 1) -> int:
    """The loop's `size_test`: sized for the sequential test the verdict runs."""
    plan = run(calculate_sample_size(SampleSizeQuery.model_validate(
        {"baseline_rate": BASELINE, "mde": MDE, "alpha": ALPHA, "power": POWER, "method": METHOD,
         "treatments": treatments})))
    return int(plan.n_per_arm)


def simulate_arms(rng: np.random.Generator, sims: int, arms: int, daily_per_arm: float, metric: MetricModel,
                  lifts: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative users, metric means and pre-period means: arrays [sims, arms, LOOKS].

    Users arrive daily (Poisson around ``daily_per_arm`` x arms, split evenly by a multinomial);
    each day's arm sum of the metric and of its pre-period value are jointly normal with the
    per-unit mean, variance and correlation of ``metric`` (a day holds thousands of units, so the
    normal is the sum's distribution to well within the simulation's own noise).
    """
    totals = rng.poisson(daily_per_arm * arms, size=(sims, LOOKS))
    users = rng.multinomial(totals, [1 / arms] * arms).transpose(0, 2, 1).astype(float)  # [sims, arms, days]
    z1 = rng.standard_normal(users.shape)
    z2 = rng.standard_normal(users.shape)
    means = np.array([metric.mean * (1 + lift) for lift in lifts])[None, :, None]
    sds = np.array([_sd(metric, metric.mean * (1 + lift)) for lift in lifts])[None, :, None]
    root = np.sqrt(users)
    day_sum_y = users * means + root * sds * z1
    day_sum_x = users * metric.mean + root * metric.sd * (metric.rho * z1 + math.sqrt(1 - metric.rho**2) * z2)
    n = np.cumsum(users, axis=2)
    mean_y = np.cumsum(day_sum_y, axis=2) / np.maximum(n, 1)
    mean_x = np.cumsum(day_sum_x, axis=2) / np.maximum(n, 1)
    if metric.kind == "conversion":
        mean_y = np.clip(mean_y, 0, 1)
        mean_x = np.clip(mean_x, 0, 1)
    return n.astype(int), mean_y, mean_x


def _sd(metric: MetricModel, mean: float) -> float:
    return math.sqrt(mean * (1 - mean)) if metric.kind == "conversion" else metric.sd


def arm_result(metric: MetricModel, variant: str, n: int, mean_y: float, mean_x: float | None) -> VariantResult:
    """One arm as a connector reports it (the mock's fields: counts, means, and CUPED statistics
    unless ``mean_x`` is None, as from a source without pre-period data)."""
    sd_y = _sd(metric, mean_y) if metric.kind == "conversion" else metric.sd
    fields: dict[str, Any] = {}
    if mean_x is not None:
        sd_x = _sd(metric, mean_x) if metric.kind == "conversion" else metric.sd
        fields = {"pre_mean": mean_x, "pre_sd": sd_x, "pre_covariance": metric.rho * sd_x * sd_y}
    if metric.kind == "conversion":
        conversions = min(n, max(0, round(n * mean_y)))
        return VariantResult(variant=variant, users=n, conversions=conversions,
                             conversion_rate=conversions / n if n else 0.0, **fields)
    return VariantResult(variant=variant, users=n, conversions=n, conversion_rate=1.0, value_mean=mean_y,
                         value_sd=sd_y, **fields)


def readout(arms: list[str], primary: tuple[np.ndarray, ...], guardrails: list[tuple[np.ndarray, ...]],
            sim: int, day: int, *, cuped: bool = True) -> ExperimentReadout:
    """The `get_experiment_results` answer for simulation ``sim`` at look ``day`` (0-based)."""
    def results(metric: MetricModel, data: tuple[np.ndarray, ...]) -> dict[str, Any]:
        n, y, x = data
        return {"experiment_key": "exp_sim", "metric": metric.name, "metric_kind": metric.kind, "as_of": AS_OF,
                "variants": [arm_result(metric, a, int(n[sim, i, day]), float(y[sim, i, day]),
                                        float(x[sim, i, day]) if cuped else None) for i, a in enumerate(arms)]}

    guards = [GuardrailResults(**results(m, d), higher_is_better=m.higher_is_better)
              for m, d in zip(GUARDRAILS, guardrails)]
    return ExperimentReadout(**results(PRIMARY, primary), guardrails=guards)


def verdict(results: ExperimentReadout, planned: int, day: int, arms: int) -> str:
    """`calculate_significance` with the arguments the growth loop's `significance` node passes."""
    args = SignificanceQuery.model_validate({
        "results": results, "control": CONTROL, "alpha": ALPHA, "method": METHOD,
        "expected_split": {a.variant: 100 / arms for a in results.variants}, "days_running": float(day + 1),
        "planned_n_per_arm": planned, "min_days": MIN_DAYS, "target_mde": MDE, "power": POWER,
        "guardrail_margin": GUARDRAIL_MARGIN})
    return str(run(calculate_significance(args)).decision)


def simulate_path(path: str, sims: int, seed: int) -> PathResult:
    """One path's simulations, each stopped at its first conclusive verdict (as the loop does)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    arms = ["control", "treatment_a", "treatment_b"] if path == "multi_arm" else ["control", "treatment"]
    treatments = len(arms) - 1
    planned = planned_n(treatments)
    daily = planned * REACH / LOOKS  # the planned N is reached at the last look
    lifts = [0.0] * len(arms)
    if path.startswith("power"):
        lifts = [0.0, MDE]
    primary = simulate_arms(rng, sims, len(arms), daily, PRIMARY, lifts)
    guardrails = [simulate_arms(rng, sims, len(arms), daily, g, [0.0] * len(arms)) for g in GUARDRAILS] \
        if path == "guardrails" else []
    out = PathResult(path, sims, len(arms), planned)
    for sim in range(sims):
        decision = "CONTINUE"
        for day in range(LOOKS):
            look = readout(arms, primary, guardrails, sim, day, cuped=path != "power_no_cuped")
            decision = verdict(look, planned, day, len(arms))
            out.looks += 1
            if decision != "CONTINUE":
                break
        decision = str(decision)
        out.decisions[decision] = out.decisions.get(decision, 0) + 1
        if decision == "SHIP_WINNER":
            out.ship += 1
        elif decision == "KILL_LOSER":
            out.kill += 1
        elif decision == "INCONCLUSIVE":
            out.inconclusive += 1
        else:
            out.undecided += 1
    out.seconds = time.perf_counter() - started
    return out


def wilson_upper(k: int, n: int, z: float = 1.96) -> float:
    """The upper end of the 95 % Wilson interval of a rate k / n: how high it could really be."""
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def merge(a: PathResult, b: PathResult) -> PathResult:
    """Two chunks of the same path as one."""
    decisions = dict(a.decisions)
    for k, v in b.decisions.items():
        decisions[k] = decisions.get(k, 0) + v
    return PathResult(a.path, a.sims + b.sims, a.arms, a.planned_n_per_arm, a.ship + b.ship, a.kill + b.kill,
                      a.inconclusive + b.inconclusive, a.undecided + b.undecided, a.looks + b.looks,
                      a.seconds + b.seconds, decisions)


def cuped_on_mock() -> list[dict[str, Any]]:
    """The variance reduction `calculate_significance` reports on the mock connector's results."""
    mock = MockConnector({"end_date": "2025-04-27"})
    model = mock.data.experiment_model["metrics"]
    rows = []
    for metric, spec in model.items():
        if spec["kind"] == "ratio":
            continue
        res = run(mock.experiment_results("exp_a3f7b9c2", metric))
        readout_ = ExperimentReadout(**res.model_dump())
        out = run(calculate_significance(SignificanceQuery.model_validate(
            {"results": readout_, "control": CONTROL, "alpha": ALPHA, "method": METHOD, "days_running": 14.0})))
        rows.append({"metric": metric, "kind": spec["kind"], "rho": spec["pre_correlation"],
                     "expected": spec["pre_correlation"] ** 2, "cuped_applied": bool(out.cuped_applied),
                     "variance_reduction": out.variance_reduction})
    return rows


CHUNK = 50


def measure(sims: int, power_sims: int, seed: int, workers: int = 2) -> dict[str, Any]:
    """All figures: the four simulated paths in chunks over ``workers`` processes, then CUPED."""
    started = time.perf_counter()
    jobs = []
    for i, (path, n) in enumerate([("multi_arm", sims), ("guardrails", sims), ("conversion", sims),
                                   ("power", power_sims), ("power_no_cuped", power_sims)]):
        jobs += [(path, min(CHUNK, n - start), seed + 1000 * i + start) for start in range(0, n, CHUNK)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(simulate_path, *zip(*jobs)))
    else:
        results = [simulate_path(*job) for job in jobs]
    paths: dict[str, PathResult] = {}
    for r in results:
        paths[r.path] = merge(paths[r.path], r) if r.path in paths else r
    aa = []
    for name in ("conversion", "guardrails", "multi_arm"):
        r = paths[name]
        aa.append({**asdict(r), "false_ship_rate": r.ship_rate, "false_kill_rate": r.kill_rate,
                   "false_ship_upper95": wilson_upper(r.ship, r.sims),
                   "false_kill_upper95": wilson_upper(r.kill, r.sims),
                   "target": ALPHA, "pass": r.ship_rate <= ALPHA and r.kill_rate <= ALPHA})
    p, q = paths["power"], paths["power_no_cuped"]
    return {
        "settings": {"alpha": ALPHA, "power": POWER, "mde": MDE, "method": METHOD, "looks": LOOKS,
                     "min_days": MIN_DAYS, "baseline_rate": BASELINE, "seed": seed},
        "aa": aa,
        "power": {**asdict(p), "realised_power": p.ship_rate, "target": 0.78, "pass": p.ship_rate >= 0.78},
        "power_no_cuped": {**asdict(q), "realised_power": q.ship_rate, "target": 0.78, "pass": q.ship_rate >= 0.78},
        "cuped": cuped_on_mock(),
        "seconds": time.perf_counter() - started,
    }


def render(figures: dict[str, Any]) -> str:
    s = figures["settings"]
    lines = [(f"Growth-loop verdict path: alpha {s['alpha']}, {s['method']}, {s['looks']} daily looks, "
              f"min runtime {s['min_days']:g} d, baseline {s['baseline_rate']:.0%}, MDE {s['mde']:.0%} relative"),
             "",
             (f"{'A/A path':<12} {'arms':>4} {'planned N/arm':>13} {'sims':>6} {'false SHIP':>10} {'false KILL':>10} "
              f"{'target':>7} {'':>5}  (95 % upper bounds: SHIP / KILL)")]
    for r in figures["aa"]:
        lines.append(f"{r['path']:<12} {r['arms']:>4} {r['planned_n_per_arm']:>13,} {r['sims']:>6} "
                     f"{r['false_ship_rate']:>10.2%} {r['false_kill_rate']:>10.2%} "
                     f"{'<= ' + format(r['target'], '.0%'):>7} "
                     f"{'PASS' if r['pass'] else 'MISS':>5}  "
                     f"{r['false_ship_upper95']:.1%} / {r['false_kill_upper95']:.1%}")
    p = figures["power"]
    lines += ["", (f"Realised power at the planned MDE (+{s['mde']:.0%}, planned N {p['planned_n_per_arm']:,}/arm, "
                   "reached at the last look; target >= 78 %)")]
    for label, key in (("with CUPED (the mock's pre-period, rho 0.45)", "power"),
                       ("without pre-period data (GA4, Mixpanel, …)", "power_no_cuped")):
        r = figures[key]
        lines.append(f"  {label:<46} {r['realised_power']:>6.1%} of {r['sims']}  {'PASS' if r['pass'] else 'MISS'}  "
                     f"{r['decisions']}")
    lines += ["", f"{'CUPED on the mock data':<28} {'rho':>5} {'rho^2':>7} {'reported':>9}"]
    for c in figures["cuped"]:
        reported = "n/a" if c["variance_reduction"] is None else f"{c['variance_reduction']:.1%}"
        lines.append(f"{c['metric']:<28} {c['rho']:>5.2f} {c['expected']:>7.1%} {reported:>9}")
    lines += ["", f"{figures['seconds']:.0f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="A/A simulations per path (default 2000)")
    parser.add_argument("--power-sims", type=int, default=1000, help="simulations at the planned MDE (default 1000)")
    parser.add_argument("--seed", type=int, default=20251207)
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2: the benchmark's budget)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.sims, args.power_sims, args.seed, args.workers)
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
