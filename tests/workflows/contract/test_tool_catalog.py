"""The light catalog of builtin tool names agrees with the registry that runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from activities.tools.registry import registry
from workflows.contract.tool_catalog import (
    BOUND_ARGUMENTS,
    BUILTIN_TOOLS,
    bound_run_vars,
    builtin_tool_names,
    mutating_tool_names,
)

REPO = Path(__file__).resolve().parents[3]


def test_catalog_names_are_the_registry_names() -> None:
    assert builtin_tool_names() == frozenset(registry())


def test_catalog_mutating_flags_match_the_registry() -> None:
    assert BUILTIN_TOOLS == {name: tool.mutating for name, tool in registry().items()}
    assert mutating_tool_names() == {name for name, tool in registry().items() if tool.mutating}


def test_catalog_bound_arguments_match_the_registry() -> None:
    assert BOUND_ARGUMENTS == {name: tool.bound_arguments for name, tool in registry().items() if tool.bound}
    assert bound_run_vars("create_feature_flag") == ["flag_provider"] and bound_run_vars("echo") == []


def test_importing_the_catalog_loads_nothing_heavy() -> None:
    code = ("import sys, workflows.contract.tool_catalog; "
            "print([m for m in ('temporalio', 'pydantic', 'activities.tools.registry', 'activities.connectors') "
            "if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
