"""General-purpose builtin tools (wiring checks, tests). The growth-experimentation tools live in
the domain modules beside this one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from activities.tools.spec import ToolSet

TOOLS = ToolSet()


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="allow")


class EchoOutput(BaseModel):
    model_config = ConfigDict(extra="allow")


@TOOLS.tool("echo")
async def echo(args: EchoInput) -> EchoOutput:
    """Return the arguments unchanged (wiring checks and tests)."""
    return EchoOutput(**(args.model_extra or {}))


class SumInput(BaseModel):
    values: list[float] = Field(description="Numbers to add up")


class SumOutput(BaseModel):
    total: float
    count: int


@TOOLS.tool("sum_values")
async def sum_values(args: SumInput) -> SumOutput:
    """Add up a list of numbers."""
    return SumOutput(total=sum(args.values), count=len(args.values))
