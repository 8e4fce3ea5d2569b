"""The worker's MCP servers: one live session per server, started on first use, and their tools.

Why a pool: starting a server (an `npx` package, a Python process, an HTTP handshake) costs far
more than a call, and a model's tool loop calls the same servers many times; so a worker keeps one
session per server (`ResolvedServer.key`: the spec after `${ENV}` expansion, and the run's
directory for a stdio server) for as long as it lives, and every activity on it shares that session
(MCP sessions take concurrent requests).

- **Restart.** A session whose server died (process exited, connection lost) is replaced by a new
  one on the next use; a call that was in flight when it died fails with `McpServerUnavailable`,
  which Temporal retries. An HTTP server that restarted refuses the old session's requests: that
  refusal (told from a tool's own error by a ping) starts a new session and sends the call again,
  since it never ran.
- **Discovery cache.** `tools/list` answers are kept per server for `cache_ttl_seconds` (0: never
  kept) and dropped when the server sends `notifications/tools/list_changed` or is restarted.
- **Shutdown.** `close()` stops every server (the worker calls `close_pool()` on its way out).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from activities.errors import McpServerError, McpServerUnavailableError
from activities.mcp.connection import ServerConnection
from activities.mcp.servers import ResolvedServer, resolve_server
from workflows.contract.mcp import McpServerSpec, McpToolInfo

DEFAULT_CACHE_TTL_SECONDS = 3600.0
#: How long a server may take to answer the ping that tells a lost session from a failed request.
PING_TIMEOUT_SECONDS = 10.0
#: Pages of `tools/list` read at most (a server whose cursor never ends cannot hang discovery).
MAX_LIST_PAGES = 100


@dataclass
class _CachedTools:
    tools: list[McpToolInfo]
    fetched_at: float


class ServerPool:
    """Live sessions and cached tool lists, by server (see the module doc)."""

    def __init__(self, *, cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS) -> None:
        self.cache_ttl_seconds = cache_ttl_seconds
        self._connections: dict[str, ServerConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tools: dict[str, _CachedTools] = {}
        # Bumped by each `tools/list_changed`: a listing that was under way when one arrived is not kept.
        self._changes: dict[str, int] = {}
        self._closed = False

    async def connection(self, server: ResolvedServer) -> ServerConnection:
        """The live session with ``server``, started (or restarted) now if there is none."""
        if self._closed:
            raise McpServerUnavailableError(f"{server.describe()}: the worker is shutting down")
        lock = self._locks.setdefault(server.key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(server.key)
            if conn is not None and conn.alive:
                return conn
            if conn is not None:  # died since its last use: clean up what is left, then start anew
                del self._connections[server.key]
                self._tools.pop(server.key, None)
                await conn.close()
            conn = ServerConnection(server, on_tools_changed=lambda: self._tools_changed(server.key))
            await conn.start()
            self._connections[server.key] = conn
            return conn

    def running(self, server: ResolvedServer) -> ServerConnection | None:
        """The pooled session with ``server`` if there is one (for inspection and tests)."""
        return self._connections.get(server.key)

    async def list_tools(self, server: ResolvedServer) -> list[McpToolInfo]:
        """The server's tools, from the cache while it is fresh."""
        cached = self._tools.get(server.key)
        if cached is not None and time.monotonic() - cached.fetched_at < self.cache_ttl_seconds:
            return list(cached.tools)
        for attempt in (1, 2):
            conn = await self.connection(server)
            fetched_at, changes = time.monotonic(), self._changes.get(server.key, 0)
            try:
                tools = await _all_tools(conn, server)
                break
            except MCPError as exc:
                if exc.code != types.CONNECTION_CLOSED and not await self._session_lost(conn):
                    raise McpServerError(conn.failure_message(f"refused tools/list: {exc.message}"),
                                         details={"server": server.name}) from None
                if attempt == 2:
                    raise self._request_failure(conn, "tools/list", exc) from None
                # Listing changes nothing on the server: ask once more, on a new session.
        if self.cache_ttl_seconds > 0 and self._changes.get(server.key, 0) == changes:
            self._tools[server.key] = _CachedTools(tools, fetched_at)
        return list(tools)

    async def call_tool(self, server: ResolvedServer, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """`tools/call`; a JSON-RPC error from the server (unknown tool, bad arguments) and an answer
        the SDK rejects come back as an error *result*, as the model should see them."""
        for attempt in (1, 2):
            conn = await self.connection(server)
            try:
                return await conn.session.call_tool(tool, arguments)
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    raise self._request_failure(conn, f"tools/call {tool}", exc) from None
                if not await self._session_lost(conn):
                    return _error_result(f"MCP error {exc.code}: {exc.message}")
                if attempt == 2:
                    raise self._request_failure(conn, f"tools/call {tool}", exc) from None
                # The server refused the session itself (an HTTP server restarted and forgot it), so
                # the call never ran: once more, on a new session.
            except RuntimeError as exc:  # output schema violated, or a result shape we do not take
                return _error_result(str(exc))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Stop every server; the pool refuses new work afterwards."""
        self._closed = True
        connections, self._connections = list(self._connections.values()), {}
        self._tools.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    def _tools_changed(self, key: str) -> None:
        self._tools.pop(key, None)
        self._changes[key] = self._changes.get(key, 0) + 1

    async def _session_lost(self, conn: ServerConnection) -> bool:
        """After an error answer: whether the session is gone (an HTTP server that restarted answers
        every request of the old session with an HTTP error; a ping tells that from a tool's failure).
        A lost session is dropped, so the next use starts a new one."""
        if conn.server.transport == "stdio" and conn.alive:
            return False  # a live process answered: the error is the request's
        try:
            with anyio.fail_after(PING_TIMEOUT_SECONDS):
                await conn.session.send_ping()
            return False
        except Exception:  # noqa: BLE001 - any failure to ping means the same: this session is unusable
            await self._drop(conn)
            return True

    async def _drop(self, conn: ServerConnection) -> None:
        if self._connections.get(conn.server.key) is conn:
            del self._connections[conn.server.key]
        self._tools.pop(conn.server.key, None)
        await conn.close()

    def _request_failure(self, conn: ServerConnection, what: str, exc: MCPError) -> McpServerUnavailableError:
        """The connection was lost during ``what``: retried, and the next use starts the server again."""
        self._tools.pop(conn.server.key, None)
        return McpServerUnavailableError(
            conn.failure_message(f"was lost during {what} ({exc.message})"),
            details={"server": conn.server.name, "stderr_tail": conn.stderr_tail()})


async def _all_tools(conn: ServerConnection, server: ResolvedServer) -> list[McpToolInfo]:
    tools: list[McpToolInfo] = []
    cursor: str | None = None
    for _ in range(MAX_LIST_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await conn.session.list_tools(params=params)
        tools += [tool_info(server.name, t) for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def tool_info(server: str, tool: types.Tool) -> McpToolInfo:
    """A listed tool as the contract carries it: the annotations that decide `mutating` kept."""
    hints = tool.annotations
    return McpToolInfo(
        server=server,
        name=tool.name,
        description=tool.description or tool.title or "",
        input_schema=dict(tool.input_schema or {}),
        read_only=hints.read_only_hint if hints else None,
        destructive=hints.destructive_hint if hints else None,
    )


def _error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


# -- the worker's pool ---------------------------------------------------------------------------

_pool: ServerPool | None = None


def configure(*, cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS) -> None:
    """Set by the worker before it starts polling (`ITERLOOP_MCP_CACHE_TTL_SECONDS`)."""
    global _pool
    if cache_ttl_seconds < 0:
        raise ValueError(f"the MCP tool cache's TTL must be 0 or more seconds, got {cache_ttl_seconds}")
    if _pool is None:
        _pool = ServerPool(cache_ttl_seconds=cache_ttl_seconds)
    else:
        _pool.cache_ttl_seconds = cache_ttl_seconds


def pool() -> ServerPool:
    """The worker's pool (created with the default TTL when the worker did not configure one)."""
    global _pool
    if _pool is None:
        _pool = ServerPool()
    return _pool


async def close_pool() -> None:
    """Stop the worker's servers (on worker shutdown); a later use starts a fresh pool."""
    global _pool
    current, _pool = _pool, None
    if current is not None:
        await current.close()


async def list_tools(server: McpServerSpec, *, cwd: str | None) -> list[McpToolInfo]:
    """The tools of ``server`` (started in ``cwd`` if it is a stdio server; a `.mcp.json` path is read
    from there): what the LLM activity offers to a model. `McpServerError` when the server cannot be
    started, `McpServerUnavailableError` when it was lost while answering."""
    return await pool().list_tools(resolve_server(server, cwd=cwd))


__all__ = ["ServerPool", "close_pool", "configure", "list_tools", "pool"]
