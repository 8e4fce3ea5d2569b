"""The `iterloop` command, run as a real subprocess: exit codes, output formats, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli
from dsl.ir import Workflow
from runtime import diagnostics_text, language_commands, scaffold

REPO = Path(__file__).resolve().parent.parent

CLEAN = """\
schema verdict:
  approved: bool
  summary: string

prompt review_system:
  You review the submission.

agent reviewer:
  model: "test-model"
  output: verdict
  system: review_system

workflow minimal:
  entry: reviewer
  reviewer -> done when approved
  reviewer -> fail when not approved
"""

# Line 3 col 11 is the undeclared schema 'nope' (4 columns long): one C002 error.
BROKEN = """\
agent x:
  model: "m"
  output: nope

workflow w:
  entry: x
  x -> done
"""

# A schema declared twice is a warning (C108), not an error.
WARNING_ONLY = """\
schema s:
  ok: bool

schema s:
  ok: bool

agent a:
  model: "m"
  output: s

workflow w:
  entry: a
  a -> done
"""

# No model and no backend: C018, unless a default model comes from the environment.
NO_MODEL = """\
schema s:
  ok: bool

agent a:
  output: s

workflow w:
  entry: a
  a -> done
"""

# Parses, but laid out badly (4-space indentation, runs of blank lines).
MESSY = """\
schema verdict:
    approved: bool



agent reviewer:
    model: "test-model"
    output: verdict

workflow minimal:
    entry: reviewer
    reviewer -> done
"""

UNPARSABLE = "agent x:\n\tmodel: \"m\"\nworkflow w:\n  entry: x\n  x -> done\n"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `iterloop ARGS` in a fresh interpreter, with a predictable environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ITERLOOP_DEFAULT_MODEL",
                                                            "ITERION_DEFAULT_SUPERVISOR_MODEL")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH", "")]))
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- validate --------------------------------------------------------------------------------------


def test_validate_clean_file_exits_0(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("validate", "ok.iter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 warnings in 1 file" in proc.stdout


def test_validate_warnings_only_exits_0_and_shows_them(tmp_path: Path) -> None:
    write(tmp_path, "warn.iter", WARNING_ONLY)
    proc = run_cli("validate", "warn.iter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warn.iter:4:1: warning [C108]" in proc.stdout
    assert "0 errors, 1 warning in 1 file" in proc.stdout


def test_validate_errors_exit_1_with_position_code_caret_and_hint(tmp_path: Path) -> None:
    write(tmp_path, "bad.iter", BROKEN)
    proc = run_cli("validate", "bad.iter", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("bad.iter:3:11: error [C002]:"))
    source, caret, hint = lines[header + 1 : header + 4]
    assert source.endswith("  output: nope")
    # The caret sits under 'nope' and covers exactly its 4 columns.
    assert caret.index("^") == source.index("nope")
    assert caret.strip() == "^^^^"
    assert hint.strip().startswith("hint: ")
    assert "1 error, 0 warnings in 1 file" in proc.stdout


def test_validate_output_has_no_colour_when_piped(tmp_path: Path) -> None:
    write(tmp_path, "bad.iter", BROKEN)
    proc = run_cli("validate", "bad.iter", cwd=tmp_path)
    assert "\x1b[" not in proc.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("no_color", "expect_colour"), [(None, True), ("1", False)])
def test_validate_colours_a_terminal_unless_no_color(tmp_path: Path, no_color: str | None, expect_colour: bool) -> None:
    import pty

    write(tmp_path, "bad.iter", BROKEN)
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(REPO)
    if no_color is not None:
        env["NO_COLOR"] = no_color
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "validate", "bad.iter"],
            cwd=tmp_path, env=env, stdout=secondary, stderr=subprocess.PIPE, timeout=60,
        )
        os.close(secondary)
        output = read_all(primary)
    finally:
        os.close(primary)
    assert proc.returncode == 1
    assert "C002" in output
    assert ("\x1b[" in output) is expect_colour


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side of the pty is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_validate_missing_file_exits_2_and_names_it(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("validate", "ok.iter", "nowhere.iter", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nowhere.iter" in proc.stderr
    assert "No such file" in proc.stderr


def test_validate_reports_a_call_of_an_unknown_builtin_tool(tmp_path: Path) -> None:
    write(tmp_path, "t.iter", "tool t:\n  call: get_funel_data\nworkflow w:\n  entry: t\n  t -> done\n")
    proc = run_cli("validate", "t.iter", cwd=tmp_path)
    assert proc.returncode == 1
    assert "t.iter:2:9: error [C105]: tool 't' calls 'get_funel_data', which is not a builtin tool" in proc.stdout
    assert "Did you mean builtin tool 'get_funnel_data'?" in proc.stdout


def test_validate_errors_in_one_file_of_several_exit_1(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    write(tmp_path, "bad.iter", BROKEN)
    proc = run_cli("validate", "ok.iter", "bad.iter", cwd=tmp_path)
    assert proc.returncode == 1
    assert "1 error, 0 warnings in 2 files" in proc.stdout


def test_validate_json_reports_each_file_and_totals(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    write(tmp_path, "bad.iter", BROKEN)
    write(tmp_path, "warn.iter", WARNING_ONLY)
    proc = run_cli("validate", "--json", "ok.iter", "bad.iter", "warn.iter", cwd=tmp_path)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["errors"] == 1
    assert doc["warnings"] == 1
    by_file = {f["file"]: f for f in doc["files"]}
    assert [f["file"] for f in doc["files"]] == ["ok.iter", "bad.iter", "warn.iter"]
    assert by_file["ok.iter"]["ok"] is True and by_file["ok.iter"]["diagnostics"] == []
    assert by_file["warn.iter"]["ok"] is True
    bad = by_file["bad.iter"]
    assert bad["ok"] is False
    assert bad["diagnostics"] == [
        {
            "code": "C002",
            "severity": "error",
            "message": bad["diagnostics"][0]["message"],
            "hint": bad["diagnostics"][0]["hint"],
            "file": "bad.iter",
            "line": 3,
            "column": 11,
            "length": 4,
        }
    ]


def test_validate_json_with_missing_file_is_still_one_document_and_exits_2(tmp_path: Path) -> None:
    proc = run_cli("validate", "--json", "nowhere.iter", cwd=tmp_path)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["files"][0]["file"] == "nowhere.iter"
    assert doc["files"][0]["ok"] is False
    assert "nowhere.iter" in doc["files"][0]["error"]


def test_default_model_comes_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "nomodel.iter", NO_MODEL)
    assert run_cli("validate", "nomodel.iter", cwd=tmp_path).returncode == 1
    for var in ("ITERLOOP_DEFAULT_MODEL", "ITERION_DEFAULT_SUPERVISOR_MODEL"):
        proc = run_cli("validate", "nomodel.iter", cwd=tmp_path, env={var: "claude-sonnet-4-5"})
        assert proc.returncode == 0, (var, proc.stdout)


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    assert run_cli("validate", "--nope", "x.iter", cwd=tmp_path).returncode == 2


# -- caret rendering (pure) --------------------------------------------------------------------------


def test_caret_copies_tabs_so_it_lines_up_with_the_source() -> None:
    assert diagnostics_text.caret_line("\t\tfoo bar", 4, 3) == "\t\t ^^^"


def test_caret_is_clipped_to_the_line_but_never_empty() -> None:
    assert diagnostics_text.caret_line("abc", 2, 10) == " ^^"
    assert diagnostics_text.caret_line("abc", 4, 1) == "   ^"


def test_source_lines_match_the_lexer_on_crlf() -> None:
    assert diagnostics_text.source_lines("a\r\nb\n") == ["a", "b", ""]


# -- diagram ---------------------------------------------------------------------------------------


def test_diagram_writes_to_output_file(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("diagram", "ok.iter", "--view", "detailed", "--output", "ok.mmd", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "ok.mmd").read_text(encoding="utf-8")
    assert text.startswith("flowchart")
    assert "reviewer" in text
    assert proc.stdout == ""


def test_diagram_prints_to_stdout_by_default(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("diagram", "ok.iter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart")


def test_diagram_refuses_a_file_with_errors(tmp_path: Path) -> None:
    write(tmp_path, "bad.iter", BROKEN)
    proc = run_cli("diagram", "bad.iter", "--output", "bad.mmd", cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad.iter:3:11: error [C002]" in proc.stderr
    assert not (tmp_path / "bad.mmd").exists()


def test_diagram_unknown_view_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("diagram", "ok.iter", "--view", "huge", cwd=tmp_path)
    assert proc.returncode == 2
    assert "compact" in proc.stderr


# -- fmt -------------------------------------------------------------------------------------------


def test_fmt_rewrites_a_messy_file_and_is_then_stable(tmp_path: Path) -> None:
    unparse = pytest.importorskip("dsl.unparse")
    path = write(tmp_path, "messy.iter", MESSY)
    expected = unparse.format_source(MESSY)
    assert expected != MESSY, "the fixture should need formatting"

    proc = run_cli("fmt", "messy.iter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.read_text(encoding="utf-8") == expected
    assert "messy.iter" in proc.stdout
    assert run_cli("fmt", "--check", "messy.iter", cwd=tmp_path).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["messy.iter"], "no temp file left behind"


def test_fmt_leaves_a_formatted_file_untouched(tmp_path: Path) -> None:
    unparse = pytest.importorskip("dsl.unparse")
    path = write(tmp_path, "ok.iter", unparse.format_source(CLEAN))
    before = path.stat().st_mtime_ns
    proc = run_cli("fmt", "ok.iter", cwd=tmp_path)
    assert proc.returncode == 0
    assert path.stat().st_mtime_ns == before


def test_fmt_check_lists_files_that_would_change_and_writes_nothing(tmp_path: Path) -> None:
    unparse = pytest.importorskip("dsl.unparse")
    path = write(tmp_path, "messy.iter", MESSY)
    write(tmp_path, "ok.iter", unparse.format_source(CLEAN))
    proc = run_cli("fmt", "--check", "messy.iter", "ok.iter", cwd=tmp_path)
    assert proc.returncode == 1
    assert "messy.iter" in proc.stdout
    assert "ok.iter" not in proc.stdout
    assert path.read_text(encoding="utf-8") == MESSY


def test_fmt_reports_and_leaves_a_file_with_parse_errors(tmp_path: Path) -> None:
    pytest.importorskip("dsl.unparse")
    path = write(tmp_path, "broken.iter", UNPARSABLE)
    proc = run_cli("fmt", "broken.iter", cwd=tmp_path)
    assert proc.returncode == 1
    assert "broken.iter" in proc.stdout
    assert "E003" in proc.stdout
    assert path.read_text(encoding="utf-8") == UNPARSABLE


def test_fmt_missing_file_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("dsl.unparse")
    proc = run_cli("fmt", "nowhere.iter", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nowhere.iter" in proc.stderr


def test_format_one_rewrites_only_changed_files_and_spares_unparsable_ones(tmp_path: Path) -> None:
    """The fmt logic, with a stand-in formatter, so it is covered whatever the formatter does."""

    def formatter(source: str) -> str:
        if "\t" in source:
            raise ValueError("parse errors")
        return source.replace("    ", "  ")

    messy = write(tmp_path, "messy.iter", MESSY)
    tidy = write(tmp_path, "tidy.iter", CLEAN)
    broken = write(tmp_path, "broken.iter", UNPARSABLE)
    outcome = language_commands.FmtOutcome()
    paint = diagnostics_text.Painter(False)
    for path in (messy, tidy, broken):
        language_commands.format_one(path, formatter, check=False, outcome=outcome, paint=paint)
    assert messy.read_text(encoding="utf-8") == MESSY.replace("    ", "  ")
    assert tidy.read_text(encoding="utf-8") == CLEAN
    assert broken.read_text(encoding="utf-8") == UNPARSABLE
    assert outcome.failed == [str(broken)]
    assert outcome.exit_code() == 1


def test_format_one_check_mode_records_but_does_not_write(tmp_path: Path) -> None:
    messy = write(tmp_path, "messy.iter", MESSY)
    outcome = language_commands.FmtOutcome()
    language_commands.format_one(messy, lambda s: s.replace("    ", "  "), check=True, outcome=outcome, paint=diagnostics_text.Painter(False))
    assert outcome.would_change == [str(messy)]
    assert messy.read_text(encoding="utf-8") == MESSY
    assert outcome.exit_code() == 1


def test_atomic_write_keeps_permissions(tmp_path: Path) -> None:
    path = write(tmp_path, "x.iter", "old")
    path.chmod(0o640)
    language_commands.write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["x.iter"]


def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    target = write(tmp_path, "real.iter", "old")
    link = tmp_path / "link.iter"
    link.symlink_to(target)
    language_commands.write_atomically(link, "new")
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "new"


# -- compile ---------------------------------------------------------------------------------------


def test_compile_prints_ir_json_that_round_trips(tmp_path: Path) -> None:
    write(tmp_path, "ok.iter", CLEAN)
    proc = run_cli("compile", "ok.iter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    workflow = Workflow.from_json(proc.stdout)
    assert workflow.name == "minimal"
    assert workflow.entry == "reviewer"
    assert workflow.content_hash == workflow.compute_hash()


def test_compile_with_errors_exits_1_and_prints_no_ir(tmp_path: Path) -> None:
    write(tmp_path, "bad.iter", BROKEN)
    proc = run_cli("compile", "bad.iter", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "[C002]" in proc.stderr


def test_compile_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_cli("compile", "nowhere.iter", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nowhere.iter" in proc.stderr


# -- init ------------------------------------------------------------------------------------------


def test_init_scaffolds_a_project_that_validates(tmp_path: Path) -> None:
    proc = run_cli("init", "proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "proj"
    assert {p.name for p in project.iterdir()} >= {"hello.iter", "README.md", ".gitignore"}
    check = run_cli("validate", "hello.iter", cwd=project)
    assert check.returncode == 0, check.stdout
    assert "0 errors, 0 warnings" in check.stdout


def test_init_scaffold_has_a_human_gate_its_script_and_a_readme_that_runs_it(tmp_path: Path) -> None:
    proc = run_cli("init", "proj", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 0 and doc["skipped"] == []
    assert {Path(p).name for p in doc["created"]} == {name for name, _ in scaffold.SCAFFOLD}
    assert "human publish_gate:" in scaffold.HELLO_ITER and "publish_gate -> done when approved" in scaffold.HELLO_ITER
    readme = (tmp_path / "proj" / "README.md").read_text(encoding="utf-8")
    for line in ("iterloop validate hello.iter", "iterloop run hello.iter --offline",
                 "iterloop answer RUN --gate publish_gate --answer approved=true", "export ANTHROPIC_API_KEY",
                 "iterloop run hello.iter "):
        assert line in readme, line
    assert "export ANTHROPIC_API_KEY=sk-ant-…              # (or put it in .env)" in readme  # the CLI reads ./.env
    again = json.loads(run_cli("init", "proj", "--json", cwd=tmp_path).stdout)
    assert again["created"] == [] and len(again["skipped"]) == len(scaffold.SCAFFOLD)


def test_init_scaffold_is_already_formatted() -> None:
    unparse = pytest.importorskip("dsl.unparse")
    assert unparse.format_source(scaffold.HELLO_ITER) == scaffold.HELLO_ITER


def test_init_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    (tmp_path / "hello.iter").write_text("## mine\n", encoding="utf-8")
    proc = run_cli("init", cwd=tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / "hello.iter").read_text(encoding="utf-8") == "## mine\n"
    assert "skipped" in proc.stdout and "hello.iter" in proc.stdout
    assert "created" not in proc.stdout


# -- version ---------------------------------------------------------------------------------------


def test_version_prints_package_and_python_versions(tmp_path: Path) -> None:
    proc = run_cli("version", cwd=tmp_path)
    assert proc.returncode == 0
    first = proc.stdout.splitlines()[0]
    assert first.startswith("iterloop ")
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in proc.stdout


def test_dash_dash_version_and_dash_h(tmp_path: Path) -> None:
    version = run_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("iterloop ") and version.stdout.count("\n") == 1
    for args in (["-h"], ["run", "-h"], ["server", "-h"]):
        short, long = run_cli(*args, cwd=tmp_path), run_cli(*args[:-1], "--help", cwd=tmp_path)
        assert short.returncode == 0 and short.stdout == long.stdout and "Usage: iterloop" in short.stdout


def test_version_json(tmp_path: Path) -> None:
    proc = run_cli("version", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"iterloop", "python", "ir_format_version"}
    assert doc["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


# -- start-up cost -----------------------------------------------------------------------------------


def test_importing_cli_loads_no_temporal_or_llm_sdk() -> None:
    code = "import cli, sys; print([m for m in ('temporalio','anthropic','openai') if m in sys.modules])"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_readme_example_in_init_matches_the_scaffold() -> None:
    """The scaffold's README promises commands that exist: keep them in sync with the app."""
    commands = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
    for word in ("validate", "diagram", "fmt", "compile", "run", "answer", "report"):
        assert word in commands
        assert f"iterloop {word}" in scaffold.README_SNIPPET


def test_server_commands_report_an_unusable_setting_in_one_line(tmp_path: Path) -> None:
    result = run_cli("server", "status", cwd=tmp_path, env={"ITERLOOP_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert result.stderr == "iterloop: ITERLOOP_LOG_FORMAT='xml' is not one of text, json\n"


# -- --json everywhere: one document on stdout, errors included, with the exit code ------------------


def test_language_commands_print_one_json_document_with_the_exit_code(tmp_path: Path) -> None:
    (tmp_path / "good.iter").write_text(scaffold.HELLO_ITER, encoding="utf-8")  # canonical layout
    (tmp_path / "bad.iter").write_text("agent a:\n  output: nope\nworkflow w:\n  entry: a\n  a -> done\n",
                                       encoding="utf-8")
    drawn = run_cli("diagram", "good.iter", "--json", cwd=tmp_path)
    assert drawn.returncode == 0
    doc = json.loads(drawn.stdout)
    assert doc["exit_code"] == 0 and doc["mermaid"].startswith("flowchart") and doc["view"] == "compact"
    broken = run_cli("diagram", "bad.iter", "--json", cwd=tmp_path)
    assert broken.returncode == 1
    doc = json.loads(broken.stdout)
    assert doc["exit_code"] == 1 and "C002" in {d["code"] for d in doc["diagnostics"]}
    compiled = json.loads(run_cli("compile", "good.iter", "--json", cwd=tmp_path).stdout)
    assert compiled["exit_code"] == 0 and compiled["workflow"]["name"]
    (tmp_path / "messy.iter").write_text(MESSY, encoding="utf-8")
    (tmp_path / "tabs.iter").write_text("agent a:\n\tmodel: \"m\"\n", encoding="utf-8")
    checked = run_cli("fmt", "good.iter", "messy.iter", "tabs.iter", "nowhere.iter", "--check", "--json", cwd=tmp_path)
    doc = json.loads(checked.stdout)
    assert checked.returncode == doc["exit_code"] == 2
    assert {f["file"]: f["status"] for f in doc["files"]} == {
        "good.iter": "unchanged", "messy.iter": "would_reformat", "tabs.iter": "not_formatted",
        "nowhere.iter": "unreadable"}
    assert doc["would_change"] == ["messy.iter"] and (tmp_path / "messy.iter").read_text() == MESSY
    assert json.loads(run_cli("validate", "good.iter", "--json", cwd=tmp_path).stdout)["exit_code"] == 0
    unreadable = run_cli("diagram", "nowhere.iter", "--json", cwd=tmp_path)
    assert unreadable.returncode == 2 and json.loads(unreadable.stdout)["exit_code"] == 2


MCP_AGENT = """schema r:
  x: string
agent a:
  model: "anthropic/claude-test"
  output: r
  tools: [mcp.docs.search, mcp.jira.create]
workflow w:
  entry: a
  a -> done
"""


def test_validate_checks_mcp_server_names_against_the_project_file(tmp_path: Path) -> None:
    """What `run` would refuse, `validate` says first (C122), at the property naming the server."""
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"docs": {"url": "https://docs.example/mcp"}}}))
    (tmp_path / "a.iter").write_text(MCP_AGENT)
    done = run_cli("validate", "a.iter", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)["files"][0]["diagnostics"]
    assert [(d["code"], d["line"], d["column"]) for d in found] == [("C122", 6, 10)]
    assert "server 'jira'" in found[0]["message"] and ".mcp.json" in found[0]["message"]
    assert "docs" not in found[0]["message"].split("server 'jira'")[0]  # docs is listed: not a problem
    # Without the project's servers (as a run with ITERLOOP_MCP_AUTOLOAD=0 sees it), docs is unknown too.
    off = run_cli("validate", "a.iter", "--json", cwd=tmp_path, env={"ITERLOOP_MCP_AUTOLOAD": "0"})
    assert [d["message"].split("'")[5] for d in json.loads(off.stdout)["files"][0]["diagnostics"]] == ["docs", "jira"]
