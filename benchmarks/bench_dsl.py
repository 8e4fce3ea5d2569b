"""How fast the `.iter` toolchain is, against the targets the project set itself.

    python benchmarks/bench_dsl.py          (or: make bench)

Three figures:
1. parse + compile + validate throughput (lines/s, best of several runs) on a generated
   5,000-line workflow: a chain of stages (schema, two prompts, an agent each) with conditional
   edges, a bounded loop back from every stage, and `with` mappings. Target >= 20,000 lines/s.
2. the same on every `examples/**/*.iter`, checked one after the other. Same target.
3. cold `iterloop validate` of a generated 1,000-line file: a fresh interpreter each time, as in
   an editor or a pre-commit hook (median of 5). Target < 300 ms. Interpreter start-up and the
   import of `cli` are measured too, since they are most of that time.

Exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dsl  # noqa: E402  (needs the repository on sys.path first)

TARGET_LINES_PER_S = 20_000
TARGET_COLD_VALIDATE_S = 0.300


# -- generated workflows ---------------------------------------------------------------------------


def stage(i: int) -> str:
    """One stage: its output schema, its prompts and its agent (about 24 lines)."""
    previous = f"{{{{outputs.s{i - 1}.summary}}}}" if i > 0 else "{{vars.topic}}"
    return f"""\
## stage {i}
schema out{i}:
  approved: bool
  summary: string
  score: float
  risk: string [enum: "low", "medium", "high"]

prompt sys{i}:
  You are stage {i} of a long review chain about {{{{vars.topic}}}}.
  Be precise, cite evidence and keep the summary short.

prompt usr{i}:
  Review what the previous stage concluded:
  {previous}
  Decide whether it is good enough to move on.

agent s{i}:
  model: "bench-model"
  output: out{i}
  system: sys{i}
  user: usr{i}
  session: fresh

"""


def edges(i: int, last: int) -> str:
    """Forward when approved; when not, back to the previous stage as a bounded loop."""
    target = f"s{i + 1}" if i < last else "done"
    forward = f"  s{i} -> {target} when approved"
    if i % 5 == 0 and i < last:
        forward += f' with {{ note: "{{{{outputs.s{i}.summary}}}}" }}'
    back = f"  s{i} -> s{i - 1} when not approved as back{i}(2)" if i > 0 else f"  s{i} -> fail when not approved"
    return f"{forward}\n{back}\n"


def generated_workflow(target_lines: int) -> str:
    """A valid workflow of at least ``target_lines`` lines (stages are added until it is long enough)."""
    header = 'vars:\n  topic: string = "checkout conversion"\n  max_risk: string = "medium"\n\n'
    stages: list[str] = []
    total = header.count("\n")
    per_stage_edges = 2
    while total + 4 < target_lines:
        block = stage(len(stages))
        stages.append(block)
        total += block.count("\n") + per_stage_edges
    last = len(stages) - 1
    workflow = "workflow bench:\n  entry: s0\n  budget:\n    max_iterations: 500\n\n"
    workflow += "".join(edges(i, last) for i in range(len(stages)))
    return header + "".join(stages) + workflow


def line_count(source: str) -> int:
    return source.count("\n") + (0 if source.endswith("\n") else 1)


# -- measuring -------------------------------------------------------------------------------------


def best_time(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_generated(lines: int = 5_000, runs: int = 5) -> bool:
    source = generated_workflow(lines)
    result = dsl.check_source(source)
    assert result.ok, [d.render() for d in result.errors][:5]
    n = line_count(source)
    seconds = best_time(lambda: dsl.check_source(source), runs)
    rate = n / seconds
    ok = rate >= TARGET_LINES_PER_S
    print(f"generated workflow   {n:>6} lines  {seconds * 1000:8.1f} ms  {rate:>10,.0f} lines/s"
          f"   target >= {TARGET_LINES_PER_S:,}  {verdict(ok)}")
    return ok


def bench_examples(runs: int = 20) -> bool:
    files = sorted((REPO / "examples").rglob("*.iter"))
    if not files:
        print("examples             none found under examples/")
        return True
    sources = [(f, f.read_text(encoding="utf-8")) for f in files]
    for path, source in sources:
        result = dsl.check_source(source)
        if not result.ok:
            print(f"  note: {path.relative_to(REPO)} has errors; it is still timed")

    def check_all() -> None:
        for _, source in sources:
            dsl.check_source(source)

    total_lines = sum(line_count(s) for _, s in sources)
    seconds = best_time(check_all, runs)
    rate = total_lines / seconds
    ok = rate >= TARGET_LINES_PER_S
    print(f"examples ({len(files)} files)   {total_lines:>6} lines  {seconds * 1000:8.1f} ms  {rate:>10,.0f} lines/s"
          f"   target >= {TARGET_LINES_PER_S:,}  {verdict(ok)}")
    for path, source in sources:
        n = line_count(source)
        t = best_time(lambda s=source: dsl.check_source(s), runs)
        print(f"    {str(path.relative_to(REPO)):<44} {n:>5} lines  {t * 1000:7.2f} ms  {n / t:>10,.0f} lines/s")
    return ok


def cli_command() -> list[str]:
    """The installed console script if there is one (what users run), else the module."""
    script = Path(sys.executable).with_name("iterloop")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import cli; cli.main()"]


def wall_times(commands: dict[str, list[str]], runs: int, *, env: dict[str, str], cwd: Path) -> dict[str, list[float]]:
    """Run each command ``runs`` times, interleaved so that background load hits them all alike."""
    for cmd in commands.values():  # warm the OS cache and the .pyc files
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return times


def bench_cold_validate(lines: int = 1_000, runs: int = 5) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.iter"
        source = generated_workflow(lines)
        path.write_text(source, encoding="utf-8")
        cmd = [*cli_command(), "validate", str(path)]
        check = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        times = wall_times(
            {
                "validate": cmd,
                "python": [sys.executable, "-c", "pass"],
                "dsl": [sys.executable, "-c", "import dsl"],
                "cli": [sys.executable, "-c", "import cli"],
            },
            runs,
            env=env,
            cwd=REPO,
        )
    validate = statistics.median(times["validate"])
    ok = validate < TARGET_COLD_VALIDATE_S
    n = line_count(source)
    print(f"cold validate        {n:>6} lines  {validate * 1000:8.1f} ms (median of {runs}, fastest"
          f" {min(times['validate']) * 1000:.0f} ms)   target < {TARGET_COLD_VALIDATE_S * 1000:.0f} ms  {verdict(ok)}")
    fastest = {name: min(values) for name, values in times.items()}
    print(f"    fastest runs: python start-up {fastest['python'] * 1000:.0f} ms,"
          f" + `import dsl` (pydantic included) {(fastest['dsl'] - fastest['python']) * 1000:.0f} ms,"
          f" + typer and cli {(fastest['cli'] - fastest['dsl']) * 1000:.0f} ms,"
          f" + checking and output {(fastest['validate'] - fastest['cli']) * 1000:.0f} ms")
    print(f"    command: {' '.join(cmd[:-2])} validate FILE")
    if not ok:
        print("    to see where start-up goes: python -X importtime -c 'import cli' 2>&1 | sort -t'|' -k2 -n | tail")
    return ok


def main() -> None:
    print(f"iterloop DSL benchmark, Python {sys.version.split()[0]} on {sys.platform}")
    results = [bench_generated(), bench_examples(), bench_cold_validate()]
    print(f"{sum(results)}/{len(results)} targets met")


if __name__ == "__main__":
    main()
