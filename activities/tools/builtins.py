"""General-purpose builtin tools (wiring checks, tests). The growth-experimentation tools live in
the domain modules beside this one.

Both are pure, so a `call:` node evaluates them inside the workflow when it can
(`workflows.contract.inline_tools`); their models and functions live there, and the tools here
only call them, so the activity and the workflow always compute the same thing.
"""

from __future__ import annotations

from activities.tools.spec import ToolSet
from workflows.contract.inline_tools import EchoInput, EchoOutput, SumInput, SumOutput, add_up, echo_arguments

__all__ = ["TOOLS", "EchoInput", "EchoOutput", "SumInput", "SumOutput", "echo", "sum_values"]

TOOLS = ToolSet()


@TOOLS.tool("echo", local=True)
async def echo(args: EchoInput) -> EchoOutput:
    """Return the arguments unchanged (wiring checks and tests)."""
    return echo_arguments(args)


@TOOLS.tool("sum_values", local=True)
async def sum_values(args: SumInput) -> SumOutput:
    """Add up a list of numbers."""
    return add_up(args)
