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


def test_answers_must_fit_the_field_constraints() -> None:
    schema = ir.Schema(name="s", fields=[
        ir.SchemaField(name="flag_key", type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=10),
        ir.SchemaField(name="pct", type="int", min=0, max=100),
        ir.SchemaField(name="share", type="float", min=0, max=1),
        ir.SchemaField(name="tags", type="string[]", min_length=2),
    ])
    good = {"flag_key": "new-key", "pct": "40", "share": "0.5", "tags": "ab, cd"}
    assert coerce_answers(schema, good, gate="g") == {"flag_key": "new-key", "pct": 40, "share": 0.5,
                                                      "tags": ["ab", "cd"]}
    with pytest.raises(AnswerError, match="field 'flag_key' expects string, matching .*'new key' does not match"):
        coerce_answers(schema, {**good, "flag_key": "new key"}, gate="g")
    with pytest.raises(AnswerError, match="is longer than 10 characters"):
        coerce_answers(schema, {**good, "flag_key": "k" * 11}, gate="g")
    with pytest.raises(AnswerError, match="field 'pct' expects int, between 0 and 100; 101 is above the maximum 100"):
        coerce_answers(schema, {**good, "pct": 101}, gate="g")
    with pytest.raises(AnswerError, match="below the minimum 0"):
        coerce_answers(schema, {**good, "share": "-0.1"}, gate="g")
    with pytest.raises(AnswerError, match="not a number"):
        coerce_answers(schema, {**good, "share": "nan"}, gate="g")
    with pytest.raises(AnswerError, match="each at least 2 characters; 'x' is shorter than 2 characters"):
        coerce_answers(schema, {**good, "tags": ["ab", "x"]}, gate="g")
    with pytest.raises(AnswerError, match="needs field 'pct' \\(int, between 0 and 100\\)"):
        coerce_answers(schema, {k: v for k, v in good.items() if k != "pct"}, gate="g")
