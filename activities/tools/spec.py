"""What a builtin tool is: an async function with a pydantic input and output model, plus the
metadata the tool catalog declares for it.

A tool module collects its tools in a `ToolSet` (``TOOLS = ToolSet()``, then ``@TOOLS.tool("name")``)
and imports nothing else of the tools package; the registry (`activities.tools.registry`)
assembles the sets, so no tool module depends on the registry that runs it.

Whether a tool is mutating and which of its arguments are bound (chosen by the run, never by a
model: see the registry's docstring) is declared once, in `workflows.contract.tool_catalog`; a
`Tool` takes both from there, so `iterloop validate` (which reads only the catalog) and the worker
cannot disagree. Registering a tool is one catalog line plus its function.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from workflows.contract.tool_catalog import BOUND_ARGUMENTS, BUILTIN_TOOLS, LOCAL_TOOLS

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
ToolFunction = Callable[[In], Awaitable[Out]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[BaseModel]]
    mutating: bool = False
    #: (argument, run var) pairs a model never sets (see `activities.tools.registry`); a tuple
    #: keeps the tool hashable, so the schema offered to models can be cached per tool.
    bound: tuple[tuple[str, str], ...] = ()
    #: Fast and free of side effects: a `call:` node may run it as a local activity (the catalog's
    #: `LOCAL_TOOLS`, which the workflow reads, says the same: `implementing` checks).
    local: bool = False

    @classmethod
    def implementing(cls, name: str, fn: Callable[[Any], Awaitable[BaseModel]], *, local: bool = False) -> Tool:
        """The catalog's tool ``name``, run by ``fn(args: InputModel) -> OutputModel``; its
        description is ``fn``'s docstring (what a model reads). ``local`` is the implementation's
        promise that it reads and writes nothing beyond its arguments and returns within moments."""
        if name not in BUILTIN_TOOLS:
            raise ValueError(f"builtin tool '{name}' is not in the tool catalog: add it to BUILTIN_TOOLS in "
                             "workflows/contract/tool_catalog.py")
        if local != (name in LOCAL_TOOLS):
            # Both say it: the implementation where its code is read for I/O, the catalog (with a patch
            # id) where the workflow decides; a disagreement would run a tool with I/O inside a workflow task.
            raise ValueError(f"builtin tool '{name}': declared with local={local}, but the tool catalog "
                             f"{'lists' if name in LOCAL_TOOLS else 'does not list'} it in LOCAL_TOOLS "
                             "(workflows/contract/tool_catalog.py); make the two agree")
        hints = inspect.get_annotations(fn, eval_str=True)
        params = list(inspect.signature(fn).parameters)
        input_model, output_model = hints[params[0]], hints["return"]
        bound = tuple(BOUND_ARGUMENTS.get(name, {}).items())
        unknown = [a for a, _ in bound if a not in input_model.model_fields]
        if unknown:
            raise ValueError(f"builtin tool '{name}': bound argument(s) {', '.join(unknown)} are not fields of "
                             f"{input_model.__name__}")
        return cls(name, inspect.getdoc(fn) or "", input_model, output_model, fn, BUILTIN_TOOLS[name], bound, local)

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    @property
    def bound_arguments(self) -> dict[str, str]:
        """Bound argument → the run var it comes from."""
        return dict(self.bound)

    @property
    def bound_vars(self) -> list[str]:
        """The run vars the workflow fills for a model's call (what `ToolInfo.bound` reports)."""
        return [var for _, var in self.bound]


class ToolSet:
    """The tools one module defines, in definition order."""

    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def tool(self, name: str, *, local: bool = False) -> Callable[[ToolFunction[In, Out]], ToolFunction[In, Out]]:
        """Add ``fn`` as the implementation of the catalog's tool ``name``; ``fn`` stays a plain
        function (tests and other tools can call it). ``local=True``: see `Tool.local`."""

        def add(fn: ToolFunction[In, Out]) -> ToolFunction[In, Out]:
            self.tools.append(Tool.implementing(name, fn, local=local))
            return fn

        return add
