"""Current Iterion's own workflow files: how many iterloop accepts, and why it refuses the others.

The 71 files of `data/iterion_upstream/` are every `.iter`/`.bot` file of upstream Iterion at the
mirrored revision (see its README). Issue 16 asks for at least 64 of them to validate; the file
format work (backtick and `|` strings, `.bot`, `max_tokens`, `xhigh`/`max`, `${VAR:-default}`,
`presets:`, ignored coding-agent blocks) brought iterloop from 45 to 54; compute nodes,
expression conditions on edges (`when "…"`), the `{{loop.…}}`/`{{run.…}}` namespaces and the
loop-exhaustion exit (a plain edge beside a loop's back edge) bring it to 62; inline `script:`
tools with nested `${A:-${B:-x}}` defaults and `{{!ref}}` (secured-renovacy) and the ignored
`attachments:` block (vision_attachments, C118) bring it to 64, the target. The other 7 are listed
below with the diagnostic that says why: four are refused by upstream Iterion too, three by
iterloop's shell-quoting check (a value inside quotes of a command could run as code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dsl
from dsl.unparse import format_source

DATA = Path(__file__).parent / "data" / "iterion_upstream"
FILES = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.suffix in (".iter", ".bot"))

#: What issue 16 asks for, and what iterloop reaches (see the module docstring).
TARGET = 64
ACCEPTED = 64

#: Each file iterloop refuses → (error code, words of its message). The first four are refused
#: by upstream Iterion too (docs/language.md, "Iterion compatibility").
REFUSED: dict[str, tuple[str, str]] = {
    ".archive/examples/skill/skill/loop_with_judge.iter": ("C033", "variable 'topic' is not declared"),
    "pkg/cli/templates/pr_refine_single_model.iter": ("C034", "'review' is not a field"),
    "pkg/cli/templates/pr_refine_single_model_backend.bot": ("C034", "'review' is not a field"),
    "examples/cursors/cursors.iter": ("C006", "no workflow declaration"),  # a snippet, not a workflow
    # iterloop's own safety check: a template inside single quotes in a shell command
    ".archive/examples/sandbox_cloud_smoke.iter": ("C116", "inside single quotes"),
    "examples/sec-audit-deps/main.bot": ("C116", "inside double quotes"),
    "examples/doc-align/main.bot": ("C116", "{{!input.doc_files}} in the command of tool 'build_manifest'"),
}

#: Files that validate only with warnings that Iterion blocks are ignored (C118).
WITH_IGNORED_BLOCKS = {
    ".archive/examples/diff_showcase.iter": "worktree",
    ".archive/examples/playwright_demo.iter": "sandbox",
    ".archive/examples/sandbox_build.iter": "sandbox",
    ".archive/examples/sandbox_cloud_observe.iter": "sandbox",
    ".archive/examples/sandbox_cloud_proxy.iter": "sandbox",
    "bots/smoke/board_smoke.bot": "capabilities",
    "examples/cursors/sample.iter": "cursors",
    ".archive/examples/vision_attachments.iter": "attachments",
}


def _check(name: str) -> dsl.CheckResult:
    return dsl.check_file(DATA / name)


def test_the_data_is_the_71_files_of_the_readme_revision() -> None:
    assert len(FILES) == 71
    assert "2322ab4992311e7f49ea7cafcb8f4299d7b47b79" in (DATA / "README.md").read_text()


def test_64_of_the_71_validate() -> None:
    accepted = [name for name in FILES if _check(name).ok]
    assert len(accepted) == ACCEPTED, sorted(set(FILES) - set(accepted) - set(REFUSED))
    assert ACCEPTED >= TARGET
    assert sorted(set(FILES) - set(accepted)) == sorted(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_file_is_refused_with_a_diagnostic_saying_why(name: str) -> None:
    code, words = REFUSED[name]
    result = _check(name)
    assert not result.ok
    assert any(d.code == code and words in d.message for d in result.errors), [d.render() for d in result.errors[:5]]


@pytest.mark.parametrize("name", sorted(WITH_IGNORED_BLOCKS))
def test_coding_agent_blocks_validate_with_a_warning_that_they_are_ignored(name: str) -> None:
    result = _check(name)
    assert result.ok, [d.render() for d in result.errors]
    warned = [d for d in result.warnings if d.code == "C118"]
    assert any(WITH_IGNORED_BLOCKS[name] in d.message and "ignored" in d.message for d in warned)


def test_a_bot_file_with_in_file_presets_validates() -> None:
    result = _check("pkg/cli/templates/bundle_main.bot")
    assert result.ok, [d.render() for d in result.errors]
    assert result.workflow is not None and result.workflow.presets == {
        "quick": {"topic": "rate limiting"}, "deep": {"topic": "distributed consensus protocols"}}


def test_an_upstream_file_with_max_tokens_validates() -> None:
    result = _check(".archive/examples/llm_router_task_dispatch.iter")
    assert result.ok, [d.render() for d in result.errors]
    assert result.workflow is not None
    assert {getattr(n, "max_tokens", None) for n in result.workflow.nodes.values()} - {None}


def test_backtick_commands_of_a_flagship_bot_parse_without_errors() -> None:
    """sec-audit-deps writes its shell commands as backtick raw strings; only a quoting check
    refuses it now, not the strings (nor its compute nodes)."""
    result = _check("examples/sec-audit-deps/main.bot")
    lexical = [d for d in result.errors if d.code in ("E001", "E004")]
    assert lexical == [] and {d.code for d in result.errors} == {"C116"}


@pytest.mark.parametrize("name", [n for n in FILES if n not in REFUSED or REFUSED[n][0].startswith("C")])
def test_fmt_keeps_what_an_upstream_file_means(name: str) -> None:
    """Formatting an upstream file (ignored blocks, raw strings and all) keeps its IR and its
    diagnostics, and formatting again changes nothing."""
    source = (DATA / name).read_text()
    formatted = format_source(source)
    before, after = dsl.check_source(source), dsl.check_source(formatted)
    assert (before.workflow is None) == (after.workflow is None)
    if before.workflow is not None and after.workflow is not None:
        assert after.workflow.content_hash == before.workflow.content_hash
    assert sorted(d.code for d in after.diagnostics) == sorted(d.code for d in before.diagnostics)
    assert format_source(formatted) == formatted


def test_a_flagship_bot_compiles_its_compute_node_and_expression_edges() -> None:
    result = _check("examples/whole_improve_loop/main.bot")
    assert result.ok, [d.render() for d in result.errors]
    wf = result.workflow
    assert wf is not None
    streak = wf.nodes["streak_check"]
    assert streak.kind == "compute"
    assert [f.key for f in streak.fields][:2] == ["stop", "approved"]  # type: ignore[union-attr]
    expressions = [e.expression.source for e in wf.edges if e.source == "streak_check" and e.expression]
    assert "approved" in expressions


def test_a_flagship_bot_compiles_its_inline_js_scripts() -> None:
    result = _check("examples/secured-renovacy/main.bot")
    assert result.ok, [d.render() for d in result.errors]
    assert result.workflow is not None
    select = result.workflow.nodes["select_candidate"]
    assert select.kind == "tool" and select.language == "js"  # type: ignore[union-attr]
    assert "{{!input.packages}}" in select.script  # type: ignore[union-attr]
