"""How much history a growth-loop cycle writes, and how many cycles fit before continue-as-new.

    python benchmarks/bench_history.py [--quick] [--json]          (or: make bench-history)

A growth loop runs for months: a cycle a week, a look at the experiment a day. Temporal keeps a
run's whole history, suggests continue-as-new past 4,096 events or 4 MiB (the server's
`limit.historyCount.suggestContinueAsNew` / `limit.historySize.suggestContinueAsNew`) and ends a
run at 51,200 events or 50 MiB. GraphRun continues as new when the server suggests it (or past
`RunOptions.continue_as_new_after_events`), between nodes and with nothing open
(`workflows/graph_run.py` `maybe_continue_as_new`). This benchmark says how far that is, in
cycles.

It runs the offline growth loop (examples/growth_loop.iter with the demo preset: mock connector,
scripted model, local flags, gates answered as `--skip-gates` does) on an in-memory dev server
with one offline worker, three times, all three at once:

- A: 1 cycle, 1 look at the experiment (min_runtime 0s: the first look decides);
- B: CYCLES cycles, 1 look each;
- C: 1 cycle, LOOKS looks (the minimum runtime keeps the first LOOKS-1 looks at CONTINUE).

Events and bytes per cycle = (B - A) / (CYCLES - 1); per extra look = (C - A) / (LOOKS - 1); the
rest of A is the run's fixed part. Bytes are the serialized size of the history events (what the
server stores and a replaying worker downloads). Cycles before continue-as-new, for a cycle of
k looks: (threshold - fixed) / (per cycle + (k - 1) per look), the smaller of the event and the
byte threshold, for k = 1, 7 (a week of daily looks) and 14. No targets: figures for sizing.
Quick mode: 3 cycles and 3 looks (about 30 s); full: 5 cycles and 5 looks (about a minute).
Exit status 0 whatever the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import math
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOOP = REPO / "examples" / "growth_loop.iter"
SCRIPT = REPO / "examples" / "growth_loop.script.yaml"
DEMO_PRESET = REPO / "examples" / "growth_loop.demo.yaml"

#: Temporal Server 1.29's defaults (docs: limit.historyCount.* / limit.historySize.*).
SUGGEST_CAN_EVENTS = 4096
SUGGEST_CAN_BYTES = 4 * 1024 * 1024
HARD_LIMIT_EVENTS = 51_200
HARD_LIMIT_BYTES = 50 * 1024 * 1024
LOOKS_PER_CYCLE = (1, 7, 14)


def preset_text(directory: Path, *, cycles: int, looks: int, cadence_s: float) -> str:
    """The demo preset, writing into ``directory``; ``looks`` looks per cycle (min_runtime between)."""
    min_runtime = 0.0 if looks == 1 else cadence_s * (looks - 0.5)
    return (f"extends: {DEMO_PRESET}\n"
            f"monitoring: {{cadence: {cadence_s:g}s, max_looks_per_cycle: {looks + 2}}}\n"
            f"thresholds: {{min_runtime: {min_runtime:g}s}}\n"
            f"flags: {{settings: {{path: {directory / 'flags.json'}}}}}\n"
            f"learnings_dir: {directory / 'learnings'}\n"
            f"cycles: {cycles}\n")


def history_size(events: list[Any]) -> tuple[int, int]:
    return len(events), sum(e.ByteSize() for e in events)


async def one_run(client: Any, task_queue: str, directory: Path, *, cycles: int, looks: int,
                  cadence_s: float) -> dict[str, Any]:
    """Run the offline growth loop once; its history's size and what it did (cycles, looks)."""
    import uuid

    import dsl
    from runtime.presets import prepare_run
    from workflows.contract.scripts import load_script
    from workflows.contract.state import WORKFLOW_TYPE, RunInput, RunOptions, RunResult

    directory.mkdir(parents=True, exist_ok=True)
    checked = dsl.check_file(LOOP)
    if not checked.ok:
        raise SystemExit("\n".join(d.render() for d in checked.diagnostics))
    config = directory / "loop.yaml"
    config.write_text(preset_text(directory, cycles=cycles, looks=looks, cadence_s=cadence_s))
    prepared = prepare_run(config, checked.workflow, skip_gates=True, stop_after=[])
    options = RunOptions(script=load_script(SCRIPT), **{"on_budget": "park", **prepared.run_options})
    handle = await client.start_workflow(
        WORKFLOW_TYPE, RunInput(workflow=prepared.workflow, run_inputs=prepared.inputs, source=str(LOOP),
                                options=options),
        id=f"history-{cycles}c{looks}l-{uuid.uuid4().hex[:8]}", task_queue=task_queue, result_type=RunResult)
    result = await handle.result()
    if result.status != "finished":
        raise SystemExit(f"growth loop ({cycles} cycles, {looks} looks) ended {result.status}: {result.reason}")
    events = list((await handle.fetch_history()).events)
    n, size = history_size(events)
    from temporalio.api.enums.v1 import EventType

    can = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    return {"cycles": cycles, "looks": looks, "events": n, "bytes": size, "continued_as_new": can,
            "run_id": handle.id}


def cycles_before(fixed: float, per_cycle: float, threshold: float) -> int:
    return max(0, math.floor((threshold - fixed) / per_cycle)) if per_cycle > 0 else 0


def figures(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": {"A": a, "B": b, "C": c}}
    for unit in ("events", "bytes"):
        per_cycle = (b[unit] - a[unit]) / (b["cycles"] - 1)
        per_look = (c[unit] - a[unit]) / (c["looks"] - 1)
        out[f"{unit}_per_cycle"] = per_cycle
        out[f"{unit}_per_look"] = per_look
        out[f"{unit}_fixed"] = a[unit] - per_cycle
    out["cycles_before_can"] = {}
    for k in LOOKS_PER_CYCLE:
        ev = out["events_per_cycle"] + (k - 1) * out["events_per_look"]
        by = out["bytes_per_cycle"] + (k - 1) * out["bytes_per_look"]
        by_events = cycles_before(out["events_fixed"], ev, SUGGEST_CAN_EVENTS)
        by_bytes = cycles_before(out["bytes_fixed"], by, SUGGEST_CAN_BYTES)
        out["cycles_before_can"][str(k)] = {
            "events_per_cycle": ev, "bytes_per_cycle": by, "by_events": by_events, "by_bytes": by_bytes,
            "cycles": min(by_events, by_bytes), "limited_by": "events" if by_events <= by_bytes else "bytes",
            "cycles_before_hard_limit": min(cycles_before(out["events_fixed"], ev, HARD_LIMIT_EVENTS),
                                            cycles_before(out["bytes_fixed"], by, HARD_LIMIT_BYTES))}
    return out


async def run(cycles: int, looks: int, cadence_s: float) -> dict[str, Any]:
    import asyncio
    import tempfile
    import time
    import uuid

    from bench_runtime import bench_worker, start_server

    t_start = time.perf_counter()
    env = await start_server(False)
    try:
        task_queue = f"history-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
            async with bench_worker(env.client, task_queue):
                print(f"growth loop offline: 1 cycle/1 look, {cycles} cycles/1 look, 1 cycle/{looks} looks "
                      "(at once) ...", file=sys.stderr, flush=True)
                a, b, c = await asyncio.gather(
                    one_run(env.client, task_queue, Path(tmp) / "a", cycles=1, looks=1, cadence_s=cadence_s),
                    one_run(env.client, task_queue, Path(tmp) / "b", cycles=cycles, looks=1, cadence_s=cadence_s),
                    one_run(env.client, task_queue, Path(tmp) / "c", cycles=1, looks=looks, cadence_s=cadence_s))
    finally:
        await env.shutdown()
    out = figures(a, b, c)
    out["total_s"] = time.perf_counter() - t_start
    return out


def report(fig: dict[str, Any]) -> None:
    runs = fig["runs"]
    print()
    print("growth-loop history (offline demo: mock connector, scripted model; bytes = serialized events)")
    for key, r in runs.items():
        print(f"  run {key}: {r['cycles']} cycle(s), {r['looks']} look(s) per cycle: {r['events']} events, "
              f"{r['bytes'] / 1024:.1f} KB" + (f", continued as new {r['continued_as_new']}x"
                                                if r["continued_as_new"] else ""))
    print(f"per cycle (1 look): {fig['events_per_cycle']:.0f} events, {fig['bytes_per_cycle'] / 1024:.1f} KB; "
          f"per extra look: {fig['events_per_look']:.0f} events, {fig['bytes_per_look'] / 1024:.1f} KB; "
          f"fixed part: {fig['events_fixed']:.0f} events, {fig['bytes_fixed'] / 1024:.1f} KB")
    print(f"{'looks per cycle':<16} {'events/cycle':>13} {'KB/cycle':>9} {'cycles before continue-as-new':>31} "
          f"{'(by events / by bytes)':>24} {'before the hard limit':>22}")
    for k, row in fig["cycles_before_can"].items():
        print(f"{k:<16} {row['events_per_cycle']:>13.0f} {row['bytes_per_cycle'] / 1024:>9.1f} "
              f"{row['cycles']:>31} {row['by_events']:>11} / {row['by_bytes']:<10} "
              f"{row['cycles_before_hard_limit']:>22}")
    print(f"(the server suggests continue-as-new at {SUGGEST_CAN_EVENTS} events or "
          f"{SUGGEST_CAN_BYTES // 1024 // 1024} MiB; GraphRun then continues between nodes, carrying its state, so a "
          "loop never reaches the hard limit)")
    print(f"total {fig['total_s']:.0f} s")


def main() -> None:
    import argparse
    import asyncio
    import json
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 cycles and 3 looks instead of 5 and 5")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args()
    n = 3 if args.quick else 5
    if not args.json:
        print(f"iterloop history benchmark{' (quick)' if args.quick else ''}, Python {sys.version.split()[0]}")
    fig = asyncio.run(run(cycles=n, looks=n, cadence_s=1.0))
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        report(fig)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as bench_runtime.py (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()
