"""A tool node: a builtin tool (`call:`), a shell command (`command:`) or an inline script
(`script:`, run as a shell command that starts its interpreter), each one activity."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from dsl import ir, scripts
from workflows.contract import activities as A
from workflows.contract import messages as M
from workflows.contract.mcp import split_tool_name
from workflows.inputs import RenderedCommand, placed_input_tokens, render_command
from workflows.nodes.base import NodeFailed, Produced, RunContext, heartbeat_interval, produce
from workflows.nodes.mcp_tools import call_mcp_tool, node_mcp_servers


async def visit(run: RunContext, node: ir.ToolNode, branch: str, node_input: dict[str, Any]) -> str | None:
    """Run the tool. Shell commands in parallel branches run at the same time, as a fan-out says:
    the person wrote each command and chose to fan out (`max_parallel_branches: 1` runs them one
    at a time). Runs recorded before that held the workspace for each command, and still do."""

    async def work() -> Produced:
        if node.call or workflow.patched("parallel-shell-branches"):
            return await run_tool(run, node, node_input)
        async with run.workspace(node):
            return await run_tool(run, node, node_input)

    return await produce(run, node, branch, work, counted=True)


async def run_tool(run: RunContext, node: ir.ToolNode, node_input: dict[str, Any]) -> Produced:
    """A `call:` gets the node's input as its arguments; a `command:` is rendered with every
    value passed beside it as an environment variable (data, never command text), and heartbeats
    so a dead worker's command is retried."""
    options = run.options
    run_id = workflow.info().workflow_id
    # An MCP tool: its error fails the node. (Such a `call:` failed to compile before; the patch keeps
    # any run that reached the tool activity with one doing so on replay.)
    if node.call and split_tool_name(node.call) is not None and workflow.patched("mcp-tool-nodes"):
        mres = await call_mcp_tool(run, node, node.call, node_input, node_mcp_servers(run, node),
                                   counts_as_attempt=True)
        if mres.is_error:
            raise NodeFailed(f"MCP tool '{node.call}' reported an error: {mres.text or '(no text)'}",
                             M.ERR_COMMAND_FAILED)
        return mres.output, M.Usage()
    if node.call:
        req = M.ToolCallRequest(run_id=run_id, node_id=node.id, tool=node.call, arguments=node_input,
                                offload_threshold_bytes=options.offload_threshold_bytes,
                                artifact_tokens=sorted(set(placed_input_tokens(run.wf, node.id, run.data, node_input))))
        res = await run.activity(A.TOOL_CALL, req, node.id, f"{node.id} · call {node.call}",
                                 options.shell_timeout_seconds)
        return res.output, M.Usage()
    if node.script:
        rendered = render_script(run, node, node_input)
    else:
        rendered = render_command(node.command, run.data, node_input)
    beat = heartbeat_interval(options.shell_heartbeat_timeout_seconds)
    sreq = M.ShellRequest(run_id=run_id, node_id=node.id, command=rendered.command, values=rendered.values,
                          cwd=options.shell_cwd,
                          timeout_seconds=options.shell_timeout_seconds, heartbeat_seconds=beat,
                          offload_threshold_bytes=options.offload_threshold_bytes)
    sres = await run.activity(A.SHELL_EXEC, sreq, node.id, f"{node.id} · shell", options.shell_timeout_seconds + 30,
                              heartbeat_timeout=options.shell_heartbeat_timeout_seconds)
    return sres.output, M.Usage()


def render_script(run: RunContext, node: ir.ToolNode, node_input: dict[str, Any]) -> RenderedCommand:
    """An inline script (`script:` + `language:`): the script text travels as a value too
    (`ITERLOOP_VALUE_0`) and the command only starts its interpreter on it, so neither the script
    nor any value is read by the outer shell. A `sh`/`bash` script's templates are rendered as a
    command's; a js/py script's become code reading the environment (dsl/scripts.py)."""
    if scripts.interpreter(node.language) in ("sh", "bash"):
        inner = render_command(node.script, run.data, node_input)
        text, values = inner.command, list(inner.values)
    else:
        rendered = scripts.render_script(node.script, node.language, run.data.lookup(node_input))
        text = rendered.text
        values = [M.ShellValue(env=env, ref=ref, value=value) for env, ref, value in rendered.values]
    script = M.ShellValue(env=scripts.SCRIPT_ENV, ref=f"the script of tool '{node.id}'", value=text)
    return RenderedCommand(scripts.command_for(node.language), [script, *values])
