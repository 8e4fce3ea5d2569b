"""`find_violation` on schema constraints: pattern, lengths and numeric bounds."""

from __future__ import annotations

from typing import Any

import pytest

from dsl import ir
from workflows.contract.output_validation import find_violation

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
SCHEMA = ir.Schema(name="plan", fields=[
    ir.SchemaField(name="flag_key", type="string", pattern=KEY_PATTERN, max_length=100),
    ir.SchemaField(name="title", type="string", min_length=1),
    ir.SchemaField(name="pct", type="float", min=0, max=100),
    ir.SchemaField(name="n", type="int", min=1),
    ir.SchemaField(name="tags", type="string[]", pattern="^[a-z]+$", max_length=5),
    ir.SchemaField(name="level", type="string", enum_values=["low", "high"], max_length=4),
])
GOOD: dict[str, Any] = {"flag_key": "ios-apple-pay_v2", "title": "t", "pct": 50, "n": 3, "tags": ["ab"],
                        "level": "low"}


def test_a_fitting_output_passes() -> None:
    assert find_violation(SCHEMA, GOOD) is None
    assert find_violation(SCHEMA, {**GOOD, "pct": 0, "n": 1.0, "tags": []}) is None  # bounds are inclusive
    assert find_violation(SCHEMA, {**GOOD, "flag_key": "k" * 100, "pct": 100.0}) is None


@pytest.mark.parametrize(("change", "field", "text"), [
    ({"flag_key": "my flag"}, "flag_key",
     "found string 'my flag', which does not match the pattern '^[A-Za-z0-9][A-Za-z0-9_-]*$'"),
    ({"flag_key": "-lead"}, "flag_key", "does not match the pattern"),
    ({"flag_key": "k" * 101}, "flag_key", "which is longer than 100 characters"),
    ({"title": ""}, "title", "found string '', which is shorter than 1 character"),
    ({"pct": 100.5}, "pct", "which is above the maximum 100"),
    ({"pct": -1}, "pct", "which is below the minimum 0"),
    ({"n": 0}, "n", "found int 0, which is below the minimum 1"),
    ({"tags": ["ok", "No k"]}, "tags", "found item string 'No k', which does not match the pattern '^[a-z]+$'"),
    ({"tags": ["toolong"]}, "tags", "item string 'toolong', which is longer than 5 characters"),
])
def test_a_broken_constraint_is_the_violation(change: dict[str, Any], field: str, text: str) -> None:
    violation = find_violation(SCHEMA, {**GOOD, **change})
    assert violation is not None and violation.field == field
    assert text in violation.describe(), violation.describe()


def test_the_expected_text_spells_the_constraints() -> None:
    violation = find_violation(SCHEMA, {**GOOD, "flag_key": "a b"})
    assert violation is not None
    assert violation.expected == "a string (matching '^[A-Za-z0-9][A-Za-z0-9_-]*$', at most 100 characters)"
    violation = find_violation(SCHEMA, {**GOOD, "pct": 200})
    assert violation is not None and violation.expected == "a number (between 0 and 100)"
    violation = find_violation(SCHEMA, {**GOOD, "tags": ["X"]})
    assert violation is not None and violation.expected == "a list of strings (each matching '^[a-z]+$', at most 5 characters)"


def test_type_errors_come_before_constraints_and_fields_in_schema_order() -> None:
    violation = find_violation(SCHEMA, {**GOOD, "flag_key": 12, "pct": 500})
    assert violation is not None and violation.field == "flag_key" and violation.found == "int 12"
    violation = find_violation(SCHEMA, {**GOOD, "title": "", "pct": 500})
    assert violation is not None and violation.field == "title"
    violation = find_violation(SCHEMA, {**GOOD, "level": "mid"})
    assert violation is not None and "not in the enum" in violation.found


def test_pattern_is_searched_as_in_json_schema() -> None:
    schema = ir.Schema(name="s", fields=[ir.SchemaField(name="x", type="string", pattern="[0-9]")])
    assert find_violation(schema, {"x": "abc1def"}) is None
    assert find_violation(schema, {"x": "abc"}) is not None


def test_an_invalid_pattern_in_a_hand_built_ir_does_not_crash() -> None:
    schema = ir.Schema(name="s", fields=[ir.SchemaField(name="x", type="string", pattern="[")])
    assert find_violation(schema, {"x": "anything"}) is None  # the compiler reports it (C113)


def test_a_missing_optional_field_is_not_checked() -> None:
    assert find_violation(SCHEMA, {k: v for k, v in GOOD.items() if k != "flag_key"}, optional={"flag_key"}) is None
