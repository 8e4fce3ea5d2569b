"""MCP servers on the worker: the client side of issue 14 (docs/tools.md, "MCP servers").

- `servers`: a request's `McpServerSpec` → the server to reach (`.mcp.json` read, `${ENV}` expanded);
- `connection`: one live session with one server, owned by one task;
- `pool`: the worker's sessions (started lazily, restarted when dead, closed on shutdown) and the
  `tools/list` cache; `list_tools(server, cwd=…)` is what the LLM activity calls;
- `results`: a `CallToolResult` as a node output;
- `activity`: `iterloop.mcp_call`.
"""

from activities.mcp.activity import mcp_call, mcp_check
from activities.mcp.pool import close_pool, configure, list_tools

__all__ = ["close_pool", "configure", "list_tools", "mcp_call", "mcp_check"]
