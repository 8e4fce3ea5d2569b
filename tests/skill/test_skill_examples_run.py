"""Every example of the agent skill runs to `done` offline, as `iterloop run FILE --offline`
runs it: the scripted model (the `<stem>.script.yaml` beside the file, else outputs generated from
the schemas), builtin tools and shell commands for real, gates answered as `--skip-gates` answers
them. An example an agent copies must work, not only validate.

Tool nodes are also checked statically: every `with` key into a `call:` node is an argument the
tool takes, and every output field declared is one the tool returns (a wrong name would not fail a
run, only give a wrong result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runs import finish, running_worker, start, wait_for

import dsl
from activities.tools.registry import registry
from dsl import ir
from runtime import skill
from runtime.presets import skip_gate_answers
from runtime.run_inputs import script_beside
from workflows.contract.scripts import load_script
from workflows.contract.tool_catalog import builtin_tool_names

EXAMPLES = sorted((skill.CHECKOUT_SKILL / "examples").glob("*.iter"))

#: Run inputs (`--var`) an example's header asks for.
INPUTS: dict[str, dict[str, Any]] = {
    "builtin_tool_chain.iter": {"experiment_id": "exp_mobile_trust_badges"},
    "monitoring_loop.iter": {"experiment_id": "exp_mobile_trust_badges"},
}


def compiled(path: Path) -> ir.Workflow:
    result = dsl.check_file(path, options=dsl.CompileOptions(known_tools=builtin_tool_names()))
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    return result.workflow


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_tool_nodes_pass_arguments_the_tool_takes_and_read_fields_it_returns(path: Path) -> None:
    wf = compiled(path)
    tools = registry()
    for node in wf.nodes.values():
        if not (isinstance(node, ir.ToolNode) and node.call):
            continue
        tool = tools[node.call]
        takes = set(tool.input_model.model_fields)
        for edge in (e for e in wf.edges if e.target == node.id):
            assert not [m.key for m in edge.with_ if m.key not in takes], (edge.source, node.id, sorted(takes))
        if node.output_schema and tool.output_model.model_fields:
            declared = {f.name for f in wf.schemas[node.output_schema].fields}
            assert declared <= set(tool.output_model.model_fields), (node.id, declared)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_runs_offline_to_done(path: Path, temporal_env: Any, task_queue: str,
                                                      tmp_path: Path) -> None:
    wf = compiled(path)
    # As a preset may: waits sleep a second, and loops go round at most twice.
    for node in wf.nodes.values():
        if isinstance(node, ir.WaitNode):
            node.duration, node.duration_seconds = "1s", 1.0
    for loop in wf.loops.values():
        loop.max_iterations = min(loop.max_iterations, 2)
    inputs = dict(INPUTS.get(path.name, {}))
    if "flag_provider" in wf.vars:  # keep the local flag store in this test's directory
        inputs["flag_provider"] = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    script_path = script_beside(path)
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, wf, inputs=inputs,
                             script=load_script(script_path) if script_path else {}, shell_cwd=str(tmp_path),
                             gate_answers=skip_gate_answers(wf))
        view = await wait_for(handle, lambda v: v.status != "running", timeout=90)
        assert view.status not in ("failed_resumable", "waiting_human"), (
            [f"{f.node}: {f.error}" for f in view.failures], [g.gate for g in view.open_gates])
        result = await finish(handle)
    # Generated outputs approve, gates are approved, the mock experiment is healthy: every story ends well.
    assert (result.status, result.last_node) == ("finished", "done"), result.reason
