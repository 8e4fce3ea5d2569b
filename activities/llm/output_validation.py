"""Checking a model's output object against a node's output schema.

Shared by every provider: the scripted provider reports a violation as a script error, real
providers will report it as a schema violation after their repair attempts. Every field of the
schema is required; extra keys are allowed (runtime keys such as `_session_id` ride along).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from dsl.ir import Schema, SchemaField


@dataclass(frozen=True)
class Violation:
    """One field that does not match: what the schema expects and what the output holds."""

    field: str
    expected: str
    found: str

    def describe(self) -> str:
        return f"field '{self.field}' expected {self.expected}, found {self.found}"


def find_violation(schema: Schema | None, output: dict[str, Any], *,
                   optional: Collection[str] = ()) -> Violation | None:
    """The first field (in schema order) whose value does not match, or None if all match."""
    for f in schema.fields if schema else []:
        if f.name not in output:
            if f.name in optional:
                continue
            return Violation(f.name, expected_text(f), "nothing (the key is missing)")
        problem = _value_problem(f, output[f.name])
        if problem is not None:
            return Violation(f.name, expected_text(f), problem)
    for key, value in output.items():  # extra keys are allowed, but must survive the JSON payload
        if not _is_json(value):
            return Violation(key, "a JSON value", describe_value(value))
    return None


def expected_text(f: SchemaField) -> str:
    kind = {"string": "a string", "bool": "a bool (true/false)", "int": "an int", "float": "a number",
            "json": "any JSON value", "string[]": "a list of strings"}[f.type]
    if f.enum_values:
        kind += " (one of " + ", ".join(repr(v) for v in f.enum_values) + ")"
    return kind


def describe_value(value: Any) -> str:
    names = {str: "string", bool: "bool", int: "int", float: "float", list: "list", dict: "object"}
    if value is None:
        return "null"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {shown}"


def _value_problem(f: SchemaField, value: Any) -> str | None:
    """None if ``value`` fits field ``f``, else a description of what was found."""
    if f.type == "string":
        ok = isinstance(value, str)
    elif f.type == "bool":
        ok = isinstance(value, bool)
    elif f.type == "int":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    elif f.type == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif f.type == "string[]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # json
        ok = _is_json(value)
    if not ok:
        return describe_value(value)
    if f.enum_values:
        items = value if isinstance(value, list) else [value]
        outside = [v for v in items if v not in f.enum_values]
        if outside:
            if f.type == "string[]":
                return f"item {describe_value(outside[0])} (not in the enum)"
            return f"{describe_value(value)} (not in the enum)"
    return None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
