"""Which MCP servers a node may use: the `.iter` file's `mcp_server` blocks, the project's
`.mcp.json` and the `mcp:` blocks of the workflow and its nodes.

The catalog is the project's servers (by name, from `.mcp.json` beside the `.iter` file) and the
file's own `mcp_server` declarations, which win over a project entry of the same name. Then:

- the workflow's set = (every project server, sorted, unless `autoload_project: false`)
  + its `servers` − its `disable`;
- an agent's or a judge's set = (the workflow's, unless `inherit: false`) + its `servers` − its
  `disable`;
- the servers a node may call = its set; a node whose set is empty (a tool node, or an agent whose
  blocks remove everything) may call any server of the catalog its `tools:` name, as Iterion does.

Both sides apply these rules: the client checks the names before a run starts (`problems`), and
the workflow computes a node's servers when it visits it (`callable_servers`). They depend only on
the compiled workflow and the project servers the run input records, so a replay computes the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl import ir
from workflows.contract.mcp import McpServerSpec, split_tool_name
from workflows.contract.tool_catalog import builtin_tool_names

#: The project file of MCP servers, beside the `.iter` file (Claude Code's format).
PROJECT_FILE = ".mcp.json"


def workflow_servers(wf: ir.Workflow, project: list[str]) -> list[str]:
    """The workflow's active server names, in order: project servers (sorted) first, then `servers`."""
    block = wf.mcp
    base = sorted(project) if block is None or block.autoload_project is not False else []
    return _adjusted(base, block)


def node_servers(wf: ir.Workflow, node: ir.Node, project: list[str]) -> list[str]:
    """An agent's or a judge's active server names; other node kinds have none."""
    if not isinstance(node, ir.AgentNode):
        return []
    block = node.mcp
    base = workflow_servers(wf, project) if block is None or block.inherit is not False else []
    return _adjusted(base, block)


def bare_names(names: list[str]) -> list[str]:
    """`tools:` entries that are neither a builtin tool nor an `mcp.` name: Iterion resolves such a
    name to the one MCP tool of that name among the node's servers (so those are all listed)."""
    builtin = builtin_tool_names()
    return [n for n in names if not n.startswith("mcp.") and not n.endswith(".*") and n not in builtin]


def named_servers(names: list[str]) -> list[str]:
    """The servers that `tools:` entries (or a tool node's `call:`) name, in order, once each."""
    found: list[str] = []
    for name in names:
        split = split_tool_name(name)
        if split is not None and split[0] not in found:
            found.append(split[0])
    return found


def callable_servers(wf: ir.Workflow, node: ir.Node, project: list[McpServerSpec]) -> list[McpServerSpec]:
    """The specs of the servers ``node`` may call: its active set, or, when that is empty, the
    catalog servers its tools name. Unknown names are left out (`problems` reports them first)."""
    catalog = server_catalog(wf, project)
    names = node_servers(wf, node, [s.name for s in project]) or named_servers(_tool_names(node))
    return [catalog[n] for n in names if n in catalog]


def used_servers(wf: ir.Workflow, node: ir.Node, project: list[McpServerSpec], *,
                 delegated: bool) -> list[McpServerSpec]:
    """The servers a visit of ``node`` starts: a delegated agent hands its CLI every server it may
    call; a model's turn and a tool node only those their `tools:` / `call:` name."""
    servers = callable_servers(wf, node, project)
    if delegated or bare_names(_tool_names(node)):
        return servers
    named = set(named_servers(_tool_names(node)))
    return [s for s in servers if s.name in named]


def server_catalog(wf: ir.Workflow, project: list[McpServerSpec]) -> dict[str, McpServerSpec]:
    """Every server a run may use, by name: the project's, then the file's declarations over them.
    A declared server keeps its `${ENV}` references (the worker expands them)."""
    catalog = {s.name: s for s in project}
    for name, server in wf.mcp_servers.items():
        catalog[name] = McpServerSpec(name=name, transport=server.transport if server.transport != "unknown" else None,
                                      command=server.command, args=list(server.args), url=server.url)
    return catalog


@dataclass(frozen=True)
class NameProblem:
    """A server name the run cannot resolve: the sentence, and where it is (a node and its
    property, or the workflow's `mcp:` block when ``node`` is empty), for a positioned diagnostic."""

    message: str
    node: str = ""
    prop: str = ""


def problems(wf: ir.Workflow, project: list[str], *, file: str, project_file: str) -> list[str]:
    """Names the run cannot resolve, each as a sentence naming where it is and how to fix it."""
    return [p.message for p in name_problems(wf, project, file=file, project_file=project_file)]


def name_problems(wf: ir.Workflow, project: list[str], *, file: str, project_file: str) -> list[NameProblem]:
    """Unknown servers in `mcp:` blocks, and tools of servers that are unknown or not active."""
    known = set(project) | set(wf.mcp_servers)

    listed = f"nor {project_file} lists" if project_file else f"and no {PROJECT_FILE} is loaded"

    def unknown(what: str, name: str) -> str:
        return (f"{what} server '{name}', which no mcp_server in {file} declares {listed}; declare it "
                f"(`mcp_server {name}:`), add it to {PROJECT_FILE} beside {file}, or remove the name")

    found: list[NameProblem] = []
    blocks: list[tuple[str, str, ir.MCPConfig | None]] = [(f"workflow '{wf.name}'", "", wf.mcp)]
    blocks += [(f"{n.kind} '{n.id}'", n.id, n.mcp) for n in wf.nodes.values() if isinstance(n, ir.AgentNode)]
    for owner, node_id, block in blocks:
        for prop in ("servers", "disable"):
            found += [NameProblem(unknown(f"{owner} mcp {prop} names", name), node_id, "mcp")
                      for name in getattr(block, prop, []) if name not in known]
    for node in wf.nodes.values():
        active = node_servers(wf, node, project)
        prop = "call" if isinstance(node, ir.ToolNode) else "tools"
        for tool in _tool_names(node):
            split = split_tool_name(tool)
            if split is None:
                continue
            server = split[0]
            where = f"{node.kind} '{node.id}'"
            if server not in known:
                found.append(NameProblem(unknown(f"{where} names tool '{tool}' of", server), node.id, prop))
            elif active and server not in active:
                found.append(NameProblem(
                    f"{where} names tool '{tool}', but server '{server}' is not one of its MCP servers "
                    f"({', '.join(active)}); add it to the node's `mcp: servers:` (or the workflow's) in {file}",
                    node.id, prop))
    return found


def _tool_names(node: ir.Node) -> list[str]:
    if isinstance(node, ir.AgentNode):
        return list(node.tools)
    if isinstance(node, ir.ToolNode) and node.call:
        return [node.call]
    return []


def _adjusted(base: list[str], block: ir.MCPConfig | None) -> list[str]:
    names = list(base)
    if block is not None:
        names += [n for n in dict.fromkeys(block.servers) if n not in names]
        names = [n for n in names if n not in block.disable]
    return names
