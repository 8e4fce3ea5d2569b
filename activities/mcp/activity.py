"""The `iterloop.mcp_call` activity: one MCP tool call on the worker's pooled server.

- **Heartbeats** every `req.heartbeat_seconds` while the call runs (server, tool, elapsed): Temporal
  delivers a cancel only through heartbeats, and the details show what a slow node waits for.
- **Cancellation** (a cancelled run, a heartbeat timeout, worker shutdown) cancels the request: the
  SDK sends the server `notifications/cancelled`, and the server itself stays in the pool.
- **Timeout** (`req.timeout_seconds`): the request is cancelled the same way and the call returns an
  *error result* saying so, as a tool's own error does (Iterion hands both to the model, which can
  try something else); the activity's own start-to-close timeout must leave room for it.
- **Failures** are for the server, not the tool: `McpServerFailed` (cannot start: never retried; the
  message ends with its stderr) and `McpServerUnavailable` (lost mid-call: retried, and the retry
  starts it again). Secrets in them are redacted by the error tree.
- **Large outputs** are offloaded to the artifact store like every activity's.
"""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities import artifacts
from activities.errors import BadRequestError, McpError
from activities.heartbeats import wait_heartbeating
from activities.mcp.pool import list_tools, pool
from activities.mcp.results import call_result
from activities.mcp.servers import resolve_server
from workflows.contract.mcp import (
    McpCallRequest,
    McpCallResult,
    McpCheckRequest,
    McpCheckResult,
    McpServerHealth,
    McpServerSpec,
)
from workflows.contract.vocabulary import MCP_CALL, MCP_CHECK

#: How long a cancelled request may take to wind down before the activity gives up waiting for it.
CANCEL_GRACE_SECONDS = 5.0


@activity.defn(name=MCP_CALL)
async def mcp_call(req: McpCallRequest) -> McpCallResult:
    """Call ``req.tool`` on ``req.server`` and return its mapped result (see the module doc)."""
    if req.timeout_seconds <= 0 or req.heartbeat_seconds <= 0:
        raise BadRequestError(
            f"mcp node '{req.node_id}': timeout_seconds and heartbeat_seconds must be positive, "
            f"got {req.timeout_seconds} and {req.heartbeat_seconds}")
    server = resolve_server(req.server, cwd=req.cwd)
    started = time.monotonic()
    call = asyncio.ensure_future(pool().call_tool(server, req.tool, req.arguments))
    try:
        finished = await _wait_heartbeating(call, req, started)
    except BaseException:  # cancelled (run cancel, heartbeat timeout, worker shutdown)
        await _cancel(call)
        raise
    if not finished:
        await _cancel(call)
        text = (f"MCP tool {req.server.name}.{req.tool} timed out after {req.timeout_seconds:g} s "
                "and was cancelled")
        return McpCallResult(output={"error": text}, is_error=True, text=text)
    result = call_result(call.result())
    output = await artifacts.offload_async(result.output, run_id=req.run_id, node_id=req.node_id,
                               threshold=req.offload_threshold_bytes)
    return result.model_copy(update={"output": output})


async def _wait_heartbeating(call: asyncio.Future[object], req: McpCallRequest, started: float) -> bool:
    """Wait for ``call``, heartbeating; False when `req.timeout_seconds` ran out first."""
    return await wait_heartbeating(
        call, started=started, timeout_seconds=req.timeout_seconds, every_seconds=req.heartbeat_seconds,
        details=lambda: {"server": req.server.name, "tool": req.tool,
                         "elapsed_seconds": round(time.monotonic() - started, 1)})


async def _cancel(call: asyncio.Future[object]) -> None:
    """Cancel the request (the SDK tells the server) and give it a moment to wind down."""
    call.cancel()
    await asyncio.wait({call}, timeout=CANCEL_GRACE_SECONDS)
    if call.done() and not call.cancelled():
        call.exception()  # retrieved, so asyncio does not log it


@activity.defn(name=MCP_CHECK)
async def mcp_check(req: McpCheckRequest) -> McpCheckResult:
    """Reach every server of ``req`` at once and list its tools (the pool keeps the sessions and
    the lists, so the run's first calls find them ready). A server that fails is reported, not
    raised: the run names every misconfigured server in one message."""

    async def check(spec: McpServerSpec) -> McpServerHealth:
        try:
            tools = await asyncio.wait_for(list_tools(spec, cwd=req.cwd), req.timeout_seconds)
        except TimeoutError:
            return McpServerHealth(name=spec.name, ok=False,
                                   error=f"no answer to tools/list within {req.timeout_seconds:g} s")
        except McpError as exc:  # its message is redacted and names the server (and its stderr)
            return McpServerHealth(name=spec.name, ok=False, error=exc.message)
        return McpServerHealth(name=spec.name, ok=True, tools=len(tools))

    checks = asyncio.gather(*(check(s) for s in req.servers))
    started = time.monotonic()
    await wait_heartbeating(checks, started=started, timeout_seconds=req.timeout_seconds * 2 + 5,
                            every_seconds=5.0, details=lambda: {"servers": [s.name for s in req.servers]})
    return McpCheckResult(servers=checks.result())
