"""MCP servers and tool calls as the workflow and the worker exchange them.

A server reaches the worker as a `McpServerSpec` inside a request: the workflow knows which servers
a node may use (the `.iter` file's `mcp_server` blocks and `mcp:` sets, compiled), the worker starts
and pools them. Two rules keep secrets on the worker:

- Values may hold `${ENV}` references (command, args, URL, headers, env); only the worker expands
  them, so history holds the references.
- A server that comes from the project's `.mcp.json` travels as its name and the file's path
  (`project_file`), never its content: that file's headers and env often hold literal tokens, so
  the worker reads it when it needs the server.

Tools are offered to models and named in `tools:` / `tool_policy:` as `mcp.SERVER.TOOL`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

McpTransport = Literal["stdio", "http", "sse"]

#: The prefix of every MCP tool's registry name.
MCP_PREFIX = "mcp."


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class McpServerSpec(_Msg):
    """How the worker reaches one MCP server (see the module doc for what may hold secrets)."""

    name: str
    transport: McpTransport | None = None  # None only for a server read from `project_file`
    command: str = ""
    args: list[str] = Field(default_factory=list)
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    # Set when the server comes from a project's `.mcp.json`: the worker reads the entry there.
    project_file: str = ""


class McpToolInfo(_Msg):
    """One tool a server lists (`tools/list`), with its annotations."""

    server: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    read_only: bool | None = None  # the tool's `readOnlyHint`
    destructive: bool | None = None  # the tool's `destructiveHint`

    @property
    def registry_name(self) -> str:
        return f"{MCP_PREFIX}{self.server}.{self.name}"

    @property
    def mutating(self) -> bool:
        """Only a tool its server marks read-only is safe for a `readonly` node (MCP's default
        for an unannotated tool is "may change things")."""
        return self.read_only is not True


def split_tool_name(name: str) -> tuple[str, str] | None:
    """``("github", "create_issue")`` for `mcp.github.create_issue`; None for any other name."""
    if not name.startswith(MCP_PREFIX):
        return None
    server, dot, tool = name[len(MCP_PREFIX):].partition(".")
    return (server, tool) if dot and server and tool else None


class McpCallRequest(_Msg):
    """One MCP tool call: one activity (summary `node · mcp SERVER.TOOL`)."""

    run_id: str
    node_id: str
    server: McpServerSpec
    tool: str  # the tool's own name on the server (not the registry name)
    arguments: dict[str, Any] = Field(default_factory=dict)
    cwd: str | None = None  # the run's working directory: stdio servers start there, `.mcp.json` is read there
    timeout_seconds: float = 300.0
    heartbeat_seconds: float = 10.0
    offload_threshold_bytes: int = 0


class McpCallResult(_Msg):
    """The call's result as a node output: Iterion's shape (structured content, else `{"result":
    text}`). ``is_error``: the tool reported an error, which goes back to the model as its result."""

    output: dict[str, Any]
    is_error: bool = False
    text: str = ""


class McpCheckRequest(_Msg):
    """Before a run's first node: start (or reach) every server the run may use and list its tools,
    so a misconfigured server fails the run at once, not at the node that needs it hours later."""

    run_id: str
    servers: list[McpServerSpec]
    cwd: str | None = None
    timeout_seconds: float = 60.0  # per server


class McpServerHealth(_Msg):
    name: str
    ok: bool
    tools: int = 0
    error: str = ""  # why not (the server's stderr tail included; secrets redacted)


class McpCheckResult(_Msg):
    servers: list[McpServerHealth]

    def problems(self) -> list[McpServerHealth]:
        return [s for s in self.servers if not s.ok]
