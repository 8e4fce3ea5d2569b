"""The outcome of checking one source: its AST, its IR and the diagnostics (`dsl.check_source`).

In a module of its own so the modules `dsl.check_file` calls (`dsl.subbots`) can name it without
importing the package that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ast import File
from .diagnostics import Diagnostic, has_errors
from .ir import Workflow
from .source_map import SourceMap


@dataclass
class CheckResult:
    """Everything known about one source: its AST, its IR (if a workflow was found) and findings."""

    source: str
    file: str | None
    ast: File
    workflow: Workflow | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source_map: SourceMap | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings are fine) and a workflow was compiled."""
        return self.workflow is not None and not has_errors(self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]
