"""Iterion's SEED example files that delegate run offline to their end on a real worker.

Before delegation existed these eight files failed at their first delegated node ("model '' is
empty"). Each is compiled as `iterloop validate` compiles it (no errors or warnings besides C111, the
warning SEED's `pr_review_fix` earns for a router with `backend:`), given a value for each var it
requires and a workspace with what its tool nodes run, run by an in-process offline worker with its gates answered as `--skip-gates` answers
them, and must finish at `done` with every delegated node answered through the delegation
activity by the scripted backend (labelled as such in its steps).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from runs import finish, running_worker, start, wait_for

import dsl
from dsl import ir
from runtime.presets import skip_gate_answers
from workflows.contract.state import Event
from workflows.contract.tool_catalog import builtin_tool_names

SEED = Path(__file__).resolve().parent / "data" / "iterion_seed"
FILES = sorted(p.name for p in SEED.glob("*.iter"))


def compiled(path: Path) -> ir.Workflow:
    result = dsl.check_file(path, options=dsl.CompileOptions(known_tools=builtin_tool_names()))
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    assert [d.code for d in result.diagnostics if d.code != "C111"] == [], [d.render() for d in result.diagnostics]
    return result.workflow


def workspace(tmp: Path) -> Path:
    """What the files' tool nodes expect in their workspace: upstream's `_tools/validate_syntax.js`,
    and a Go module in a git repository for `rust_to_go_port`'s build and commit steps."""
    (tmp / "_tools").mkdir()
    shutil.copy(SEED / "validate_syntax.js", tmp / "_tools" / "validate_syntax.js")
    go = tmp / "go"
    go.mkdir()
    (go / "go.mod").write_text("module example.com/port\n\ngo 1.21\n")
    (go / "main.go").write_text("package main\n\nfunc main() {}\n")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-C", str(go)]
    subprocess.run([*git, "init", "-q"], check=True)
    return tmp


def run_vars(wf: ir.Workflow, tmp: Path) -> dict[str, Any]:
    """A value for each var without a default, and the workspace for every directory var (SEED's
    defaults name `${PROJECT_DIR}`, which no worker environment sets here)."""
    values: dict[str, Any] = {}
    for name, var in wf.vars.items():
        if name == "go_repo_path":
            values[name] = str(tmp / "go")
        elif "path" in name or "dir" in name:
            values[name] = str(tmp)
        elif var.default is None:
            values[name] = f"the {name.replace('_', ' ')}"
    return values


def delegated(wf: ir.Workflow) -> set[str]:
    return {n for n, node in wf.nodes.items()
            if isinstance(node, ir.AgentNode) and (node.backend or wf.default_backend) in ("claude_code", "codex")}


def test_all_eight_seed_files_that_delegate_are_here() -> None:
    assert len(FILES) == 8
    assert all(delegated(compiled(SEED / f)) for f in FILES)


@pytest.mark.parametrize("file", FILES)
async def test_seed_delegation_file_runs_offline_to_done(file: str, temporal_env: Any, task_queue: str,
                                                         tmp_path: Path) -> None:
    wf = compiled(SEED / file)
    async with running_worker(temporal_env.client, task_queue):
        handle = await start(temporal_env.client, task_queue, wf, inputs=run_vars(wf, workspace(tmp_path)), script={},
                             shell_cwd=str(tmp_path), gate_answers=skip_gate_answers(wf))
        view = await wait_for(handle, lambda v: v.status != "running", timeout=120)
        assert view.status not in ("failed_resumable", "waiting_human"), \
            [f"{f.node}: {f.error}" for f in view.failures] + [g.gate for g in view.open_gates]
        result = await finish(handle)
        events = await handle.query("events", 0, result_type=list[Event])
    assert (result.status, result.last_node) == ("finished", "done"), result.reason
    scripted = {e.node for e in events
                if e.type == "delegate_step" and "not run offline" in str(e.data.get("summary", ""))}
    ran = {n for n in delegated(wf) if result.outputs.get(n) is not None}
    assert ran, f"{file}: no delegated node ran"
    assert ran <= scripted, f"{file}: delegated nodes answered without the delegation activity: {ran - scripted}"
