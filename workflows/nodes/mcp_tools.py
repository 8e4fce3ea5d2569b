"""Running an MCP tool: one `iterloop.mcp_call` activity, for a model's call or a tool node's `call:`.

Which servers a node may call is `workflows.contract.mcp_sets` (from the IR and the project servers
the run input records); the worker starts the server and calls the tool. The request carries the
server's spec as the run knows it (`${ENV}` unexpanded, a `.mcp.json` server as its name and path),
so no secret enters history.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from dsl import ir
from workflows.contract import activities as A
from workflows.contract.mcp import (
    McpCallRequest,
    McpCallResult,
    McpCheckRequest,
    McpServerHealth,
    McpServerSpec,
    split_tool_name,
)
from workflows.contract.delegation import DELEGATE_BACKENDS
from workflows.contract.mcp_sets import callable_servers, used_servers
from workflows.nodes.base import NodeFailed, RunContext, heartbeat_interval


def node_mcp_servers(run: RunContext, node: ir.Node) -> list[McpServerSpec]:
    """The servers ``node`` may call in this run."""
    return callable_servers(run.wf, node, run.options.mcp_project_servers)


async def call_mcp_tool(run: RunContext, node: ir.Node, name: str, arguments: dict[str, Any],
                        servers: list[McpServerSpec], *, counts_as_attempt: bool) -> McpCallResult:
    """Call registry name ``name`` (`mcp.SERVER.TOOL`) on one of ``servers``; an unknown server is a
    `NodeFailed` naming the node's servers (the run's start checks make it rare)."""
    split = split_tool_name(name)
    if split is None:
        raise NodeFailed(f"'{name}' is not an MCP tool name (mcp.SERVER.TOOL)")
    server, tool = split
    spec = next((s for s in servers if s.name == server), None)
    if spec is None:
        raise NodeFailed(f"node '{node.id}' may not call MCP server '{server}' (its servers: "
                         f"{', '.join(s.name for s in servers) or 'none'}); add it to the node's `mcp: servers:`")
    options = run.options
    req = McpCallRequest(run_id=workflow.info().workflow_id, node_id=node.id, server=spec, tool=tool,
                         arguments=arguments, cwd=options.shell_cwd, timeout_seconds=options.shell_timeout_seconds,
                         heartbeat_seconds=heartbeat_interval(options.shell_heartbeat_timeout_seconds),
                         offload_threshold_bytes=options.offload_threshold_bytes)
    # A little over the call's own timeout, so the activity reports a slow tool itself.
    return await run.activity(A.MCP_CALL, req, node.id, f"{node.id} · mcp {server}.{tool}",
                              options.shell_timeout_seconds + 30,
                              heartbeat_timeout=options.shell_heartbeat_timeout_seconds,
                              counts_as_attempt=counts_as_attempt)


#: The `workflow.patched` id of the check of a run's MCP servers before its first node.
CHECK_PATCH = "mcp-health-check"


def run_mcp_servers(run: RunContext) -> list[McpServerSpec]:
    """Every server some node of the run will start, once each, in the order the nodes declare them.
    An offline run (a script) starts only its tool nodes' servers: the scripted model and the
    scripted delegation backends list and call none."""
    wf, seen = run.wf, dict[str, McpServerSpec]()
    offline = run.options.script is not None
    for node in wf.nodes.values():
        if offline and not isinstance(node, ir.ToolNode):
            continue
        delegated = isinstance(node, ir.AgentNode) and (node.backend or wf.default_backend) in DELEGATE_BACKENDS
        for spec in used_servers(wf, node, run.options.mcp_project_servers, delegated=delegated):
            seen.setdefault(spec.name, spec)
    return list(seen.values())


async def check_mcp_servers(run: RunContext) -> list[McpServerHealth]:
    """Before the first node of a new run: reach every server the run may use (one activity); the
    servers that failed, each with why. Runs without servers, and runs recorded before this check,
    schedule nothing."""
    servers = run_mcp_servers(run)
    if not servers or not workflow.patched(CHECK_PATCH):
        return []
    options = run.options
    req = McpCheckRequest(run_id=workflow.info().workflow_id, servers=servers, cwd=options.shell_cwd)
    try:
        result = await run.activity(A.MCP_CHECK, req, run.wf.entry, "mcp servers · check before the run",
                                    req.timeout_seconds * 2 + 30, heartbeat_timeout=30.0, counts_as_attempt=False)
    except NodeFailed as failure:
        return [McpServerHealth(name=", ".join(s.name for s in servers), ok=False, error=str(failure))]
    return result.problems()
