"""Where parallel branches converge, without Temporal."""

from __future__ import annotations

import dsl
from dsl import ir
from workflows.convergence import convergence_strategy, find_convergence, mutating_branches


def compile_ok(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


FAN = compile_ok("""
agent a:
  model: "m"
  tools: [write_file]
agent b:
  model: "m"
  readonly: true
tool t:
  command: "make"
router r:
  mode: fan_out_all
join j:
  strategy: best_effort
workflow w:
  entry: r
  r -> a
  r -> b
  r -> t
  a -> j
  b -> j
  t -> j
  j -> done
""")


def test_convergence_and_mutating_branches() -> None:
    assert find_convergence(FAN, ["a", "b", "t"]) == "j"
    assert convergence_strategy(FAN, "j") == "best_effort"
    assert mutating_branches(FAN, ["a", "b", "t"], "j") == ["a", "t"]
