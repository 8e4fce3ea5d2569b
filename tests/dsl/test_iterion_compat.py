"""The file format of current Iterion, construct by construct: backtick and `|` strings, `.bot`
files, `max_tokens`, `xhigh`/`max` and `"${VAR:-level}"` efforts, in-file `presets:`, ignored
coding-agent blocks (C118) and upstream's event `wait` (C119)."""

from __future__ import annotations

import json
from pathlib import Path

import dsl
from dsl import ir
from dsl.lexer import STRING, lex
from dsl.source_files import is_workflow_path, workflow_file, workflow_files
from dsl.unparse import format_source

AGENT = 'agent a:\n  model: "m"\n'
FLOW = "workflow w:\n  entry: a\n  a -> done\n"
TOOL_FLOW = "workflow w:\n  entry: t\n  t -> done\n"


def _strings(source: str) -> list[str]:
    return [t.value for t in lex(source).tokens if t.kind == STRING]


def _tool_command(source: str) -> str:
    result = dsl.check_source(source)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    node = result.workflow.nodes["t"]
    assert isinstance(node, ir.ToolNode)
    return node.command


def _agent(source: str) -> ir.AgentNode:
    result = dsl.check_source(source)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    node = result.workflow.nodes["a"]
    assert isinstance(node, ir.AgentNode)
    return node


# -- backtick raw strings ---------------------------------------------------------------------------


def test_a_backtick_string_keeps_quotes_and_backslashes_as_written() -> None:
    src = 'tool t:\n  command: `printf "%s\\n" done | grep -c \'^d\'`\n' + TOOL_FLOW
    assert _tool_command(src) == 'printf "%s\\n" done | grep -c \'^d\''


def test_a_backtick_string_may_span_lines() -> None:
    src = "tool t:\n  command: `python3 -c \"\nprint(1)\n\"`\n  output: s\nschema s:\n  x: int\n" + TOOL_FLOW
    assert _tool_command(src) == 'python3 -c "\nprint(1)\n"'


def test_a_backtick_string_left_open_is_e004_at_its_start() -> None:
    result = dsl.check_source("tool t:\n  command: `echo\n" + TOOL_FLOW)
    [d] = [d for d in result.diagnostics if d.code == "E004"]
    assert (d.line, d.column) == (2, 12) and "backtick" in d.message


# -- `|` block strings --------------------------------------------------------------------------------


def test_a_block_string_strips_the_indentation_of_its_first_line_and_keeps_the_rest() -> None:
    src = ("tool t:\n  command: |\n    for f in a b; do\n      echo $f\n\n    done\n\n  output: s\n"
           "schema s:\n  x: int\n" + TOOL_FLOW)
    assert _tool_command(src) == "for f in a b; do\n  echo $f\n\ndone\n"


def test_a_block_string_ends_at_the_next_property() -> None:
    result = dsl.check_source("tool t:\n  command: |\n    true\n  publish: out\n" + TOOL_FLOW)
    assert result.ok and result.workflow is not None
    assert result.workflow.publish_of("t") == "out"


def test_a_bar_that_does_not_follow_a_property_colon_is_e001() -> None:
    result = dsl.check_source("tool t:\n  command: \"a\" |\n" + TOOL_FLOW)
    assert any(d.code == "E001" and "'|'" in d.message and (d.line, d.column) == (2, 16) for d in result.diagnostics)


def test_a_block_string_with_nothing_under_it_is_empty() -> None:
    assert _strings("tool t:\n  command: |\n  publish: out\n") == [""]


# -- fmt keeps the way strings were written ------------------------------------------------------------


def test_fmt_keeps_backtick_and_block_strings_as_written() -> None:
    src = ("tool t:\n  command: |\n    echo \"a\"\n      indented\n\n    end\n  publish: out\n"
           "tool u:\n  command: `echo \"$HOME\"`\n" + "workflow w:\n  entry: t\n  t -> u\n  u -> done\n")
    formatted = format_source(src)
    assert "  command: |\n    echo \"a\"\n      indented\n\n    end\n" in formatted
    assert '  command: `echo "$HOME"`\n' in formatted
    assert format_source(formatted) == formatted
    before, after = dsl.check_source(src).workflow, dsl.check_source(formatted).workflow
    assert before is not None and after is not None and after.content_hash == before.content_hash


def test_fmt_keeps_a_raw_string_in_a_with_block() -> None:
    """A `with` value stays on its line: written in backticks, it is printed in backticks."""
    src = AGENT + "agent b:\n  model: \"m\"\nworkflow w:\n  entry: a\n  a -> b with { x: `say \"hi\"` }\n  b -> done\n"
    assert 'x: `say "hi"`' in format_source(src)


# -- max_tokens, reasoning efforts ---------------------------------------------------------------------


def test_max_tokens_of_an_agent_reaches_the_ir() -> None:
    assert _agent(AGENT + "  max_tokens: 4096\n" + FLOW).max_tokens == 4096


def test_an_agent_without_max_tokens_keeps_the_ir_json_it_had() -> None:
    node = _agent(AGENT + FLOW)
    assert node.max_tokens is None
    assert "max_tokens" not in json.loads(node.model_dump_json())


def test_fmt_keeps_max_tokens() -> None:
    assert "  max_tokens: 4096\n" in format_source(AGENT + "  max_tokens: 4096\n" + FLOW)


def test_iterion_efforts_xhigh_and_max_run_as_extra_high() -> None:
    for written in ("xhigh", "max"):
        assert _agent(AGENT + f"  reasoning_effort: {written}\n" + FLOW).reasoning_effort == "extra_high"


def test_fmt_keeps_the_effort_spelling_written() -> None:
    assert "  reasoning_effort: max\n" in format_source(AGENT + "  reasoning_effort: max\n" + FLOW)


def test_an_effort_from_the_environment_stays_for_the_worker() -> None:
    written = "${EFFORT:-max}"
    assert _agent(AGENT + f'  reasoning_effort: "{written}"\n' + FLOW).reasoning_effort == written


def test_an_environment_effort_with_a_bad_fallback_is_c024_at_the_value() -> None:
    result = dsl.check_source(AGENT + '  reasoning_effort: "${EFFORT:-huge}"\n' + FLOW)
    [d] = [d for d in result.diagnostics if d.code == "C024"]
    assert (d.severity, d.line, d.column) == ("error", 3, 21) and "'huge'" in d.message


# -- presets --------------------------------------------------------------------------------------------


PRESETS = 'vars:\n  topic: string = "x"\n  rate: float = 0.5\npresets:\n  quick:\n    topic: "limits"\n    rate: 1\n'


def test_in_file_presets_reach_the_ir_typed_like_their_vars() -> None:
    result = dsl.check_source(PRESETS + AGENT + FLOW)
    assert result.ok and result.workflow is not None
    assert result.workflow.presets == {"quick": {"topic": "limits", "rate": 1.0}}
    assert isinstance(result.workflow.presets["quick"]["rate"], float)


def test_a_workflow_without_presets_keeps_the_ir_json_it_had() -> None:
    result = dsl.check_source(AGENT + FLOW)
    assert result.workflow is not None and "presets" not in json.loads(result.workflow.to_json())


def test_fmt_keeps_presets() -> None:
    formatted = format_source(PRESETS + AGENT + FLOW)
    assert 'presets:\n  quick:\n    topic: "limits"\n    rate: 1\n' in formatted
    workflow = dsl.check_source(formatted).workflow
    assert workflow is not None and workflow.presets == {"quick": {"topic": "limits", "rate": 1.0}}


def test_a_preset_declared_twice_warns_c108_and_the_later_wins() -> None:
    src = 'vars:\n  topic: string = "x"\npresets:\n  p:\n    topic: "a"\n  p:\n    topic: "b"\n' + AGENT + FLOW
    result = dsl.check_source(src)
    assert [(d.code, d.line) for d in result.diagnostics] == [("C108", 6)]
    assert result.workflow is not None and result.workflow.presets == {"p": {"topic": "b"}}


# -- ignored coding-agent blocks -------------------------------------------------------------------------


IGNORED = (AGENT + "  memory:\n    enabled: true\n    scope: \"bot\"  ## per bot\n  compaction:\n    threshold: 0.8\n"
           "  publish: r\n" 'workflow w:\n  worktree: auto\n  sandbox:\n    image: "x"\n\n  entry: a\n  a -> done\n')


def test_coding_agent_blocks_warn_c118_and_the_workflow_still_compiles() -> None:
    result = dsl.check_source(IGNORED)
    assert result.ok
    assert [(d.code, d.severity, d.line) for d in result.diagnostics] == [
        ("C118", "warning", 3), ("C118", "warning", 6), ("C118", "warning", 10), ("C118", "warning", 11)]
    assert result.workflow is not None and result.workflow.publish_of("a") == "r"


def test_c118_says_what_the_block_does_in_iterion() -> None:
    [d] = [d for d in dsl.check_source(AGENT + "  sandbox:\n    image: \"x\"\n" + FLOW).diagnostics]
    assert "'sandbox' in agent 'a' is ignored" in d.message and "container" in d.message


def test_fmt_prints_ignored_blocks_back_as_written() -> None:
    formatted = format_source(IGNORED)
    assert ('  memory:\n    enabled: true\n    scope: "bot"  ## per bot\n'
            "  compaction:\n    threshold: 0.8\n") in formatted
    assert '  worktree: auto\n  sandbox:\n    image: "x"\n' in formatted
    assert format_source(formatted) == formatted


def test_an_ignored_top_level_cursor_declaration_is_named_in_its_warning() -> None:
    src = 'cursor depth:\n  description: "how deep"\n  bands:\n    "0.0..0.5": "skim"\n' + AGENT + FLOW
    result = dsl.check_source(src)
    assert result.ok
    [d] = result.diagnostics
    assert (d.code, d.line) == ("C118", 1) and "'cursor depth'" in d.message
    assert format_source(src).startswith('cursor depth:\n  description: "how deep"\n  bands:\n    "0.0..0.5": "skim"\n')


def test_an_inline_script_without_a_language_compiles_as_a_sh_script() -> None:
    result = dsl.check_source("tool t:\n  script: |\n    echo 1\n" + TOOL_FLOW)
    assert result.ok, [d.render() for d in result.errors]
    assert result.workflow is not None and result.workflow.nodes["t"].language == "sh"  # type: ignore[union-attr]


# -- the two `wait`s -------------------------------------------------------------------------------------


def test_upstreams_event_wait_is_refused_with_c119() -> None:
    result = dsl.check_source('wait w1:\n  event: ready\n  timeout: "1h"\nworkflow w:\n  entry: w1\n  w1 -> done\n')
    [d] = [d for d in result.diagnostics if d.is_error]
    assert d.code == "C119" and "timer" in d.message and "'ready'" in d.message


def test_a_timer_wait_still_compiles() -> None:
    result = dsl.check_source('wait w1:\n  duration: "1h"\n' + "workflow w:\n  entry: w1\n  w1 -> done\n")
    assert result.ok and result.workflow is not None
    assert result.workflow.nodes["w1"].duration_seconds == 3600  # type: ignore[union-attr]


# -- `.bot` files ----------------------------------------------------------------------------------------


def test_a_bot_file_is_a_workflow_file(tmp_path: Path) -> None:
    path = tmp_path / "hello.bot"
    path.write_text(AGENT + FLOW)
    assert is_workflow_path(path) and dsl.check_file(path).ok


def test_a_directorys_workflow_files_include_bots_and_iter_wins_a_name_clash(tmp_path: Path) -> None:
    for name in ("a.iter", "a.bot", "b.bot", "c.txt"):
        (tmp_path / name).write_text(AGENT + FLOW)
    assert [p.name for p in workflow_files(tmp_path)] == ["a.iter", "b.bot"]
    assert workflow_file(tmp_path, "b").name == "b.bot" and workflow_file(tmp_path, "a").name == "a.iter"


def test_a_diagnostic_inside_a_block_string_points_at_its_line_and_column() -> None:
    src = ('vars:\n  x: string = "a"\ntool t:\n  command: |\n    echo ok\n      echo "{{vars.x}}"\n'
           + TOOL_FLOW)
    [d] = [d for d in dsl.check_source(src).diagnostics if d.code == "C116"]
    assert (d.line, d.column) == (6, 13)


def test_a_diagnostic_inside_a_multi_line_raw_string_points_at_its_line_and_column() -> None:
    src = 'vars:\n  x: string = "a"\ntool t:\n  command: `echo ok\n  echo "{{vars.x}}"`\n' + TOOL_FLOW
    [d] = [d for d in dsl.check_source(src).diagnostics if d.code == "C116"]
    assert (d.line, d.column) == (5, 9)


def test_the_full_diagram_shows_max_tokens() -> None:
    from dsl.mermaid import to_mermaid

    result = dsl.check_source(AGENT + "  max_tokens: 4096\n" + FLOW)
    assert result.workflow is not None and "max_tokens: 4096" in to_mermaid(result.workflow, "full")
