"""Template extraction (Iterion's rules) and rendering (iterloop's typed single-reference rule)."""

from __future__ import annotations

import pytest

from dsl.ir import Ref
from dsl.templates import MISSING, TemplateError, evaluate_mapping, extract_refs, render


def test_extracts_each_namespace_in_order() -> None:
    refs = extract_refs("Review: {{input.review}} Context: {{outputs.context_builder}} {{artifacts.run_summary}}"
                        " {{outputs.gate.needs_human_input}}")
    assert [(r.kind, r.path) for r in refs] == [
        ("input", ["review"]), ("outputs", ["context_builder"]), ("artifacts", ["run_summary"]),
        ("outputs", ["gate", "needs_human_input"])]


def test_plain_text_has_no_refs() -> None:
    assert extract_refs("no templates here ${ENV}") == []


@pytest.mark.parametrize("bad", ["{{bogus.field}}", "{{vars}}", "{{vars.x", "{{.Name}}"])
def test_malformed_templates_raise(bad: str) -> None:
    with pytest.raises(TemplateError):
        extract_refs(bad)


def lookup(ref: Ref) -> object:
    values = {("vars", "n"): 3, ("outputs", "a"): {"ok": True}, ("vars", "name"): "Ada"}
    return values.get((ref.kind, ref.path[0]), MISSING)


def test_single_reference_keeps_its_type() -> None:
    assert evaluate_mapping("{{outputs.a}}", lookup) == {"ok": True}
    assert evaluate_mapping("  {{vars.n}} ", lookup) == 3


def test_anything_else_is_interpolated_text() -> None:
    assert evaluate_mapping("n={{vars.n}}", lookup) == "n=3"
    assert evaluate_mapping("{{vars.name}} {{outputs.a}}", lookup) == 'Ada {"ok": true}'
    assert render("Hi {{vars.name}} {{vars.missing}}", lookup) == "Hi Ada {{vars.missing}}"
