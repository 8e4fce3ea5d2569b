"""`tool_approval:` on agents and judges: parsed into the IR, kept by the formatter, and absent
from the IR (and its content hash) of files that do not write it."""

from __future__ import annotations

import textwrap

import dsl
from dsl.unparse import format_source

SRC = textwrap.dedent("""
    schema finding:
      summary: string
    agent analyst:
      model: "openai/gpt-test"
      output: finding
      tools: [sum_values, mcp.github.*]
      tool_approval: [sum_values, mcp.github.*]
    workflow w:
      entry: analyst
      analyst -> done
    """).lstrip("\\n")


def test_tool_approval_patterns_reach_the_ir() -> None:
    result = dsl.check_source(SRC)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    assert result.workflow.nodes["analyst"].tool_approval == ["sum_values", "mcp.github.*"]


def test_the_formatter_keeps_tool_approval_and_the_ir() -> None:
    out = format_source(SRC)
    assert "tool_approval: [sum_values, mcp.github.*]" in out
    before, after = dsl.check_source(SRC).workflow, dsl.check_source(out).workflow
    assert before is not None and after is not None and before.content_hash == after.content_hash


def test_a_file_without_tool_approval_keeps_its_ir_json() -> None:
    without = dsl.check_source(SRC.replace("  tool_approval: [sum_values, mcp.github.*]\n", ""))
    assert without.workflow is not None
    assert "tool_approval" not in without.workflow.model_dump_json()
