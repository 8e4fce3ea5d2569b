"""Sub-workflows: the files `subbot` nodes name, compiled into the nodes that run them.

A `subbot` node names another workflow file relative to the file that declares it. Checking a
file (`dsl.check_file`: `iterloop validate`, `iterloop run`, the API's files) compiles each such
file too, recursively, and puts its IR in the node (`SubbotNode.workflow`), so the run input
carries every workflow the run may start and the interpreter never reads a file. A file that
cannot be read, does not compile, or leads back to a file already on the way is C132, at the
node's `bot:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, make
from .ir import SubbotNode, Workflow
from .source_map import SourceMap

if TYPE_CHECKING:
    from collections.abc import Callable

    from .check_result import CheckResult
    from .compiler import CompileOptions

    FileChecker = Callable[..., CheckResult]

#: How deep sub-workflows may nest: deeper is almost surely a mistake, and each level is a child run.
MAX_DEPTH = 8


def has_subbots(wf: Workflow) -> bool:
    return any(isinstance(n, SubbotNode) for n in wf.nodes.values())


def embed_subbots(result: CheckResult, path: Path, options: CompileOptions | None,
                  chain: tuple[Path, ...] = (), *, check_file: FileChecker) -> CheckResult:
    """``result`` (the check of ``path``) with each subbot's file compiled into its node; problems
    with those files are C132 diagnostics added to ``result``. ``check_file`` is the package's
    `dsl.check_file` (which calls this function), given rather than imported so the package and
    this module do not import each other."""
    wf = result.workflow
    if wf is None or not has_subbots(wf):
        return result
    wf = wf.model_copy(deep=True)
    here = path.resolve()
    chain = (*chain, here)
    found: list[Diagnostic] = []
    for node in wf.nodes.values():
        if not isinstance(node, SubbotNode) or not node.bot:
            continue
        child_path = (here.parent / node.bot).resolve()
        problem = ""
        if child_path in chain:
            problem = "leads back to " + " → ".join(p.name for p in chain[chain.index(child_path):]) + \
                f" → {child_path.name}: sub-workflows must not run each other in a circle"
        elif len(chain) > MAX_DEPTH:
            problem = f"nests sub-workflows more than {MAX_DEPTH} deep"
        else:
            try:
                child = check_file(child_path, options=options, _chain=chain)
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror or exc})"
            else:
                if child.ok and child.workflow is not None:
                    node.workflow = child.workflow
                    continue
                errors = [d.render() for d in child.errors] or ["no workflow declaration"]
                problem = f"does not compile: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
        found.append(_c132(node, child_path, problem, result.source_map, str(path)))
    result.workflow = wf
    result.diagnostics = sorted([*result.diagnostics, *found], key=lambda d: (d.line, d.column))
    return result


def _c132(node: SubbotNode, child_path: Path, problem: str, source_map: SourceMap | None, file: str) -> Diagnostic:
    pos = source_map.prop(node.id, "bot") if source_map is not None else None
    d = make("C132", f"subbot '{node.id}': bot {node.bot!r} ({child_path}) {problem}",
             pos.line if pos else 1, pos.column if pos else 1, length=len(node.bot) + 2)
    return d.model_copy(update={"file": file})
