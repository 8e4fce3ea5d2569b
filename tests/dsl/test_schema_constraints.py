"""Schema field constraints: `[pattern: "…"]`, `[min_length: N]`, `[max_length: N]`, `[min: X]`, `[max: X]`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import dsl
from dsl import ast as A
from dsl import ir
from dsl.parser import parse
from dsl.unparse import format_source

ROOT = Path(__file__).resolve().parents[2]
AGENT_W = 'agent a:\n  model: "m"\n  output: s\nworkflow w:\n  entry: a\n  a -> done\n'

CONSTRAINED = textwrap.dedent('''\
    schema s:
      key: string [pattern: "^[A-Za-z0-9][A-Za-z0-9_-]*$"] [max_length: 100]
      title: string [min_length: 1] [max_length: 80]
      pct: float [min: 0] [max: 100]
      delta: float [min: -0.5] [max: 0.5]
      n: int [min: -3]
      tags: string[] [min_length: 1] [pattern: "^[a-z]+$"]
      level: string [enum: "low", "high"] [max_length: 4]
    ''') + AGENT_W


def codes(source: str) -> list[str]:
    return [d.code for d in dsl.check_source(source).diagnostics]


def test_parser_reads_each_constraint_with_its_value_type() -> None:
    tree, diags = parse(CONSTRAINED)
    assert diags == []
    [schema] = tree.of_type(A.SchemaDecl)
    got = {f.name: (f.enum_values, f.constraints) for f in schema.fields}
    assert got == {
        "key": (None, {"pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$", "max_length": 100}),
        "title": (None, {"min_length": 1, "max_length": 80}),
        "pct": (None, {"min": 0, "max": 100}),
        "delta": (None, {"min": -0.5, "max": 0.5}),
        "n": (None, {"min": -3}),
        "tags": (None, {"min_length": 1, "pattern": "^[a-z]+$"}),
        "level": (["low", "high"], {"max_length": 4}),
    }
    assert isinstance(got["pct"][1]["min"], int) and isinstance(got["delta"][1]["min"], float)


def test_compiled_ir_carries_the_constraints_and_they_survive_json() -> None:
    result = dsl.check_source(CONSTRAINED)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    s = result.workflow.schemas["s"]
    key = s.field("key")
    assert key is not None and key.pattern == "^[A-Za-z0-9][A-Za-z0-9_-]*$" and key.max_length == 100
    assert s.field("pct").constraints() == {"min": 0, "max": 100}  # type: ignore[union-attr]
    again = ir.Workflow.model_validate_json(result.workflow.to_json())
    assert again == result.workflow
    assert again.compute_hash() == result.workflow.content_hash


def test_fields_without_constraints_keep_their_ir_json() -> None:
    """No new keys for unconstrained fields: older IRs decode and existing content hashes hold."""
    f = ir.SchemaField(name="x", type="string", enum_values=["a"])
    assert f.model_dump(mode="json") == {"name": "x", "type": "string", "enum_values": ["a"]}
    assert json.loads(f.model_dump_json()) == {"name": "x", "type": "string", "enum_values": ["a"]}
    assert ir.SchemaField.model_validate({"name": "x", "type": "int", "enum_values": None}).constraints() == {}
    result = dsl.check_source((ROOT / "examples/iterion/loop_with_judge.iter").read_text())
    assert result.workflow is not None
    assert all(set(f) == {"name", "type", "enum_values"}
               for s in result.workflow.model_dump(mode="json")["schemas"].values() for f in s["fields"])


def test_format_round_trips_constraints() -> None:
    out = format_source(CONSTRAINED)
    assert '  key: string [pattern: "^[A-Za-z0-9][A-Za-z0-9_-]*$"] [max_length: 100]\n' in out
    assert "  delta: float [min: -0.5] [max: 0.5]\n" in out
    assert '  level: string [enum: "low", "high"] [max_length: 4]\n' in out
    assert format_source(out) == out
    before, after = dsl.check_source(CONSTRAINED), dsl.check_source(out)
    assert before.workflow is not None and after.workflow is not None
    assert before.workflow.content_hash == after.workflow.content_hash


def test_format_puts_the_enum_first_and_keeps_backslashes_raw() -> None:
    source = 'schema s:\n  v: string [max_length: 3] [enum: "ab", "c"]\n  d: string [pattern: "^\\d+$"]\n' + AGENT_W
    out = format_source(source)
    assert '  v: string [enum: "ab", "c"] [max_length: 3]\n' in out
    assert '  d: string [pattern: "^\\d+$"]\n' in out
    result = dsl.check_source(out)
    assert result.workflow is not None and result.workflow.schemas["s"].field("d").pattern == "^\\d+$"  # type: ignore[union-attr]


@pytest.mark.parametrize(("field", "code", "message"), [
    ("ok: bool [min: 1]", "C112", "'min' applies to int or float fields; field 'ok' of schema 's' is bool"),
    ("n: int [pattern: \"x\"]", "C112", "'pattern' applies to string or string[] fields"),
    ("j: json [max_length: 3]", "C112", "is json"),
    ('k: string [pattern: "^[a-"]', "C113", "invalid pattern for field 'k' of schema 's'"),
    ("n: float [min: 2.5] [max: 1]", "C114", "min 2.5 above max 1"),
    ("k: string [min_length: 5] [max_length: 2]", "C114", "min_length 5 above max_length 2"),
    ('v: string [enum: "ok", "Bad"] [pattern: "^[a-z]+$"]', "C115", "enum value 'Bad'"),
    ('v: string[] [enum: "ok", "toolong"] [max_length: 3]', "C115", "is longer than 3 characters"),
])
def test_constraint_diagnostics(field: str, code: str, message: str) -> None:
    result = dsl.check_source(f"schema s:\n  {field}\n" + AGENT_W)
    hits = [d for d in result.diagnostics if d.code == code]
    assert hits and message in hits[0].message, [d.render() for d in result.diagnostics]
    assert not result.ok


def test_equal_bounds_and_fitting_enums_are_fine() -> None:
    src = 'schema s:\n  n: int [min: 3] [max: 3]\n  v: string [enum: "ab", "cd"] [pattern: "^[a-z]{2}$"]\n' + AGENT_W
    assert dsl.check_source(src).ok


@pytest.mark.parametrize(("field", "message"), [
    ('x: string [foo: 1]', "expected one of enum, pattern, min_length, max_length, min, max after '['"),
    ('x: string [pattern: 3]', "expected a string for 'pattern' of field 'x'"),
    ('x: string [max_length: "3"]', "expected an integer for 'max_length' of field 'x'"),
    ('x: string [max_length: 1.5]', "expected an integer for 'max_length' of field 'x'"),
    ('x: int [min: "a"]', "expected a number for 'min' of field 'x'"),
    ('x: string [min_length: -1]', "must not be negative"),
    ('x: string [max_length: 3, min_length: 1]', "expected ']' after 'max_length' of field 'x'"),
    ('x: string [pattern: "a"] [pattern: "b"]', "field 'x' has 'pattern' twice"),
    ('x: string [enum: "a"] [enum: "b"]', "field 'x' has 'enum' twice"),
])
def test_constraint_syntax_errors(field: str, message: str) -> None:
    _, diags = parse(f"schema s:\n  {field}\n" + AGENT_W)
    assert any(message in d.message for d in diags), [d.render() for d in diags]
    assert all(d.line == 2 for d in diags), [d.render() for d in diags]

