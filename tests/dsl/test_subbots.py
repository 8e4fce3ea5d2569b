"""`subbot` nodes in the language: the child file compiled into the node, C132, format and diagram."""

from __future__ import annotations

from pathlib import Path

import dsl
from dsl import ir
from dsl.mermaid import to_mermaid
from dsl.unparse import format_source

CHILD = 'vars:\n  n: int = 1\ntool t:\n  command: "true"\nworkflow child:\n  entry: t\n  t -> done\n'
PARENT = ('subbot sub:\n  bot: "BOT"\n  budget:\n    max_cost_usd: 0.5\n'
          "workflow parent:\n  entry: sub\n  sub -> done\n")


def parent_file(tmp: Path, bot: str = "lib/child.iter") -> Path:
    (tmp / "lib").mkdir(exist_ok=True)
    (tmp / "lib" / "child.iter").write_text(CHILD)
    path = tmp / "parent.iter"
    path.write_text(PARENT.replace("BOT", bot))
    return path


def test_checking_a_file_compiles_the_subbot_file_relative_to_it_into_the_node(tmp_path: Path) -> None:
    result = dsl.check_file(parent_file(tmp_path))
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    node = result.workflow.nodes["sub"]
    assert isinstance(node, ir.SubbotNode) and node.workflow is not None
    assert (node.workflow.name, node.workflow.entry) == ("child", "t")
    assert node.budget is not None and node.budget.max_cost_usd == 0.5


def test_a_missing_subbot_file_is_c132_at_its_bot_property(tmp_path: Path) -> None:
    result = dsl.check_file(parent_file(tmp_path, bot="lib/nope.iter"))
    [d] = [d for d in result.diagnostics if d.code == "C132"]
    assert (d.severity, d.line, d.column) == ("error", 2, 8)
    assert "'lib/nope.iter'" in d.message and "cannot be read" in d.message and d.hint


def test_a_subbot_file_that_does_not_compile_is_c132_quoting_its_first_error(tmp_path: Path) -> None:
    path = parent_file(tmp_path)
    (tmp_path / "lib" / "child.iter").write_text("workflow child:\n  entry: ghost\n")
    [d] = [d for d in dsl.check_file(path).diagnostics if d.code == "C132"]
    assert "does not compile" in d.message and "C008" in d.message


def test_sub_workflows_running_each_other_in_a_circle_are_c132(tmp_path: Path) -> None:
    path = parent_file(tmp_path)
    (tmp_path / "lib" / "child.iter").write_text(PARENT.replace("BOT", "../parent.iter").replace("parent:", "child:"))
    [d] = [d for d in dsl.check_file(path).diagnostics if d.code == "C132"]
    assert "circle" in d.message


def test_checking_text_leaves_the_subbot_uncompiled() -> None:
    result = dsl.check_source(PARENT.replace("BOT", "child.iter"))
    assert result.ok and result.workflow is not None
    node = result.workflow.nodes["sub"]
    assert isinstance(node, ir.SubbotNode) and node.workflow is None


def test_formatting_keeps_bot_and_the_nested_budget() -> None:
    src = PARENT.replace("BOT", "child.iter")
    out = format_source(src)
    assert 'subbot sub:\n  bot: "child.iter"\n  budget:\n    max_cost_usd: 0.5\n' in out
    assert dsl.check_source(out).workflow == dsl.check_source(src).workflow
    assert format_source(out) == out


def test_the_diagram_draws_a_subbot_as_a_subroutine_naming_its_file() -> None:
    wf = dsl.check_source(PARENT.replace("BOT", "child.iter")).workflow
    assert wf is not None
    assert 'sub[["📦 sub"]]' in to_mermaid(wf)
    assert 'sub[["📦 sub<br/>runs: child.iter"]]' in to_mermaid(wf, "detailed")
    assert "class sub subbot" in to_mermaid(wf)
