"""The project's MCP servers: the names in `.mcp.json` beside the `.iter` file, checked at run start.

Only the names are read here. A run records each project server as its name and the file's path
(`McpServerSpec.project_file`), and the worker reads the entry when it starts the server: the
entries' headers and env often hold literal tokens, which must never enter a run's history.
`check_mcp_servers` then checks every server name the workflow uses (`workflows.contract.mcp_sets`)
before anything starts, so a typo is a usage error naming the file and the fix, not a failed node.
"""

from __future__ import annotations

import json
from pathlib import Path

from dsl import CheckResult
from dsl.diagnostics import Diagnostic, make
from dsl.ir import Workflow
from runtime.command_errors import UsageError
from workflows.contract.mcp import McpServerSpec
from workflows.contract.mcp_sets import PROJECT_FILE, name_problems, problems


def project_servers(directory: str, *, autoload: bool) -> list[McpServerSpec]:
    """The servers `directory/.mcp.json` lists, sorted by name (none without the file, or with
    ``autoload`` off: `ITERLOOP_MCP_AUTOLOAD=0`). A file that is not a JSON object with an
    `mcpServers` object is a `UsageError` naming it."""
    if not directory or not autoload:
        return []
    path = (Path(directory) / PROJECT_FILE).absolute()
    if not path.is_file():
        return []
    fix = "fix the file, or set ITERLOOP_MCP_AUTOLOAD=0 to run without the project's MCP servers"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the project's MCP servers ({exc}); {fix}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise UsageError(f"{path}: expected a JSON object with an \"mcpServers\" object of servers by name; {fix}")
    dotted = sorted(name for name in servers if "." in name or not name)
    if dotted:
        raise UsageError(f"{path}: MCP server names may not be empty or hold dots (tools are named "
                         f"mcp.SERVER.TOOL): {', '.join(repr(n) for n in dotted)}; rename them")
    return [McpServerSpec(name=name, project_file=str(path)) for name in sorted(servers)]


def check_mcp_servers(wf: Workflow, project: list[McpServerSpec], *, file: str) -> None:
    """A `UsageError` listing every MCP server name ``wf`` uses that the run cannot resolve."""
    found = problems(wf, [s.name for s in project], file=file,
                     project_file=project[0].project_file if project else "")
    if found:
        raise UsageError("; ".join(found))


def mcp_diagnostics(path: Path, result: CheckResult, *, autoload: bool) -> list[Diagnostic]:
    """What `iterloop run` would refuse about the file's MCP server names (`check_mcp_servers`), as
    C122 diagnostics at the property that names them, so `validate` says it first. The project's
    servers are read from `.mcp.json` beside the file, as a run started from it reads them."""
    wf, where = result.workflow, result.source_map
    if wf is None or where is None:
        return []
    file = str(path)
    try:
        project = project_servers(str(path.parent), autoload=autoload)
    except UsageError as exc:
        return [make("C122", str(exc)).model_copy(update={"file": file})]
    found = name_problems(wf, [s.name for s in project], file=file,
                          project_file=project[0].project_file if project else "")
    diagnostics: list[Diagnostic] = []
    for problem in found:
        pos = where.prop(problem.node, problem.prop) if problem.node else where.workflow
        diagnostics.append(make("C122", problem.message, pos.line, pos.column,
                                ).model_copy(update={"file": file}))
    return diagnostics
