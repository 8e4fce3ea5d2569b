"""A schema's field constraints reach the JSON Schema handed to providers."""

from __future__ import annotations

from activities.llm.structured_output import answer_spec, strict_json_schema
from dsl import ir

SCHEMA = ir.Schema(name="plan", fields=[
    ir.SchemaField(name="flag_key", type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=100),
    ir.SchemaField(name="pct", type="int", min=0, max=100),
    ir.SchemaField(name="share", type="float", min=0.5),
    ir.SchemaField(name="tags", type="string[]", enum_values=["a", "bb"], min_length=1),
    ir.SchemaField(name="note", type="string"),
])


def test_constraints_become_json_schema_keywords() -> None:
    props = answer_spec(SCHEMA).json_schema["properties"]
    assert props["flag_key"] == {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]*$", "maxLength": 100}
    assert props["pct"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert props["share"] == {"type": "number", "minimum": 0.5}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "bb"], "minLength": 1}}
    assert props["note"] == {"type": "string"}


def test_the_strict_form_still_states_them() -> None:
    strict = strict_json_schema(answer_spec(SCHEMA).json_schema)
    assert strict is not None
    text = str(strict["properties"]["flag_key"])
    assert "^[A-Za-z0-9][A-Za-z0-9_-]*$" in text and "100" in text
