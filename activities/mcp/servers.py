"""From a `McpServerSpec` in a request to the exact server the worker starts or connects to.

Two things happen here, and only on the worker:

- a `project_file` spec is replaced by its entry in that `.mcp.json`, read now (the file often holds
  literal tokens, so it never travels through history);
- `${ENV}` references in the command, arguments, URL, headers and environment are expanded
  (`workflows.contract.env_refs.expand_env`).

The result, `ResolvedServer`, is what the pool keys its live sessions by: two specs that resolve to
the same server share one session, and a change of configuration (an edited `.mcp.json`, a rotated
token in the environment) starts a new one.
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activities.errors import McpServerError
from workflows.contract.env_refs import expand_env
from workflows.contract.mcp import McpServerSpec, McpTransport

#: `.mcp.json` spellings of a transport, as Claude Code and Iterion accept them.
_TRANSPORT_ALIASES: dict[str, McpTransport] = {
    "stdio": "stdio", "http": "http", "streamable-http": "http", "streamable_http": "http",
    "streamableHttp": "http", "sse": "sse",
}


@dataclass(frozen=True)
class ResolvedServer:
    """A server as the worker reaches it: values expanded, transport known. Holds secrets: never
    log it or put it in a failure (use `name` and `describe()`)."""

    name: str
    transport: McpTransport
    command: str = ""
    args: tuple[str, ...] = ()
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None  # stdio only: where the process starts
    origin: str = field(default="", compare=False)  # "the .mcp.json at …" or "" for a workflow's own server

    @property
    def key(self) -> str:
        """The pool's key: the canonical JSON of everything that makes this server this server."""
        data = {"name": self.name, "transport": self.transport, "command": self.command, "args": list(self.args),
                "url": self.url, "headers": dict(self.headers), "env": dict(self.env), "cwd": self.cwd}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def key_digest(self) -> str:
        """A short name for the key that is safe to log (the key itself may hold tokens)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """How a message names the server: its name and transport, never its values."""
        where = f" from {self.origin}" if self.origin else ""
        return f"MCP server '{self.name}' ({self.transport}{where})"


def resolve_server(spec: McpServerSpec, *, cwd: str | None) -> ResolvedServer:
    """The server ``spec`` names, ready to start (see the module doc); `McpServerError` when the
    configuration cannot describe a server (never retried: the file or the workflow must change)."""
    origin = ""
    if spec.project_file:
        spec, origin = _from_project_file(spec, cwd)
    transport = spec.transport or _inferred_transport(spec.command, spec.url)
    if transport is None:
        raise McpServerError(f"MCP server '{spec.name}': no transport, command or url is given; "
                             "set `command` for a local (stdio) server or `url` for an HTTP one")
    command = expand_env(spec.command)
    url = expand_env(spec.url)
    if transport == "stdio" and not command.strip():
        raise McpServerError(f"MCP server '{spec.name}' (stdio): `command` is empty"
                             f"{' after expanding ' + repr(spec.command) if spec.command else ''}")
    if transport != "stdio" and not url.strip():
        raise McpServerError(f"MCP server '{spec.name}' ({transport}): `url` is empty"
                             f"{' after expanding its environment references' if spec.url else ''}")
    return ResolvedServer(
        name=spec.name,
        transport=transport,
        command=command,
        args=tuple(expand_env(a) for a in spec.args),
        url=url,
        headers=tuple(sorted((k, expand_env(v)) for k, v in spec.headers.items())),
        env=tuple(sorted((k, expand_env(v)) for k, v in spec.env.items())),
        cwd=cwd if transport == "stdio" else None,
        origin=origin,
    )


def _inferred_transport(command: str, url: str) -> McpTransport | None:
    if url:
        return "http"
    if command:
        return "stdio"
    return None


def _from_project_file(spec: McpServerSpec, cwd: str | None) -> tuple[McpServerSpec, str]:
    """The spec written in the `.mcp.json` entry ``spec.name`` (relative paths: from the run's cwd)."""
    path = Path(spec.project_file)
    if not path.is_absolute() and cwd:
        path = Path(cwd) / path
    origin = f"the .mcp.json at {path}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise McpServerError(f"MCP server '{spec.name}': {path} does not exist on the worker (host "
                             f"{socket.gethostname()}); run the worker where the project is, or declare the server "
                             "in the workflow with `mcp_server`") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise McpServerError(f"MCP server '{spec.name}': cannot read {path} as JSON: {exc}") from None
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    entry = servers.get(spec.name) if isinstance(servers, dict) else None
    if not isinstance(entry, dict):
        known = sorted(servers) if isinstance(servers, dict) else []
        raise McpServerError(f"MCP server '{spec.name}' is not in {path} (`mcpServers` has: "
                             f"{', '.join(known) or 'nothing'})")
    try:
        return McpServerSpec(
            name=spec.name,
            transport=_entry_transport(entry, spec.name, path),
            command=_text(entry, "command"),
            args=[str(a) for a in entry.get("args") or []],
            url=_text(entry, "url"),
            headers={str(k): str(v) for k, v in (entry.get("headers") or {}).items()},
            env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
        ), origin
    except (AttributeError, TypeError) as exc:
        raise McpServerError(f"MCP server '{spec.name}' in {path}: malformed entry ({exc}); expected "
                             "command/args/url/headers/env of strings") from None


def _entry_transport(entry: dict[str, Any], name: str, path: Path) -> McpTransport | None:
    raw = entry.get("type") or entry.get("transport")
    if not raw:
        return None  # inferred from url / command
    transport = _TRANSPORT_ALIASES.get(str(raw))
    if transport is None:
        raise McpServerError(f"MCP server '{name}' in {path}: unknown transport {raw!r}; "
                             "use stdio, http (streamable-http) or sse")
    return transport


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "" if value is None else str(value)
