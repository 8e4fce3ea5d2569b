"""Which MCP servers a node may call (`workflows.contract.mcp_sets`), from the IR and the project's servers."""

from __future__ import annotations

import dsl
from dsl import ir
from workflows.contract.mcp import McpServerSpec
from workflows.contract.mcp_sets import callable_servers, node_servers, problems, server_catalog, workflow_servers

SERVERS = """
mcp_server time:
  transport: stdio
  command: "python"
  args: ["-m", "mcp_server_time"]

mcp_server docs:
  transport: sse
  url: "${DOCS_MCP_URL}"
"""

PROJECT = [McpServerSpec(name="github", project_file="/p/.mcp.json"),
           McpServerSpec(name="figma", project_file="/p/.mcp.json")]
NAMES = [s.name for s in PROJECT]


def compiled(agent_lines: str = "", workflow_lines: str = "", tools: str = "") -> ir.Workflow:
    text = (SERVERS + "agent a:\n  model: \"m\"\n" + agent_lines
            + (f"  tools: [{tools}]\n" if tools else "")
            + "workflow w:\n" + workflow_lines + "  entry: a\n  a -> done\n")
    result = dsl.check_source(text)
    assert result.workflow is not None and result.ok, [d.render() for d in result.diagnostics]
    return result.workflow


def test_the_workflow_set_starts_from_every_project_server_sorted() -> None:
    assert workflow_servers(compiled(), NAMES) == ["figma", "github"]


def test_autoload_project_false_leaves_project_servers_out_unless_named() -> None:
    wf = compiled(workflow_lines="  mcp:\n    autoload_project: false\n    servers: [time, github]\n")
    assert workflow_servers(wf, NAMES) == ["time", "github"]


def test_the_workflow_adds_its_servers_and_removes_its_disabled_ones() -> None:
    wf = compiled(workflow_lines="  mcp:\n    servers: [time]\n    disable: [figma]\n")
    assert workflow_servers(wf, NAMES) == ["github", "time"]


def test_a_node_inherits_the_workflow_set_and_adjusts_it() -> None:
    wf = compiled(agent_lines="  mcp:\n    servers: [docs]\n    disable: [github]\n",
                  workflow_lines="  mcp:\n    servers: [time]\n")
    assert node_servers(wf, wf.nodes["a"], NAMES) == ["figma", "time", "docs"]


def test_inherit_false_starts_a_node_from_nothing() -> None:
    wf = compiled(agent_lines="  mcp:\n    inherit: false\n    servers: [time]\n")
    assert node_servers(wf, wf.nodes["a"], NAMES) == ["time"]


def test_a_declared_server_overrides_the_project_entry_of_its_name() -> None:
    catalog = server_catalog(compiled(), [*PROJECT, McpServerSpec(name="time", project_file="/p/.mcp.json")])
    assert catalog["time"] == McpServerSpec(name="time", transport="stdio", command="python",
                                            args=["-m", "mcp_server_time"])
    assert catalog["github"].project_file == "/p/.mcp.json" and catalog["github"].transport is None


def test_declared_servers_keep_their_env_references() -> None:
    assert server_catalog(compiled(), [])["docs"].url == "${DOCS_MCP_URL}"


def test_a_node_calls_the_servers_of_its_set() -> None:
    wf = compiled(agent_lines="  mcp:\n    inherit: false\n    servers: [time]\n", tools="mcp.time.*")
    assert [s.name for s in callable_servers(wf, wf.nodes["a"], PROJECT)] == ["time"]


def test_a_node_with_an_empty_set_may_call_the_servers_its_tools_name() -> None:
    wf = compiled(tools="mcp.time.get_current_time, echo")
    assert [s.name for s in callable_servers(wf, wf.nodes["a"], [])] == ["time"]


def test_a_tool_node_may_call_the_server_its_call_names() -> None:
    text = SERVERS + "tool t:\n  call: mcp.time.get_current_time\nworkflow w:\n  entry: t\n  t -> done\n"
    result = dsl.check_source(text)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    assert [s.name for s in callable_servers(result.workflow, result.workflow.nodes["t"], PROJECT)] == ["time"]


def test_a_workflow_using_known_servers_has_no_problems() -> None:
    wf = compiled(agent_lines="  mcp:\n    servers: [time]\n", tools="mcp.time.*, mcp.github.create_issue")
    assert problems(wf, NAMES, file="w.iter", project_file="/p/.mcp.json") == []


def test_an_unknown_server_name_is_a_problem_naming_the_files_and_the_fix() -> None:
    wf = compiled(workflow_lines="  mcp:\n    servers: [jira]\n")
    [found] = problems(wf, NAMES, file="w.iter", project_file="/p/.mcp.json")
    assert "workflow 'w' mcp servers names server 'jira'" in found
    assert "w.iter" in found and "/p/.mcp.json" in found and "mcp_server jira:" in found


def test_a_tool_of_an_unknown_server_is_a_problem() -> None:
    wf = compiled(tools="mcp.jira.create")
    [found] = problems(wf, [], file="w.iter", project_file="")
    assert "agent 'a' names tool 'mcp.jira.create' of server 'jira'" in found and "no .mcp.json is loaded" in found


def test_a_tool_of_a_server_outside_the_nodes_set_is_a_problem() -> None:
    wf = compiled(agent_lines="  mcp:\n    inherit: false\n    servers: [docs]\n", tools="mcp.time.*")
    [found] = problems(wf, NAMES, file="w.iter", project_file="/p/.mcp.json")
    assert "server 'time' is not one of its MCP servers (docs)" in found


def test_with_project_servers_a_declared_server_must_be_named_to_be_used() -> None:
    wf = compiled(tools="mcp.time.*")
    [found] = problems(wf, NAMES, file="w.iter", project_file="/p/.mcp.json")
    assert "server 'time' is not one of its MCP servers (figma, github)" in found
    assert problems(wf, [], file="w.iter", project_file="") == []
