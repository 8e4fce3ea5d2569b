"""The MCP tools a model turn may offer: what the node's servers list, for the servers its `tools:` name
(all of its servers when `tools:` has a bare name, which may be any of their tools).

The workflow sends the servers a node may call (`LLMTurnRequest.mcp_servers`); a turn lists the
tools of those its `tools:` entries name (`mcp.SERVER.TOOL`, `mcp.SERVER.*`) and no other, so a
server the node never uses is never started. Listing goes through the worker's server pool
(`activities.mcp`), which keeps servers running between turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from activities.errors import BadRequestError
from workflows.contract.mcp import McpToolInfo
from workflows.contract.mcp_sets import bare_names, named_servers
from workflows.contract.messages import LLMTurnRequest

#: `list_tools(server, cwd=…)`: the worker's, or a stand-in in tests.
ToolLister = Callable[..., Awaitable[list[McpToolInfo]]]


async def listed_mcp_tools(req: LLMTurnRequest, *, list_tools: ToolLister | None = None) -> list[McpToolInfo]:
    """The tools of the servers ``req.tools`` names, listed concurrently. A named server the node
    may not call is a permanent `BadRequest` naming the node, the server and the fix."""
    servers = {s.name: s for s in req.mcp_servers}
    names = named_servers(req.tools)
    if bare_names(req.tools):  # a bare name may be any of the node's servers' tools: list them all
        names += [n for n in servers if n not in names]
    if not names:
        return []
    missing = [n for n in names if n not in servers]
    if missing:
        raise BadRequestError(
            f"node '{req.node_id}' names tools of MCP server(s) {', '.join(missing)}, which are not among its "
            f"servers ({', '.join(servers) or 'none'}); add them to the node's `mcp: servers:` (or the workflow's)")
    lister = list_tools or _worker_lister()
    listed = await asyncio.gather(*(lister(servers[n], cwd=req.cwd) for n in names))
    return [tool for tools in listed for tool in tools]


def _worker_lister() -> ToolLister:
    from activities.mcp import list_tools  # the worker's server pool (imported when a node uses MCP)

    return list_tools
