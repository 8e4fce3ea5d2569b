"""Iterion's file-format gaps of issue 16: inline `script:` tools, `{{!ref}}`, nested `${A:-${B:-x}}`
defaults and the ignored `attachments:` block."""

from __future__ import annotations

import textwrap

import dsl
from dsl.unparse import format_source


def src(body: str) -> str:
    return textwrap.dedent(body).lstrip()


SCRIPT_TOOL = src('''
    schema pick_in:
      packages: json
      scope: string

    tool pick:
      input: pick_in
      language: js
      script: |
        const p = {{!input.packages}};
        console.log(JSON.stringify({n: p.length, scope: "{{input.scope}}"}));

    workflow w:
      entry: pick
      pick -> done
''')


def test_a_script_tool_compiles_with_its_language_and_template_references() -> None:
    result = dsl.check_source(SCRIPT_TOOL)
    assert result.ok, [d.render() for d in result.errors]
    assert result.workflow is not None
    node = result.workflow.nodes["pick"]
    assert node.language == "js" and node.script.startswith("const p = {{!input.packages}};")  # type: ignore[union-attr]
    assert [r.path for r in node.command_refs or []] == [["packages"], ["scope"]]  # type: ignore[union-attr]


def test_an_unknown_script_language_is_refused_at_its_value() -> None:
    result = dsl.check_source(SCRIPT_TOOL.replace("language: js", "language: ruby"))
    [diag] = [d for d in result.errors if d.code == "E020"]
    assert (diag.line, diag.column) == (7, 13)
    assert "'language' of 'tool pick' 'ruby'" in diag.message and "js" in diag.message


def test_a_script_template_that_names_no_input_field_is_an_error() -> None:
    result = dsl.check_source(SCRIPT_TOOL.replace("{{input.scope}}", "{{input.scop}}"))
    assert any(d.code == "C034" and "'scop'" in d.message for d in result.errors)


def test_a_tool_with_both_a_command_and_a_script_is_refused() -> None:
    result = dsl.check_source(SCRIPT_TOOL.replace("  language: js\n", '  command: "true"\n  language: js\n'))
    assert any(d.code == "C104" and "'command' and 'script'" in d.message for d in result.errors)


def test_a_sh_script_gets_the_command_quoting_check() -> None:
    result = dsl.check_source(SCRIPT_TOOL.replace("language: js", "language: sh").replace(
        'console.log(JSON.stringify({n: p.length, scope: "{{input.scope}}"}));', 'echo "{{input.scope}}"'))
    assert any(d.code == "C116" and "inside double quotes" in d.message for d in result.errors)


def test_fmt_keeps_a_script_tool() -> None:
    formatted = format_source(SCRIPT_TOOL)
    assert "language: js" in formatted and "script: |" in formatted
    before, after = dsl.check_source(SCRIPT_TOOL), dsl.check_source(formatted)
    assert before.workflow is not None and after.workflow is not None
    assert after.workflow.content_hash == before.workflow.content_hash
    assert format_source(formatted) == formatted


def test_a_workflow_without_scripts_keeps_its_ir_json() -> None:
    result = dsl.check_source(src('''
        tool t:
          command: "true"
        workflow w:
          entry: t
          t -> done
    '''))
    assert result.workflow is not None
    assert "script" not in result.workflow.to_json() and "language" not in result.workflow.to_json()


def test_a_raw_reference_is_the_same_reference_as_the_plain_one() -> None:
    plain = dsl.check_source(SCRIPT_TOOL.replace("{{!input.packages}}", "{{input.packages}}"))
    raw = dsl.check_source(SCRIPT_TOOL)
    assert plain.workflow is not None and raw.workflow is not None
    refs = [(r.kind, r.path) for r in raw.workflow.nodes["pick"].command_refs or []]  # type: ignore[union-attr]
    assert refs == [(r.kind, r.path) for r in plain.workflow.nodes["pick"].command_refs or []]  # type: ignore[union-attr]


def test_a_nested_env_default_reasoning_effort_is_checked_at_its_innermost_fallback() -> None:
    agent = src('''
        prompt p:
          hi
        agent a:
          model: "anthropic/claude-sonnet-4-5"
          reasoning_effort: "${A:-${B:-EFFORT}}"
          user: p
        workflow w:
          entry: a
          a -> done
    ''')
    assert dsl.check_source(agent.replace("EFFORT", "high")).ok
    bad = dsl.check_source(agent.replace("EFFORT", "huge"))
    assert any(d.code == "C024" and "falls back to 'huge'" in d.message for d in bad.errors)


def test_an_attachments_block_is_accepted_with_a_warning_that_nothing_is_sent() -> None:
    result = dsl.check_source(src('''
        attachments:
          logo: image
            required: true

        prompt p:
          Describe {{attachments.logo}}.
        agent a:
          model: "anthropic/claude-sonnet-4-5"
          user: p
        workflow w:
          entry: a
          a -> done
    '''))
    assert result.ok, [d.render() for d in result.errors]
    [warning] = [d for d in result.warnings if d.code == "C118"]
    assert warning.line == 1 and "sends none" in warning.message


def test_an_attachments_reference_without_the_block_is_an_error() -> None:
    result = dsl.check_source(src('''
        prompt p:
          Describe {{attachments.logo}}.
        agent a:
          model: "anthropic/claude-sonnet-4-5"
          user: p
        workflow w:
          entry: a
          a -> done
    '''))
    [diag] = [d for d in result.errors if d.code == "C004"]
    assert (diag.line, diag.column) == (2, 12) and "does not declare" in diag.message
