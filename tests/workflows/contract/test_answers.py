"""Checking a gate's answers against its schema."""

from __future__ import annotations

import pytest

from dsl import ir
from workflows.contract.answers import AnswerError, already_answered, coerce_answers, not_open, opening_number


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


def test_refusals_name_the_opening_who_answered_it_and_how_to_answer_in_advance() -> None:
    assert opening_number("run-1:approval:3") == "3" and opening_number("odd") == "'odd'"
    assert already_answered("approval", "run-1:approval:3", "ada", "T1").startswith(
        "gate 'approval' opening 3 was already answered by ada at T1")
    closed = not_open("approval", "run-1", last_id="run-1:approval:2", last_by="ada", last_at="T1")
    assert "its last opening 2 was already answered by ada at T1" in closed
    assert "iterloop answer run-1 --gate approval --in-advance" in closed and '"in_advance": true' in closed
    assert "has not opened yet" in not_open("approval", "run-1")
