"""Diagnostics as people read them in a terminal: `file:line:col: severity [CODE]: message`, the
source line, a caret under the problem and the hint.

The DSL produces diagnostics as plain data (`dsl.Diagnostic`); `iterloop validate`, `fmt`,
`diagram`, `compile` and `run` print them through this one renderer, so a problem reads the same
whichever command found it. Colour is ANSI, and only when the caller says the stream is a terminal.
Pure and light (standard library and `dsl`): `iterloop validate` must start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from dsl import CheckResult, Diagnostic

_ANSI = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "bold": "\x1b[1m", "hint": "\x1b[36m", "reset": "\x1b[0m"}


class Painter:
    """Wraps text in ANSI colours, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, style: str, text: str) -> str:
        return f"{_ANSI[style]}{text}{_ANSI['reset']}" if self.enabled else text


def source_lines(source: str) -> list[str]:
    """Split like the lexer does (on LF, dropping a CR before it) so line numbers agree."""
    return [line.removesuffix("\r") for line in source.split("\n")]


def caret_line(line: str, column: int, length: int) -> str:
    """Spaces up to ``column`` (tabs copied, so the caret lines up however tabs render), then carets.

    The caret run is clipped to the end of the line but is never empty, so a diagnostic at the
    end of a line (a missing token) still points somewhere.
    """
    before = line[: max(0, column - 1)]
    prefix = "".join("\t" if ch == "\t" else " " for ch in before)
    prefix += " " * max(0, column - 1 - len(before))
    available = max(1, len(line) - (column - 1))
    return prefix + "^" * max(1, min(length, available))


def render_diagnostic(diag: Diagnostic, lines: list[str] | None, paint: Painter) -> str:
    """`file:line:col: severity [CODE]: message`, the source line, a caret line and the hint."""
    where = f"{diag.file or '<input>'}:{diag.line}:{diag.column}"
    out = [f"{paint('bold', where)}: {paint(diag.severity, diag.severity)} [{diag.code}]: {diag.message}"]
    if lines is not None and 1 <= diag.line <= len(lines):
        text = lines[diag.line - 1]
        out.append(f"    {text}")
        out.append(f"    {paint(diag.severity, caret_line(text, diag.column, diag.length))}")
    if diag.hint:
        out.append(f"  {paint('hint', 'hint:')} {diag.hint}")
    return "\n".join(out)


def plural(n: int, word: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(errors: int, warnings: int, files: int) -> str:
    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in {plural(files, 'file')}"


def print_diagnostics(result: CheckResult, stream: TextIO, paint: Painter) -> None:
    lines = source_lines(result.source) if result.source else None
    for diag in result.diagnostics:
        print(render_diagnostic(diag, lines, paint), file=stream)


def describe_os_error(path: Path | str, exc: OSError) -> str:
    """`cannot read 'x.iter': No such file or directory`: names the file and the reason."""
    reason = exc.strerror or exc.__class__.__name__
    return f"cannot read '{path}': {reason}"
