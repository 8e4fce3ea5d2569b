"""Node inputs and rendered commands, without Temporal."""

from __future__ import annotations

import dsl
from dsl import ir
from workflows.inputs import DataContext, build_input, initial_vars, render_command


def compile_ok(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


MAPPED = compile_ok("""
schema v:
  approved: bool
  summary: string
agent a:
  model: "m"
  output: v
agent b:
  model: "m"
vars:
  topic: string = "pricing"
workflow w:
  entry: a
  a -> a when not approved as again(2)
  a -> b with {
    whole: "{{outputs.a}}",
    flag: "{{outputs.a.approved}}",
    text: "About {{vars.topic}}: {{outputs.a.summary}}",
    via_input: "{{input.summary}}",
    history: "{{outputs.a.history}}"
  }
  b -> done
""")


def test_with_mapping_single_reference_keeps_type_and_text_interpolates() -> None:
    ctx = DataContext(vars={"topic": "pricing"}, outputs={"a": {"approved": True, "summary": "ok"}},
                      history={"a": [{"approved": False, "summary": "first"}, {"approved": True, "summary": "ok"}]})
    got = build_input(MAPPED, "b", ctx)
    assert got["whole"] == {"approved": True, "summary": "ok"}
    assert got["flag"] is True
    assert got["text"] == "About pricing: ok"
    assert got["via_input"] == "ok"
    assert [h["summary"] for h in got["history"]] == ["first", "ok"]


def test_entry_without_mappings_gets_vars_and_run_inputs() -> None:
    ctx = DataContext(vars={"topic": "pricing"}, run_inputs={"code": "x"})
    assert build_input(MAPPED, "a", ctx) == {"topic": "pricing", "code": "x"}
    assert initial_vars(MAPPED, {"topic": "churn", "other": 1}) == {"topic": "churn"}


def test_command_values_are_shell_quoted() -> None:
    ctx = DataContext(vars={"name": "x; rm -rf /"})
    rendered = render_command("echo {{vars.name}} {{input.n}}", ctx, {"n": 3})
    assert rendered == "echo 'x; rm -rf /' 3"
