"""A tool node: a builtin tool (`call:`), a shell command (`command:`) or an inline script
(`script:`, run as a shell command that starts its interpreter), each one activity.

A `call:` of a tool the catalog lists as local (`tool_catalog.LOCAL_TOOLS`: echo, sum_values, the
statistics) runs as a *local* activity: in the worker running the workflow task, its result
recorded in a marker, so a chain of them completes without a server round trip per node. The
node keeps the ordinary activity when the run asks so (`RunOptions.local_tools`), when its input
holds a stored artifact (reading the artifact store is I/O), or when the run was recorded before
the tool was listed (its `workflow.patched` id). Events, outputs, budget and failures are the same
either way.

A `call:` of a tool that is also pure (`tool_catalog.INLINE_TOOLS`: echo, sum_values) is not an
activity at all: the workflow computes it with the same function the activity runs
(`workflows.contract.inline_tools`), and a replay recomputes the same value. The same three
conditions keep such a node on the local activity (the run's `local_tools`, a stored artifact in
its input, a run recorded before `inline-pure-tools`), and so does anything only the activity does
right: rejecting bad arguments, offloading a large output, redacting secret-shaped text.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from dsl import ir, scripts
from workflows.contract import activities as A
from workflows.contract import messages as M
from workflows.contract.artifact_refs import ARTIFACT_KEY, ARTIFACT_REF_KEY, TOKEN_OPENING
from workflows.contract.inline_tools import evaluate
from workflows.contract.mcp import split_tool_name
from workflows.contract.tool_catalog import INLINE_TOOLS, LOCAL_TOOLS
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
        inline = evaluated_inline(run, node.call, node_input)
        if inline is not None:
            # Give the other ready branches their turn, as awaiting an activity would: a fan-out's
            # branches all start before any finishes, so its events come in the activity path's order.
            # (A bare yield to the workflow's event loop: no command, nothing in the history.)
            await asyncio.sleep(0)
            return inline, M.Usage()
        req = M.ToolCallRequest(run_id=run_id, node_id=node.id, tool=node.call, arguments=node_input,
                                offload_threshold_bytes=options.offload_threshold_bytes,
                                artifact_tokens=sorted(set(placed_input_tokens(run.wf, node.id, run.data, node_input))))
        res = await run.activity(A.TOOL_CALL, req, node.id, f"{node.id} · call {node.call}",
                                 options.shell_timeout_seconds, local=runs_locally(run, node.call, node_input))
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


def evaluated_inline(run: RunContext, tool: str, node_input: dict[str, Any]) -> dict[str, Any] | None:
    """The output of this `call:` of ``tool`` computed in the workflow, or None when it takes its
    activity (see the module docstring). The patch is asked last, and only for a call that would
    be evaluated: a run recorded before it has local activities there and keeps them on replay.
    A refusal after the patch (bad arguments, a large output) is decided by the same pure code on
    replay, so the activity it leads to is always there in the history."""
    patch = INLINE_TOOLS.get(tool)
    if patch is None or not run.options.local_tools or holds_stored_artifact(node_input):
        return None
    if not workflow.patched(patch):
        return None
    return evaluate(tool, node_input, run.options.offload_threshold_bytes)


def runs_locally(run: RunContext, tool: str, node_input: dict[str, Any]) -> bool:
    """Whether this `call:` of ``tool`` runs as a local activity (see the module docstring). The
    patch is asked last, and only for a tool that would run locally: its marker is recorded once,
    the first time a run has such a node, and a run recorded before it keeps ordinary activities."""
    patch = LOCAL_TOOLS.get(tool)
    return (patch is not None and run.options.local_tools and not holds_stored_artifact(node_input)
            and workflow.patched(patch))


def holds_stored_artifact(value: Any) -> bool:
    """Whether ``value`` holds a stub or reference of a stored output, or an artifact token: the
    activity would read the artifact store to resolve it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if ARTIFACT_KEY in item or ARTIFACT_REF_KEY in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and TOKEN_OPENING in item:
            return True
    return False


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
