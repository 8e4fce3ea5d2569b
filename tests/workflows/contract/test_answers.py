"""Checking a gate's answers against its schema."""

from __future__ import annotations

import pytest

from dsl import ir
from workflows.contract.answers import AnswerError, coerce_answers


def test_answers_are_coerced_and_validated() -> None:
    schema = ir.Schema(name="s", fields=[ir.SchemaField(name="approved", type="bool"),
                                        ir.SchemaField(name="level", type="string", enum_values=["low", "high"]),
                                        ir.SchemaField(name="n", type="int")])
    assert coerce_answers(schema, {"approved": "yes", "level": "high", "n": "4"}, gate="g") == {
        "approved": True, "level": "high", "n": 4}
    with pytest.raises(AnswerError, match="needs field 'n'"):
        coerce_answers(schema, {"approved": True, "level": "low"}, gate="g")
    with pytest.raises(AnswerError, match="one of low, high"):
        coerce_answers(schema, {"approved": True, "level": "mid", "n": 1}, gate="g")
    with pytest.raises(AnswerError, match="no field 'aproved'"):
        coerce_answers(schema, {"aproved": True, "level": "low", "n": 1}, gate="g")
