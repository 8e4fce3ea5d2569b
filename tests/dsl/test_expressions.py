"""The expression language of compute nodes and `when "…"` edges: parsing, evaluation, limits."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl import expressions as X
from dsl.expressions import ExpressionError, Scope, evaluate, evaluate_source, parse

SCOPE = Scope(
    vars={"n": 3, "target": 0.02},
    input={"approved": True, "family": "claude", "blockers": ["a", "b"], "score": 7.5},
    outputs={"analyst": {"lift": 0.031, "srm": False, "segments": {"eu": 2, "us": 5}}},
    loop={"review": {"iteration": 2, "max": 5, "previous_output": {"approved": True, "family": "gpt"}}},
    run={"id": "run-1", "elapsed_seconds": 12.5, "cost_usd": 0.25, "tokens": 900},
)


@pytest.mark.parametrize(("source", "value"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("6 / 2", 3),
    ("7 % 3", 1),
    ("-vars.n + 1", -2),
    ("'a' + 'b'", "ab"),
    ("[1] + [2, 3]", [1, 2, 3]),
    ("outputs.analyst.lift > vars.target && !outputs.analyst.srm", True),
    ("input.approved and not outputs.analyst.srm", True),
    ("input.family == 'claude' || false", True),
    ("1 == 1.0", True),
    ("true == 1", False),
    ("input.nothing == null", True),
    ("outputs.analyst.segments['us']", 5),
    ("input.blockers[1]", "b"),
    ("input.blockers[9]", None),
    ("{a: 1, 'b c': [true]}", {"a": 1, "b c": [True]}),
    ("loop.review.iteration < loop.review.max", True),
    ("loop.review.previous_output.family != input.family", True),
    ("run.id", "run-1"),
    ("run.elapsed_seconds > 10 && run.tokens == 900", True),
])
def test_operators_and_references_evaluate(source: str, value: Any) -> None:
    assert evaluate_source(source, SCOPE) == value


@pytest.mark.parametrize(("source", "value"), [
    ("length(input.blockers)", 2),
    ("length('abc')", 3),
    ("length(input.nothing)", 0),
    ("concat(input.blockers, ['c'])", ["a", "b", "c"]),
    ("concat('a', 'b', 'c')", "abc"),
    ("concat(input.nothing, [1])", [1]),
    ("unique([1, 2, 1, 2.0, 'x', 'x'])", [1, 2, "x"]),
    ("contains(input.blockers, 'b')", True),
    ("contains('hello', 'ell')", True),
    ("contains(outputs.analyst.segments, 'eu')", True),
    ("join(input.blockers, '+')", "a+b"),
    ("join([1, true, null])", "1,true,null"),
    ("if(input.approved, 'yes', 1 / 0)", "yes"),
    ("map([1, 2, 3], item * 10)", [10, 20, 30]),
    ("filter([1, 2, 3, 4], item % 2 == 0)", [2, 4]),
    ("map([{v: 1}, {v: 2}], item.v)", [1, 2]),
    ("sum([1, 2.5])", 3.5),
    ("min(3, 1, 2)", 1),
    ("max([1, 9, 3])", 9),
    ("max([])", None),
    ("min(['b', 'a'])", "a"),
    ("round(2.567, 2)", 2.57),
    ("round(2.5)", 2),
    ("floor(-1.5)", -2),
    ("ceil(1.2)", 2),
    ("abs(-4)", 4),
    ("keys(outputs.analyst.segments)", ["eu", "us"]),
    ("values(outputs.analyst.segments)", [2, 5]),
    ("sort([3, 1, 2])", [1, 2, 3]),
    ("slice([1, 2, 3, 4], 1, 3)", [2, 3]),
    ("flatten([[1], 2, [3, 4]])", [1, 2, 3, 4]),
    ("tail([1, 2, 3])", [2, 3]),
    ("first(input.blockers)", "a"),
    ("last(input.blockers)", "b"),
    ("lower('AbC') + upper('x')", "abcX"),
    ("default(input.nothing, 5)", 5),
])
def test_functions_evaluate(source: str, value: Any) -> None:
    assert evaluate_source(source, SCOPE) == value


def test_bare_names_read_the_edge_sources_output_in_conditions() -> None:
    scope = Scope(fields={"approved": False, "family": "gpt", "blockers": ["x"]})
    source = "!approved && family == 'gpt' && length(blockers) > 0"
    assert evaluate_source(source, scope, bare_fields=True) is True


def test_strings_false_no_and_zero_are_falsy_as_in_iterion() -> None:
    for text in ("false", "no", "0", ""):
        assert evaluate_source("!input.v", Scope(input={"v": text})) is True
    assert evaluate_source("!input.v", Scope(input={"v": "yes"})) is False


@pytest.mark.parametrize(("source", "kind", "offset", "words"), [
    ("1 +", "syntax", 3, "expected a value"),
    ("'abc", "syntax", 0, "unterminated string"),
    ("1 2", "syntax", 2, "after a complete expression"),
    ("lenght(input.x)", "function", 0, "did you mean 'length'"),
    ("contains(input.x)", "function", 0, "contains() takes 2 arguments, got 1"),
    ("if(true, 1)", "function", 0, "if() takes 3 arguments"),
    ("1 + foo.bar", "reference", 4, "unknown reference 'foo.bar'"),
    ("loop.review.count", "reference", 0, "iteration, max, previous_output"),
    ("run.owner", "reference", 0, "unknown run field 'owner'"),
    ("vars", "reference", 0, "needs a field"),
    ("item.x", "reference", 0, "unknown reference"),  # item only inside map/filter
    ("99999999999999999999", "syntax", 0, "too large"),
])
def test_compile_errors_say_what_and_where(source: str, kind: str, offset: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    assert (caught.value.kind, caught.value.offset) == (kind, offset)
    assert words in caught.value.message


@pytest.mark.parametrize(("source", "words"), [
    ("1 / 0", "division by zero"),
    ("'a' < 1", "cannot compare string 'a' < int 1"),
    ("-'x'", "cannot negate string"),
    ("length(5)", "length() expects a string, list or object, got int 5"),
    ("sum(['a'])", "sum() expects numbers, got string 'a'"),
    ("input.score * 'x'", "cannot apply '*' to float 7.5 and string 'x'"),
    ("round(1.5, 99)", "digits must be an integer from 0 to 15"),
    ("1e308 * 10", "not a finite number"),
    ("9223372036854775807 + 1", "outside the 64-bit range"),
])
def test_runtime_errors_name_the_expression_and_the_value(source: str, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate_source(source, SCOPE)
    assert words in caught.value.message and repr(source) in caught.value.message


def test_limits_stop_runaway_expressions() -> None:
    big = Scope(input={"xs": list(range(X.MAX_ITEMS))})
    with pytest.raises(ExpressionError, match="exceeds the limit"):
        evaluate_source("input.xs + input.xs", big)
    with pytest.raises(ExpressionError, match="evaluation budget"):
        evaluate_source("map(input.xs, map(input.xs, item))", big)
    with pytest.raises(ExpressionError, match="characters long"):
        parse("1" + " + 1" * X.MAX_SOURCE_CHARS)
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("(" * (X.MAX_DEPTH + 1) + "1" + ")" * (X.MAX_DEPTH + 1))


def test_the_parsed_tree_is_json_and_evaluates_the_same_after_a_round_trip() -> None:
    source = "if(length(filter(input.blockers, item != 'a')) > 0, {k: sum([1, 2])}, null)"
    tree = parse(source)
    again = json.loads(json.dumps(tree))
    assert evaluate(again, SCOPE, source) == evaluate(tree, SCOPE, source) == {"k": 3}


def test_references_lists_every_namespace_path() -> None:
    tree = parse("concat(outputs.a.b, [vars.x]) + {k: input.y} + map(loop.l.previous_output.z, item)")
    assert X.references(tree) == [("outputs", ["a", "b"]), ("vars", ["x"]), ("input", ["y"]),
                                  ("loop", ["l", "previous_output", "z"])]


def test_a_compute_node_compiles_to_parsed_expressions_in_the_ir() -> None:
    src = ('schema s:\n  total: int\ncompute c:\n  output: s\n  expr:\n    total: "sum([1, 2])"\n'
           "workflow w:\n  entry: c\n  c -> done\n")
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.errors]
    node = result.workflow.nodes["c"]  # type: ignore[union-attr]
    assert node.kind == "compute"
    assert [(f.key, f.expression.tree) for f in node.fields] == [  # type: ignore[union-attr]
        ("total", ["call", "sum", [["list", [["lit", 1], ["lit", 2]]]]])]


def test_an_expression_naming_an_unknown_node_loop_or_variable_is_refused() -> None:
    src = ('compute c:\n  expr:\n    a: "outputs.ghost.x"\n    b: "loop.nope.iteration"\n    c: "vars.missing"\n'
           "workflow w:\n  entry: c\n  c -> done\n")
    messages = [d.message for d in dsl.check_source(src).errors if d.code == "C126"]
    assert len(messages) == 3
    assert "'outputs.ghost' names no node" in messages[0] and "'loop.nope' names no loop" in messages[1]
    assert "variable 'missing' is not declared" in messages[2]


def test_files_without_expressions_keep_their_ir_hash() -> None:
    """Expression and else fields are left out of the IR's JSON when unset."""
    src = 'schema s:\n  ok: bool\nagent a:\n  model: "m"\n  output: s\nworkflow w:\n  entry: a\n' \
          "  a -> done when ok\n  a -> fail\n"
    data = json.loads(dsl.check_source(src).workflow.to_json())  # type: ignore[union-attr]
    assert all("expression" not in e and "is_else" not in e for e in data["edges"])


# -- property: evaluation never raises anything but ExpressionError, and respects its limits -----
PROPERTY = settings(max_examples=int(os.environ.get("ITERLOOP_FUZZ_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=5), children, max_size=6),
    max_leaves=25,
)
TOKENS = st.sampled_from([
    "1", "2.5", "0", "-", "+", "*", "/", "%", "(", ")", "[", "]", "{", "}", ",", ":", ".", "!", "&&", "||", "==",
    "!=", "<", ">=", "'a'", "\"b\"", "true", "null", "input.v", "input.w", "vars.n", "outputs.o.f", "item",
    "loop.l.iteration", "run.id", "length(", "concat(", "unique(", "contains(", "join(", "if(", "map(", "filter(",
    "sum(", "min(", "max(", "round(", "keys(", "values(", "sort(", "slice(", "flatten(", "default(", "k",
])


@PROPERTY
@given(st.lists(TOKENS, max_size=25).map(" ".join), JSON_VALUES, JSON_VALUES)
def test_evaluation_raises_only_its_own_error_and_stays_within_its_limits(source: str, v: Any, w: Any) -> None:
    scope = Scope(vars={"n": 2}, input={"v": v, "w": w}, outputs={"o": {"f": v}},
                  loop={"l": {"iteration": 1, "max": 3, "previous_output": None}}, run={"id": "r"})
    try:
        tree = parse(source)
        value = evaluate(json.loads(json.dumps(tree)), scope, source)
    except ExpressionError:
        return
    assert_bounded(value)


def assert_bounded(value: Any) -> None:
    if isinstance(value, (list, dict)):
        assert len(value) <= X.MAX_ITEMS
    if isinstance(value, str):
        assert len(value) <= X.MAX_STRING_CHARS


@PROPERTY
@given(st.text(max_size=60))
def test_parsing_any_text_raises_only_its_own_error(source: str) -> None:
    try:
        parse(source, bare_fields=True)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(source)


def test_fmt_keeps_compute_nodes_expression_edges_and_data_bounds() -> None:
    from dsl.unparse import format_source

    src = ('vars:\n  n: int = 2\ncompute c:\n  expr:\n    ## why\n    v: "loop.l.iteration + 1"\n'
           'workflow w:\n  entry: c\n  c -> done when "v > 3"\n  c -> c when "v <= 3" as l("{{vars.n}}")\n'
           "  c -> fail when else\n")
    formatted = format_source(src)
    assert formatted == format_source(formatted)
    assert '    ## why\n    v: "loop.l.iteration + 1"' in formatted
    assert 'c -> c when "v <= 3" as l("{{vars.n}}")' in formatted and "c -> fail when else" in formatted
    before, after = dsl.check_source(src), dsl.check_source(formatted)
    assert before.ok and after.workflow.content_hash == before.workflow.content_hash  # type: ignore[union-attr]


def test_an_expr_value_that_is_not_a_string_is_a_parse_error() -> None:
    src = "compute c:\n  expr:\n    v: 1 + 2\nworkflow w:\n  entry: c\n  c -> done\n"
    errors = dsl.check_source(src).errors
    assert errors[0].code == "E002" and "must be a quoted string" in errors[0].message
    assert "C128" not in {d.code for d in errors}  # no cascade: the block is there
