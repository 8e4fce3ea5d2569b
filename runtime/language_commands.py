"""The language commands: `iterloop validate`, `diagram`, `fmt` and `compile`, and how every command
compiles a workflow file.

Each command is a function that prints its product and returns its exit code (0 ok, 1 the input
has problems, 2 usage or I/O error); a problem with the command line itself is a `UsageError`,
which cli.py reports as `iterloop: message`. Diagnostics go through `runtime.diagnostics_text`.

`compile_options` is the one way a workflow is compiled for use, by `iterloop run` as by the REST
API: the default model from the environment and the builtin tool names as plain data (the tool
registry imports temporalio and the connectors). Everything here is pure and light (`dsl`, the
standard library): `iterloop validate` runs in editors and pre-commit hooks and must start fast;
`dsl.mermaid` and `dsl.unparse` are imported by the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from dsl import CheckResult, CompileOptions, Diagnostic, check_file, parse
from dsl.ir import Workflow
from dsl.lexer import decode_source
from dsl.source_files import read_limited
from runtime.command_errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from runtime.console import is_tty
from runtime.diagnostics_text import (
    Painter,
    describe_os_error,
    plural,
    print_diagnostics,
    render_diagnostic,
    source_lines,
    summary_line,
)
from runtime.mcp_project import mcp_diagnostics
from workflows.contract.tool_catalog import builtin_tool_names

#: Exit code of a language command whose input has problems (diagnostics with errors, files `fmt
#: --check` would change); the same number as a failed run (`EXIT_FAILED`).
EXIT_PROBLEMS = EXIT_FAILED


def compile_options(default_model: str) -> CompileOptions:
    """How a workflow is compiled to run: an empty `model:` gets ``default_model``; tools are
    checked against the builtin catalog (plain data, so no Temporal or connector imports)."""
    return CompileOptions(default_model=default_model, known_tools=builtin_tool_names())


def default_model_from_env(env: Mapping[str, str]) -> str:
    """ITERLOOP_DEFAULT_MODEL, or Iterion's ITERION_DEFAULT_SUPERVISOR_MODEL so existing setups keep working."""
    return (env.get("ITERLOOP_DEFAULT_MODEL") or env.get("ITERION_DEFAULT_SUPERVISOR_MODEL") or "").strip()


@dataclass(frozen=True, slots=True)
class LanguageSettings:
    """What the language commands take from the environment, read once when the CLI starts.

    ``default_model`` fills an empty `model:` (`default_model_from_env`). ``no_color`` follows
    https://no-color.org: any non-empty NO_COLOR disables colour.
    """

    default_model: str = ""
    no_color: bool = False
    mcp_autoload: bool = True  # read `.mcp.json` beside a file to check its MCP server names (C122)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LanguageSettings:
        return cls(default_model=default_model_from_env(env), no_color=bool(env.get("NO_COLOR")),
                   mcp_autoload=(env.get("ITERLOOP_MCP_AUTOLOAD") or "").strip().lower() not in ("0", "false"))

    def compile_options(self) -> CompileOptions:
        return compile_options(self.default_model)

    def use_color(self, stream: TextIO) -> bool:
        """Colour only for a terminal, so pipes, files and CI logs get plain text."""
        return not self.no_color and is_tty(stream)


# -- validate ------------------------------------------------------------------------------------


@dataclass
class FileReport:
    """The outcome for one file: a check result, or the I/O error that prevented checking it."""

    path: str
    result: CheckResult | None = None
    io_error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "file": self.path,
            "ok": self.ok,
            "diagnostics": [d.model_dump() for d in self.result.diagnostics] if self.result else [],
        }
        if self.result is not None and self.result.workflow is not None:
            data["workflow"] = self.result.workflow.name
        if self.io_error:
            data["error"] = self.io_error
        return data


def check_one(path: Path, options: CompileOptions) -> FileReport:
    try:
        return FileReport(str(path), result=check_file(path, options=options))
    except OSError as exc:
        return FileReport(str(path), io_error=describe_os_error(path, exc))


def validate(files: list[Path], settings: LanguageSettings, *, as_json: bool) -> int:
    """`iterloop validate`: every file's diagnostics (or one JSON document); the exit code. Besides
    the language's own, the MCP server names are checked against `.mcp.json` beside each file."""
    options = settings.compile_options()
    reports = [check_one(path, options) for path in files]
    for path, report in zip(files, reports, strict=True):
        if report.result is not None:
            report.result.diagnostics += mcp_diagnostics(path, report.result, autoload=settings.mcp_autoload)
    errors = sum(len(r.result.errors) for r in reports if r.result)
    warnings = sum(len(r.result.warnings) for r in reports if r.result)
    if as_json:
        doc = {"files": [r.to_json() for r in reports], "errors": errors, "warnings": warnings,
               "exit_code": validation_exit_code(reports)}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        for r in reports:
            if r.io_error:
                print(f"iterloop: {r.io_error}", file=sys.stderr)
    else:
        print_validation(reports, settings, errors, warnings)
    return validation_exit_code(reports)


def print_validation(reports: list[FileReport], settings: LanguageSettings, errors: int, warnings: int) -> None:
    """Diagnostics on stdout (they are this command's product), I/O errors on stderr, a summary."""
    paint = Painter(settings.use_color(sys.stdout))
    for report in reports:
        if report.io_error:
            print(f"iterloop: {report.io_error}", file=sys.stderr)
            continue
        assert report.result is not None
        print_diagnostics(report.result, sys.stdout, paint)
        if report.ok:
            print(f"{report.path}: ok, {_node_summary(report.result)}")
    checked = sum(1 for r in reports if r.result is not None)
    unreadable = len(reports) - checked
    tail = f" ({plural(unreadable, 'file')} could not be read)" if unreadable else ""
    print(summary_line(errors, warnings, checked) + tail)


def validation_exit_code(reports: Iterable[FileReport]) -> int:
    reports = list(reports)
    if any(r.io_error for r in reports):
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEMS


def _node_summary(result: CheckResult) -> str:
    wf = result.workflow
    if wf is None:
        return ""
    steps = sum(1 for node in wf.nodes.values() if node.kind not in ("done", "fail"))
    return f"workflow '{wf.name}': {plural(steps, 'node')}, {plural(len(wf.edges), 'edge')}"


# -- a clean workflow for a command that uses it -------------------------------------------------


def checked_workflow(path: Path, settings: LanguageSettings, *, as_json: bool = False) -> Workflow | None:
    """Compile one file for a command that needs a clean workflow (diagram, compile, run).

    Those commands write their product on stdout, so diagnostics go to stderr. Warnings are shown
    and the workflow is returned; with errors, a summary line follows them and the result is None
    (the command exits 1), and with ``as_json`` the command's one JSON document on stdout says so
    (`problems_document`). An unreadable file is a `UsageError` (exit 2).
    """
    result = checked_file(path, settings)
    paint = Painter(settings.use_color(sys.stderr))
    print_diagnostics(result, sys.stderr, paint)
    if not result.ok or result.workflow is None:
        print(summary_line(len(result.errors), len(result.warnings), 1), file=sys.stderr)
        if as_json:
            print_json_document(problems_document(path, result))
        return None
    return result.workflow


def checked_file(path: Path, settings: LanguageSettings) -> CheckResult:
    """The check result of one file; an unreadable file is a `UsageError` (exit 2)."""
    try:
        return check_file(path, options=settings.compile_options())
    except OSError as exc:
        raise UsageError(describe_os_error(path, exc)) from None


def problems_document(path: Path, result: CheckResult) -> dict[str, object]:
    """The `--json` document of a command stopped by a file with errors (exit 1)."""
    return {"file": str(path), "ok": False, "error": f"{path}: {summary_line(len(result.errors), len(result.warnings), 1)}",
            "diagnostics": [d.model_dump() for d in result.diagnostics], "exit_code": EXIT_PROBLEMS}


def print_json_document(doc: Mapping[str, object]) -> None:
    """A command's one `--json` document on stdout."""
    print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


def compile_ir(path: Path, settings: LanguageSettings, *, as_json: bool = False) -> int:
    """`iterloop compile`: the compiled IR as JSON on stdout (what a run executes); with
    ``as_json``, inside a document that also has the diagnostics and the exit code."""
    wf = checked_workflow(path, settings, as_json=as_json)
    if wf is None:
        return EXIT_PROBLEMS
    if as_json:
        warnings = checked_file(path, settings).diagnostics
        print_json_document({"file": str(path), "ok": True, "workflow": json.loads(wf.to_json()),
                             "diagnostics": [d.model_dump() for d in warnings], "exit_code": EXIT_OK})
    else:
        print(wf.to_json())
    return EXIT_OK


# -- diagram -------------------------------------------------------------------------------------


def diagram(path: Path, settings: LanguageSettings, *, view: str, detailed: bool, full: bool,
            output: Path | None, as_json: bool = False) -> int:
    """`iterloop diagram`: the workflow as a Mermaid flowchart, on stdout or in ``output``
    (``as_json``: in one JSON document, `{"mermaid": …, "exit_code": 0}`)."""
    from dsl import mermaid  # lazy: only this command needs it

    chosen = diagram_view(view, detailed=detailed, full=full, known=mermaid.VIEWS)
    wf = checked_workflow(path, settings, as_json=as_json)
    if wf is None:
        return EXIT_PROBLEMS
    text = mermaid.to_mermaid(wf, view=chosen).rstrip("\n") + "\n"
    if output is not None:
        try:
            write_atomically(output, text)
        except OSError as exc:
            raise UsageError(f"cannot write '{output}': {exc.strerror or exc}") from None
        print(f"wrote {output}", file=sys.stderr)
    if as_json:
        print_json_document({"file": str(path), "workflow": wf.name, "view": chosen, "mermaid": text,
                             "output": str(output) if output is not None else None, "exit_code": EXIT_OK})
    elif output is None:
        sys.stdout.write(text)
    return EXIT_OK


def diagram_view(view: str, *, detailed: bool, full: bool, known: Iterable[str]) -> str:
    """Resolve --view and its Iterion-style shortcuts --detailed / --full into one view name."""
    known = tuple(known)
    shortcuts = [name for name, on in (("detailed", detailed), ("full", full)) if on]
    if len(shortcuts) > 1 or (shortcuts and view not in ("compact", shortcuts[0])):
        raise UsageError("choose one view: --view, --detailed and --full disagree")
    chosen = shortcuts[0] if shortcuts else view
    if chosen not in known:
        raise UsageError(f"unknown view '{chosen}'; choose one of: {', '.join(known)}")
    return chosen


# -- fmt -----------------------------------------------------------------------------------------


@dataclass
class FmtOutcome:
    """What `fmt` did to each file, to decide the exit code once all files are processed."""

    would_change: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    io_errors: list[str] = field(default_factory=list)
    #: `fmt --json`: one entry per file (`file`, `status`, and `error` or `diagnostics` when it failed).
    files: list[dict[str, object]] = field(default_factory=list)
    as_json: bool = False

    def note(self, path: Path, status: str, text: str, **more: object) -> None:
        """Record what happened to ``path``; say it on stdout unless the output is JSON."""
        self.files.append({"file": str(path), "status": status, **more})
        if text and not self.as_json:
            print(text)

    def exit_code(self) -> int:
        if self.io_errors:
            return EXIT_USAGE
        return EXIT_PROBLEMS if self.failed or self.would_change else EXIT_OK


def fmt(files: list[Path], settings: LanguageSettings, *, check: bool, as_json: bool = False) -> int:
    """`iterloop fmt`: rewrite files in the canonical layout (only files that change); with
    ``as_json``, one document listing each file's status (unchanged, reformatted, would_reformat,
    not_formatted, unreadable) and the exit code."""
    from dsl.unparse import format_source  # lazy: only this command needs it

    paint = Painter(settings.use_color(sys.stdout))
    outcome = FmtOutcome(as_json=as_json)
    for path in files:
        format_one(path, format_source, check=check, outcome=outcome, paint=paint)
    if as_json:
        print_json_document({"files": outcome.files, "check": check, "would_change": outcome.would_change,
                             "exit_code": outcome.exit_code()})
    elif check and outcome.would_change:
        print(f"{plural(len(outcome.would_change), 'file')} would be reformatted")
    return outcome.exit_code()


def format_one(
    path: Path, format_source: Callable[[str], str], *, check: bool, outcome: FmtOutcome, paint: Painter
) -> None:
    """Format one file, recording the outcome; the file is only touched when its text changes."""
    try:
        data = read_limited(path)  # regular files only, size-capped: a FIFO or /dev/zero is an error
    except OSError as exc:
        outcome.io_errors.append(str(path))
        print(f"iterloop: {describe_os_error(path, exc)}", file=sys.stderr)
        outcome.note(path, "unreadable", "", error=describe_os_error(path, exc))
        return
    source, problem = decode_source(data)
    if source is None:
        assert problem is not None
        report_unformattable(path, [problem.model_copy(update={"file": str(path)})], "", outcome, paint)
        return
    try:
        formatted = format_source(source)
    except ValueError as exc:
        report_unformattable(path, parse_errors(source, str(path)), str(exc), outcome, paint, source)
        return
    if formatted == source:
        outcome.note(path, "unchanged", "")
        return
    if check:
        outcome.would_change.append(str(path))
        outcome.note(path, "would_reformat", f"would reformat {path}")
        return
    try:
        write_atomically(path, formatted)
    except OSError as exc:
        outcome.io_errors.append(str(path))
        print(f"iterloop: cannot write '{path}': {exc.strerror or exc}", file=sys.stderr)
        outcome.note(path, "unreadable", "", error=f"cannot write '{path}': {exc.strerror or exc}")
        return
    outcome.note(path, "reformatted", f"reformatted {path}")


def parse_errors(source: str, file: str) -> list[Diagnostic]:
    _, diags = parse(source)
    return [d.model_copy(update={"file": file}) for d in diags if d.is_error]


def report_unformattable(
    path: Path, diags: list[Diagnostic], reason: str, outcome: FmtOutcome, paint: Painter, source: str = ""
) -> None:
    """A file that does not parse is left untouched; say why, with the parse errors if known."""
    outcome.failed.append(str(path))
    lines = source_lines(source) if source else None
    if not outcome.as_json:
        for diag in diags:
            print(render_diagnostic(diag, lines, paint))
    detail = f": {reason}" if reason and not diags else ""
    outcome.note(path, "not_formatted", f"{path}: not formatted, the file has parse errors{detail}",
                 error=f"the file has parse errors{detail}", diagnostics=[d.model_dump() for d in diags])


def write_atomically(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, then rename over the target.

    A crash or a full disk leaves either the old file or the new one, never half of each; the
    original's permission bits are kept, and a symlink keeps pointing at the file it names.
    """
    path = path.resolve()
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
