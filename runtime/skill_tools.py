"""The builtin tool reference of the agent skill (references/builtin-tools.md), rendered from the
tools' own input and output models.

The arguments a `call:` node passes are validated by each tool's pydantic input model, so the
reference is rendered from those models' JSON Schemas (`workflows.contract.tool_docs`), never
written by hand: what the skill says a tool takes is what the tool accepts. The JSON Schema is
turned into short type phrases (`integer, 1–366`, `list of string`, `"relative" | "absolute"`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from runtime.skill_reference import GENERATED_NOTE
from workflows.contract.tool_docs import BuiltinToolSchema

Schema = dict[str, Any]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _bounds(schema: Schema) -> str:
    """Numeric and length limits as a short phrase (``≥ 1, ≤ 366``)."""
    parts = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "minLength" in schema:
        parts.append(f"at least {schema['minLength']} character(s)")
    if "maxLength" in schema:
        parts.append(f"at most {schema['maxLength']} characters")
    if "minItems" in schema:
        parts.append(f"at least {schema['minItems']} items")
    if "maxItems" in schema:
        parts.append(f"at most {schema['maxItems']} items")
    return ", ".join(parts)


def describe(schema: Schema, defs: Schema) -> str:
    """A JSON Schema as a short phrase an author of a `with` mapping understands."""
    if "$ref" in schema:
        target = defs.get(_ref_name(schema["$ref"]), {})
        if "enum" in target:
            return describe(target, defs)
        fields = ", ".join(target.get("properties", {}))
        return f"object {{{fields}}}" if fields else "object"
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema or "oneOf" in schema:
        options = [s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"]
        nullable = len(options) < len(schema.get("anyOf", schema.get("oneOf", [])))
        text = " or ".join(describe(s, defs) for s in options)
        return f"{text} (or null)" if nullable else text
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"list of {describe(schema.get('items', {}), defs)}"
    elif kind == "object":
        extra = schema.get("additionalProperties")
        text = f"object of {describe(extra, defs)}" if isinstance(extra, dict) and extra else "object"
    else:
        text = {"integer": "integer", "number": "number", "boolean": "bool", "string": "string"}.get(kind, str(kind))
        if "format" in schema:
            text += f" ({schema['format']})"
    bounds = _bounds(schema)
    return f"{text}, {bounds}" if bounds else text


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _argument_rows(tool: BuiltinToolSchema) -> Iterable[str]:
    schema = tool.input_schema
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    properties: Schema = schema.get("properties", {})
    if not properties:
        yield "| *(any keys)* | any | | The arguments are free-form. |"
        return
    for name, prop in properties.items():
        if name in tool.bound_arguments:
            need = f"bound: run var `{tool.bound_arguments[name]}`"
        elif name in required:
            need = "**required**"
        elif "default" in prop:
            need = f"default `{json.dumps(prop['default'])}`"
        else:
            need = "optional"
        yield f"| `{name}` | {describe(prop, defs)} | {need} | {_one_line(prop.get('description', ''))} |"


def _output_rows(tool: BuiltinToolSchema) -> Iterable[str]:
    schema = tool.output_schema
    defs = schema.get("$defs", {})
    properties: Schema = schema.get("properties", {})
    if not properties:
        yield "| *(the arguments)* | any | |"
        return
    for name, prop in properties.items():
        yield f"| `{name}` | {describe(prop, defs)} | {_one_line(prop.get('description', ''))} |"


INTRO = """\
# Builtin tools

Source: the input and output models of `activities/tools/` (via `iterloop skill generate`).

A builtin tool runs as a `tool` node with `call: NAME`, or is offered to a model with `tools: [NAME]`
on an agent. In a `call:` node the arguments are the `with` mapping of the edge leading into the
node (the entry node gets the run's input). A `with` value that is exactly one reference keeps its
type (`results: "{{outputs.fetch}}"` passes an object); anything else is text. Declare the output
fields later nodes read in the node's `output:` schema (`{{outputs.NODE.FIELD}}` is checked
against it, C031). A tool checks its arguments when it runs: an unknown key is ignored, a missing
or mistyped one fails the node.

**Bound arguments** (`connector`, `provider`) choose infrastructure, so a model never sets them.
In a `call:` node pass them in `with` from a `json` var (`connector: "{{vars.connector}}"`); left
out, they default to the mock connector and the local flag store. When an agent calls such a tool,
the run fills them from the run var named in the table: declare that var in the workflow.

A `call:` naming no builtin tool is C105. Mutating tools are never offered to a `readonly` agent.
"""


def tools_reference(tools: list[BuiltinToolSchema]) -> str:
    """references/builtin-tools.md: a summary, then every tool's arguments and output fields."""
    lines = [GENERATED_NOTE, "", INTRO, "| Tool | Changes something | What it does |", "|---|---|---|"]
    for tool in tools:
        summary = _one_line(tool.description.split("\n\n")[0])
        lines.append(f"| `{tool.name}` | {'yes' if tool.mutating else 'no'} | {summary} |")
    lines.append("")
    for tool in tools:
        lines += [f"## `{tool.name}`", "", _one_line(tool.description) or "(no description)", ""]
        lines += ["Arguments:", "", "| Argument | Type | Required / default | Meaning |", "|---|---|---|---|"]
        lines += list(_argument_rows(tool))
        lines += ["", "Output fields:", "", "| Field | Type | Meaning |", "|---|---|---|"]
        lines += list(_output_rows(tool))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
