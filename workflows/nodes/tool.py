"""A tool node: a builtin tool (`call:`) or a shell command (`command:`), each one activity."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from dsl import ir
from workflows.contract import activities as A
from workflows.contract import messages as M
from workflows.inputs import render_command
from workflows.nodes.base import Produced, RunContext, heartbeat_interval, produce


async def visit(run: RunContext, node: ir.ToolNode, branch: str, node_input: dict[str, Any]) -> str | None:
    """Run the tool, holding the workspace for a shell command (it may change files)."""

    async def work() -> Produced:
        async with run.workspace(node):
            return await run_tool(run, node, node_input)

    return await produce(run, node, branch, work, counted=True)


async def run_tool(run: RunContext, node: ir.ToolNode, node_input: dict[str, Any]) -> Produced:
    """A `call:` gets the node's input as its arguments; a `command:` is rendered with every
    substituted value shell-quoted, and heartbeats so a dead worker's command is retried."""
    options = run.options
    run_id = workflow.info().workflow_id
    if node.call:
        req = M.ToolCallRequest(run_id=run_id, node_id=node.id, tool=node.call, arguments=node_input,
                                offload_threshold_bytes=options.offload_threshold_bytes)
        res = await run.activity(A.TOOL_CALL, req, node.id, f"{node.id} · call {node.call}",
                                 options.shell_timeout_seconds)
        return res.output, M.Usage()
    command = render_command(node.command, run.data, node_input)
    beat = heartbeat_interval(options.shell_heartbeat_timeout_seconds)
    sreq = M.ShellRequest(run_id=run_id, node_id=node.id, command=command, cwd=options.shell_cwd,
                          timeout_seconds=options.shell_timeout_seconds, heartbeat_seconds=beat,
                          offload_threshold_bytes=options.offload_threshold_bytes)
    sres = await run.activity(A.SHELL_EXEC, sreq, node.id, f"{node.id} · shell", options.shell_timeout_seconds + 30,
                              heartbeat_timeout=options.shell_heartbeat_timeout_seconds)
    return sres.output, M.Usage()
