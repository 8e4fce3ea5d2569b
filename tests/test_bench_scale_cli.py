"""benchmarks/bench_scale.py end to end, small: its own dev server, two worker processes, 20 runs a side.

The benchmark's figures are measurements, not assertions; what is tested here is that the command
runs the whole procedure (park, answer, resume, read the histories) on a real dev server and hands
back every figure it promises, in the `--json` shape scripts read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "bench_scale.py"


def test_scale_benchmark_parks_answers_and_resumes_runs_on_both_sides_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "20", "--margin", "4", "--settle", "0.2", "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    fig = json.loads(done.stdout)
    assert fig["runs"] == 20
    assert fig["max_cached_workflows"] >= 20  # every parked run is cached: the figures are of cached runs
    for side in ("iterloop", "hand-written"):
        s = fig[side]
        assert s["answers"] == 20, side
        assert s["starts_per_s"] > 0 and s["resumes_per_s"] > 0, (side, s)
        assert 0 < s["gate_p50_ms"] <= s["gate_p99_ms"] <= s["gate_max_ms"], (side, s)
        assert s["rss_idle_mb"] > 0 and s["rss_parked_gate_mb"] > 0 and s["rss_parked_timer_mb"] is not None, s
        assert s["history_events"] > 0 and s["history_bytes"] > 0, s
    assert fig["iterloop"]["history_events"] > fig["hand-written"]["history_events"]  # GraphRun's bookkeeping
    assert [c["figure"] for c in fig["checks"]] == [
        "memory per run parked at the gate", "memory per run parked at the timer",
        "start throughput (start -> parked)", "resume throughput (timers fire together)"]
    assert all(isinstance(c["met"], bool) for c in fig["checks"])
