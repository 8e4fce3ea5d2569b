"""The builtin tools pure enough to be evaluated inside the workflow, with no activity at all.

`echo` and `sum_values` read nothing and write nothing beyond their arguments, take microseconds
and give the same answer for the same arguments on every machine, so a `call:` node of one of
them is computed in the workflow task itself (`workflows/nodes/tool.py`): a replay recomputes the
same value, which makes it as durable as a recorded activity result. The functions and the
pydantic models live here, in a module the workflow sandbox passes through, and the registered
tools (`activities/tools/builtins.py`) call these same functions with these same models, so the
activity and the workflow can never compute two different things.

The activity path does more than call the function, and `evaluate` refuses (returns None, and the
node takes its activity as before) whenever that "more" would show:

- arguments the input model rejects: the activity raises the `BadRequest` a user knows, with its
  message redacted of the worker's secrets, which only the worker can do;
- an output over the run's offload threshold: the activity writes it to the artifact store (I/O);
- an output holding text the activity's redaction would change (secret-shaped text: a URL with
  credentials, `token=…`, `"password": "…"`, an Authorization header), or iterloop's reserved
  keys, which the activity refuses;
- an output holding a non-finite number (`sum_values` of `"1e999"`): JSON has none, and the data
  converter that carries an activity's result writes it as null.

Replay runs this code again, so it is part of the workflow's determinism: changing what a function
returns or when `evaluate` refuses changes what a recorded run did (an output, or an activity in
place of none). Such a change needs a new patch id in `INLINE_TOOLS` and the old behaviour kept
for runs without it, like any change to the interpreter's commands.

Which tools are listed, and under which `workflow.patched` id, is the catalog's `INLINE_TOOLS`
(`workflows/contract/tool_catalog.py`); `INLINE_FUNCTIONS` here must name the same tools (checked
by tests/workflows/test_inline_tools.py). Pure module: no I/O, no mutable module state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.contract.artifact_refs import RESERVED_KEYS


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="allow")


class EchoOutput(BaseModel):
    model_config = ConfigDict(extra="allow")


def echo_arguments(args: EchoInput) -> EchoOutput:
    """Return the arguments unchanged (wiring checks and tests)."""
    return EchoOutput(**(args.model_extra or {}))


class SumInput(BaseModel):
    values: list[float] = Field(description="Numbers to add up")


class SumOutput(BaseModel):
    total: float
    count: int


def add_up(args: SumInput) -> SumOutput:
    """Add up a list of numbers."""
    return SumOutput(total=sum(args.values), count=len(args.values))


@dataclass(frozen=True)
class InlineTool:
    """One pure tool: its input model and the function the activity runs too."""

    input_model: type[BaseModel]
    fn: Callable[[Any], BaseModel]


#: Tool name → its pure implementation (the same keys as `tool_catalog.INLINE_TOOLS`).
INLINE_FUNCTIONS: dict[str, InlineTool] = {
    "echo": InlineTool(EchoInput, echo_arguments),
    "sum_values": InlineTool(SumInput, add_up),
}


def output_bytes(output: dict[str, Any]) -> int:
    """The size the activity compares with the offload threshold: the same JSON encoding as
    `activities.artifacts` (sorted keys, no spaces, UTF-8)."""
    return len(json.dumps(output, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def evaluate(tool: str, arguments: dict[str, Any], offload_threshold_bytes: int) -> dict[str, Any] | None:
    """Tool ``tool``'s output for ``arguments`` as the activity would return it (its JSON dump),
    or None when only the activity can give the right answer (see the module docstring)."""
    entry = INLINE_FUNCTIONS[tool]
    try:
        args = entry.input_model.model_validate(arguments)
    except ValidationError:
        return None  # the activity raises the BadRequest, with its message as users know it
    output = entry.fn(args).model_dump(mode="json")
    if 0 < offload_threshold_bytes < output_bytes(output):
        return None
    if not plain(output):
        return None
    return output


#: Text holding any of these might be changed by the activity's redaction of secret-shaped text
#: (`activities.redaction.redact_shapes`: URL userinfo, `name=value`, JSON members, Authorization).
_SHAPE_SIGNS = ("://", "=", '"', "authorization")


def plain(value: Any) -> bool:
    """Whether ``value`` holds no reserved key, no non-finite number and no text that secret-shape
    redaction could touch (a conservative test: a string with `=` in it goes to the activity even
    when harmless)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if RESERVED_KEYS.intersection(item):
                return False
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return False
        elif isinstance(item, str):
            lowered = item.lower()
            if any(sign in lowered for sign in _SHAPE_SIGNS):
                return False
    return True
