"""Real MCP servers for the MCP client's tests, as the worker would reach them.

- `@modelcontextprotocol/server-filesystem` and `server-everything` (npm, pinned; `make mcp-servers`
  installs them into `.tools/node`), and `mcp-server-time` (PyPI, the `[test]` extra);
- `everything_http`: server-everything's streamable HTTP (or SSE) mode on a free local port;
- a small server of our own (`python tests/mcp_servers.py changing`, built on the `mcp` SDK) whose
  tool `add_tool` adds a tool and tells the client (`notifications/tools/list_changed`), the one
  behaviour the reference servers do not offer on demand (`add_tool_quietly` adds one silently).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / ".tools" / "node" / "node_modules" / ".bin"
FILESYSTEM = NODE_BIN / "mcp-server-filesystem"
EVERYTHING = NODE_BIN / "mcp-server-everything"


def node_servers_installed() -> bool:
    return FILESYSTEM.exists() and EVERYTHING.exists()


def missing_reason() -> str:
    return f"the MCP servers are not installed in {NODE_BIN}: run `make setup` (or `make mcp-servers`; needs npm)"


def require_node_servers() -> None:
    """Fail (never skip) a test that needs the npm servers when `make setup` has not installed them."""
    assert node_servers_installed(), missing_reason()


def filesystem_command(*allowed_dirs: str) -> tuple[str, list[str]]:
    """server-filesystem over stdio, allowed to touch ``allowed_dirs`` only."""
    return str(FILESYSTEM), list(allowed_dirs)


def everything_command() -> tuple[str, list[str]]:
    return str(EVERYTHING), ["stdio"]


def time_command() -> tuple[str, list[str]]:
    return sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"]


def changing_command() -> tuple[str, list[str]]:
    return sys.executable, [str(Path(__file__).resolve()), "changing"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the MCP server exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the MCP server did not listen on port {port} within {timeout:g} s")


@contextlib.contextmanager
def everything_http(mode: str = "streamableHttp", port: int | None = None) -> Iterator[str]:
    """server-everything in ``mode`` (`streamableHttp` or `sse`) on a local port; yields its URL."""
    port = port or free_port()
    proc = subprocess.Popen([str(EVERYTHING), mode], env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/{'mcp' if mode == 'streamableHttp' else 'sse'}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_changing_server() -> None:
    server = MCPServer("changing")

    @server.tool()
    async def add_tool(name: str, ctx: Context) -> str:
        """Add a tool called ``name`` and tell the client that the list changed."""

        def added() -> str:
            return f"I am {name}"

        server.add_tool(added, name=name, description=f"added at run time: {name}")
        await ctx.request_context.session.send_tool_list_changed()
        return f"added {name}"

    @server.tool()
    def add_tool_quietly(name: str) -> str:
        """Add a tool called ``name`` without telling the client (only a new `tools/list` shows it)."""
        server.add_tool(lambda: name, name=name, description=f"added quietly: {name}")
        return f"added {name} quietly"

    server.run("stdio")


if __name__ == "__main__":
    if sys.argv[1:] == ["changing"]:
        _run_changing_server()
    else:
        sys.exit("usage: python tests/mcp_servers.py changing")
