"""Checking a model's output object against a node's output schema.

The check is a pydantic model built from the schema (`output_model`): `string` → str (a `Literal`
of its values when the field has an enum), `bool` → bool, `int` → an integer (a float with an
integral value is accepted, as a JSON number), `float` → a number, `json` → any JSON value,
`string[]` → a list of strings (each in the enum when there is one). A field's constraints
(`pattern`, `min_length`, `max_length` on strings and each string[] item; `min`, `max` on numbers)
are checked once the type fits. Nothing is coerced: `"12"` is not an int. Every field is required; extra keys are allowed (runtime keys such as `_session_id`
ride along).

The first failing field (in schema order) becomes a `Violation` — field, what was expected,
what was found — which real providers turn into the reason of an `invalid` turn (quoted in the
repair request) and the scripted provider into a script error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    ValidationError,
    create_model,
)

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
    """The first field (in schema order) whose value does not match, or None if all match.
    Fields named in ``optional`` may be missing (but are checked when present)."""
    if schema is not None and schema.fields:
        model = output_model(schema, frozenset(optional))
        try:
            model.model_validate(output)
        except ValidationError as exc:
            return _violation(schema, output, exc.errors()[0])
    for key, value in output.items():  # extra keys are allowed, but must survive the JSON payload
        if not _is_json(value):
            return Violation(key, "a JSON value", describe_value(value))
    return None


def _integral(value: int | float) -> int | float:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not an integral number")
    return value


_StrictFloat = Annotated[float, Strict(), AllowInfNan(False)]
_INT = Annotated[Annotated[int, Strict()] | _StrictFloat, AfterValidator(_integral)]
_FLOAT = Annotated[int, Strict()] | _StrictFloat


class _ConstraintError(ValueError):
    """A value of the right type that breaks one of the field's constraints (pattern, lengths, bounds)."""


def _constrained(f: SchemaField) -> AfterValidator:
    def check(value: Any) -> Any:
        problem = f.constraint_problem(value)
        if problem:
            raise _ConstraintError(problem)
        return value
    return AfterValidator(check)


def _field_type(f: SchemaField) -> Any:
    item: Any = Annotated[str, Strict()]
    if f.enum_values:
        item = Literal[tuple(f.enum_values)]  # type: ignore[valid-type]
    checked = bool(f.constraints())
    if checked and f.type in ("string", "string[]"):
        item = Annotated[item, _constrained(f)]
    if f.type == "string":
        return item
    if f.type == "string[]":
        return Annotated[list[item], Strict()]  # type: ignore[valid-type]
    base = {"bool": Annotated[bool, Strict()], "int": _INT, "float": _FLOAT, "json": JsonValue}[f.type]
    if checked and f.type in ("int", "float"):
        return Annotated[base, _constrained(f)]
    return base


@lru_cache(maxsize=256)
def _cached_model(schema_json: str, optional: frozenset[str]) -> type[BaseModel]:
    schema = Schema.model_validate_json(schema_json)
    fields: dict[str, Any] = {}
    for i, f in enumerate(schema.fields):
        # Python names are positional (`f0`, `f1`…) and the schema's names are aliases, so any
        # field name works, even one that shadows a BaseModel attribute (`json`, `schema`…).
        default = None if f.name in optional else ...
        fields[f"f{i}"] = (_field_type(f), Field(default, alias=f.name))
    return create_model(f"Output_{_safe_name(schema.name)}", __config__=ConfigDict(extra="allow"), **fields)


def output_model(schema: Schema, optional: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The pydantic model that validates outputs of ``schema`` (cached per schema)."""
    return _cached_model(schema.model_dump_json(), optional)


def _violation(schema: Schema, output: dict[str, Any], error: Any) -> Violation:
    loc = error.get("loc") or ("?",)
    name = str(loc[0])
    f = schema.field(name)
    if f is None:  # cannot happen: errors are reported for schema fields only
        return Violation(name, "a valid value", describe_value(error.get("input")))
    if error.get("type") == "missing":
        found = "nothing (the key is missing)"
    elif error.get("type") == "literal_error":
        found = (f"item {describe_value(error.get('input'))} (not in the enum)" if len(loc) > 1
                 else f"{describe_value(output.get(name))} (not in the enum)")
    elif isinstance((error.get("ctx") or {}).get("error"), _ConstraintError):
        problem = str(error["ctx"]["error"])
        found = (f"item {describe_value(error.get('input'))}, which {problem}" if len(loc) > 1
                 else f"{describe_value(output.get(name))}, which {problem}")
    else:
        found = describe_value(output.get(name))
    return Violation(name, expected_text(f), found)


def expected_text(f: SchemaField) -> str:
    kind = {"string": "a string", "bool": "a bool (true/false)", "int": "an int", "float": "a number",
            "json": "any JSON value", "string[]": "a list of strings"}[f.type]
    if f.enum_values:
        kind += " (one of " + ", ".join(repr(v) for v in f.enum_values) + ")"
    constraints = f.constraint_text()
    if constraints:
        kind += (" (each " if f.type == "string[]" else " (") + constraints + ")"
    return kind


def describe_value(value: Any) -> str:
    names = {str: "string", bool: "bool", int: "int", float: "float", list: "list", dict: "object"}
    if value is None:
        return "null"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {shown}"


def parse_json_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object a model wrote in ``text``, or None and what is wrong with the text.

    Three readings, in order: the whole reply (surrounding whitespace aside) is a JSON object; the
    whole reply is one Markdown code fence holding one; else the object that starts at the reply's
    first `{`, whatever prose comes before or after it. Only that first `{` is tried: a brace in
    the prose before the object, or an object that is cut off, is reported with the JSON parser's
    message (which the repair request quotes). JSON that is not an object is refused as such.
    """
    stripped = text.strip()
    if not stripped:
        return None, "the reply is empty; expected a JSON object"
    fenced = re.fullmatch(r"```[A-Za-z0-9_-]*\s*(.*?)\s*```", stripped, re.S)
    if fenced:
        stripped = fenced.group(1)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as first:
        start = stripped.find("{")
        if start < 0:
            return None, f"the reply is not valid JSON ({first.msg} at line {first.lineno} column {first.colno})"
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped, start)
        except json.JSONDecodeError as e:
            return None, f"the reply is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    if not isinstance(value, dict):
        return None, f"the reply is JSON but not an object: found {describe_value(value)}"
    return value, ""


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "output"


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
