"""No input may crash the toolchain: random and mutated inputs give diagnostics, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl.ir import Workflow

ROOT = Path(__file__).resolve().parents[2]
SEED_CORPUS = [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("examples/**/*.iter"))] or [
    'agent a:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> done\n'
]
ALPHABET = st.sampled_from(list("abz_01 \n\t\r:->=,[]{}().*\"#'$\\-`|") + ["->", "##", "{{", "}}", "  ", "\n  ",
                                                                          ": |\n    ", "`\n"])
WORDS = st.sampled_from(
    "agent judge router join human tool wait workflow prompt schema vars mcp_server entry budget when not as "
    "with model input output session await mode strategy require duration call command done fail true false "
    "json string[] {{outputs.a}} {{vars.x}} ${ENV} -3 1.5 [] {} [enum: \"a\"] [pattern: \"^[a-\" "
    "[min_length: [max_length: 3] [min: [max: -0.5] presets cursor sandbox memory max_tokens event timeout "
    "xhigh ${X:-max} compute expr else \"a>1\" \"{{vars.x}}\" {{loop.l.iteration}} {{run.id}}".split()
)

FUZZ = settings(max_examples=int(os.environ.get("ITERLOOP_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_total(result: dsl.CheckResult) -> None:
    """The result is well-formed whatever the input: diagnostics are data, the IR re-serialises."""
    for d in result.diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.code and d.message
    if result.workflow is not None:
        assert Workflow.from_json(result.workflow.to_json()) == result.workflow


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    assert_total(dsl.check_bytes(data))


@FUZZ
@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    assert_total(dsl.check_source(text))


@FUZZ
@given(st.lists(st.one_of(ALPHABET, WORDS), max_size=120).map("".join))
def test_token_soup_never_crashes(text: str) -> None:
    assert_total(dsl.check_source(text))


@FUZZ
@given(
    st.sampled_from(SEED_CORPUS),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=8), st.one_of(ALPHABET, WORDS)),
             min_size=1, max_size=6),
)
def test_mutated_examples_never_crash(source: str, edits: list[tuple[int, int, str]]) -> None:
    text = source
    for where, cut, insert in edits:
        i = where % (len(text) + 1)
        text = text[:i] + insert + text[i + cut :]
    assert_total(dsl.check_source(text))


def test_pathological_nesting_is_a_diagnostic() -> None:
    deep = "vars:\n  x: json = " + "[" * 5000 + "]" * 5000 + "\n"
    result = dsl.check_source(deep + "workflow w:\n  entry: done\n")
    assert_total(result)
    indented = "".join(" " * i + "a:\n" for i in range(0, 400, 2))
    assert dsl.check_source(indented).diagnostics


def test_oversized_source_is_a_diagnostic() -> None:
    result = dsl.check_source("## " + "x" * (10 * 1024 * 1024) + "\n")
    first = result.diagnostics[0]
    assert first.code == "E001" and "10 MiB" in first.message
