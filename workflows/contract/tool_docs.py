"""A builtin tool described for documentation: its name, what it does, and its arguments and result
as JSON Schema.

The tools live in the activities (`activities/tools/`), whose input and output models are the
truth about what a `call:` node passes and gets back; the agent skill's tool reference is rendered
by the runtime (`runtime/skill_tools.py`), which may not import the activities. This model is what
passes between them: `activities.tools.registry.tool_schemas()` builds it, `iterloop skill
generate` (cli.py) hands it to the renderer. Never part of a run's payloads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class BuiltinToolSchema(BaseModel):
    """One builtin tool: ``input_schema`` and ``output_schema`` are its pydantic models' JSON Schemas;
    ``bound_arguments`` maps each argument the run chooses (never a model) to its run var."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    mutating: bool
    bound_arguments: dict[str, str] = {}
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
