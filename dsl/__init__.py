"""The `.iter` language: parse, compile, validate, format and draw workflows.

This package is pure: it imports nothing from the rest of iterloop, no Temporal and no LLM SDK,
so `iterloop validate` starts fast and the interpreter can depend on it freely.
"""

from __future__ import annotations

from pathlib import Path

from .ast import File
from .check_result import CheckResult
from .compiler import CompileOptions, compile_ast
from .diagnostics import CODES, Diagnostic
from .ir import IR_FORMAT_VERSION, Workflow
from .lexer import decode_source
from .parser import parse
from .source_files import read_limited
from .subbots import embed_subbots

__all__ = [
    "CODES",
    "CheckResult",
    "CompileOptions",
    "Diagnostic",
    "File",
    "IR_FORMAT_VERSION",
    "Workflow",
    "check_bytes",
    "check_file",
    "check_source",
    "parse",
]




def check_source(source: str, *, file: str | None = None, options: CompileOptions | None = None) -> CheckResult:
    """Parse, compile and validate text. Never raises on bad input."""
    tree, diags = parse(source)
    workflow, compile_diags, source_map = compile_ast(tree, options)
    diagnostics = sorted(diags + compile_diags, key=lambda d: (d.line, d.column))
    if file is not None:
        diagnostics = [d.model_copy(update={"file": file}) for d in diagnostics]
    return CheckResult(source, file, tree, workflow, diagnostics, source_map)


def check_bytes(data: bytes, *, file: str | None = None, options: CompileOptions | None = None) -> CheckResult:
    """Like check_source, for raw bytes (a non-UTF-8 file is a diagnostic, not an exception)."""
    text, problem = decode_source(data)
    if text is None:
        assert problem is not None
        return CheckResult("", file, File(), None, [problem.model_copy(update={"file": file})])
    return check_source(text, file=file, options=options)


def check_file(path: str | Path, *, options: CompileOptions | None = None,
               _chain: tuple[Path, ...] = ()) -> CheckResult:
    """Read and check a file. OSError propagates: a missing file is a usage error, not a diagnostic;
    so does a path that is no regular file or is too large (`source_files.UnreadableFile`), which is
    refused before it is read (a FIFO would hang, `/dev/zero` would fill the memory).

    The files its `subbot` nodes name are checked too and compiled into them (`dsl.subbots`)."""
    result = check_bytes(read_limited(Path(path)), file=str(path), options=options)
    return embed_subbots(result, Path(path), options, _chain, check_file=check_file)
