"""How the builtin tools are put together: tool modules define, the registry assembles, the
catalog (`workflows.contract.tool_catalog`) decides what exists and its metadata."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel

from activities.tools.registry import TOOL_SETS, assemble, registry
from activities.tools.spec import Tool, ToolSet
from workflows.contract.tool_catalog import BOUND_ARGUMENTS, BUILTIN_TOOLS

TOOLS_DIR = Path(__file__).resolve().parents[2] / "activities" / "tools"


class Query(BaseModel):
    connector: str = "mock"


class Answer(BaseModel):
    ok: bool = True


async def echo_like(args: Query) -> Answer:
    """A stand-in implementation."""
    return Answer()


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_tool_module_imports_the_registry() -> None:
    """The registry imports the tool modules; the other way round would be an import circle."""
    for path in sorted(TOOLS_DIR.glob("*.py")):
        if path.name != "registry.py":
            assert "activities.tools.registry" not in imported_modules(path), path.name


def test_the_registry_is_the_catalog_in_its_order_with_its_metadata() -> None:
    tools = registry()
    assert list(tools) == list(BUILTIN_TOOLS)
    for name, t in tools.items():
        assert t.mutating == BUILTIN_TOOLS[name]
        assert t.bound_arguments == BOUND_ARGUMENTS.get(name, {})
        assert t.description, f"{name} needs a docstring: it is what a model reads"


def test_a_tool_missing_from_the_catalog_is_refused_where_it_is_defined() -> None:
    with pytest.raises(ValueError, match="'not_in_catalog' is not in the tool catalog"):
        ToolSet().tool("not_in_catalog")(echo_like)


def test_a_catalog_entry_without_an_implementation_or_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="no tool module implements"):
        assemble(TOOL_SETS[:-1])
    with pytest.raises(ValueError, match="defined twice"):
        assemble((*TOOL_SETS, TOOL_SETS[0]))


def test_bound_arguments_come_from_the_catalog_and_must_be_fields() -> None:
    t = Tool.implementing("get_funnel_data", echo_like)
    assert (t.bound, t.bound_vars, t.mutating) == ((("connector", "connector"),), ["connector"], False)
    with pytest.raises(ValueError, match="bound argument.*provider.*not fields of Query"):
        Tool.implementing("create_feature_flag", echo_like)
