"""`foreach` routers in the language: the IR they compile to, their checks, diagram and format."""

from __future__ import annotations

import textwrap

import dsl
from dsl import ir
from dsl.mermaid import to_mermaid
from dsl.unparse import format_source

FOREACH = textwrap.dedent("""
    vars:
      chapters: json = []
    agent write:
      model: "m"
    router each_chapter:
      mode: foreach
      over: "{{vars.chapters}}"
    join collect:
      strategy: wait_all
    workflow w:
      entry: each_chapter
      each_chapter -> write with { chapter: "{{input.item}}", so_far: "{{input.results}}" }
      write -> collect
      collect -> done
""").lstrip("\n")


def compiled(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


def test_a_foreach_router_compiles_its_list_into_the_ir_without_parallelism() -> None:
    router = compiled(FOREACH).nodes["each_chapter"]
    assert isinstance(router, ir.RouterNode)
    assert (router.router_mode, router.over, router.parallelism) == ("foreach", "{{vars.chapters}}", 0)


def test_a_foreach_router_without_over_is_c123_naming_its_mode() -> None:
    hits = [d for d in dsl.check_source(FOREACH.replace('  over: "{{vars.chapters}}"\n', "")).diagnostics
            if d.code == "C123"]
    assert len(hits) == 1 and hits[0].message.startswith("foreach router 'each_chapter' has no 'over:'")


def test_a_foreach_router_with_two_edges_is_c124() -> None:
    src = FOREACH.replace("  write -> collect\n", "  each_chapter -> collect\n  write -> collect\n")
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C124"]
    assert len(hits) == 1 and "foreach router 'each_chapter'" in hits[0].message


def test_parallelism_on_a_foreach_router_is_c133_at_the_property() -> None:
    src = FOREACH.replace('  over: "{{vars.chapters}}"\n', '  over: "{{vars.chapters}}"\n  parallelism: 3\n')
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C133"]
    assert [(d.line, d.severity) for d in hits] == [(8, "warning")]
    assert "one at a time" in hits[0].message


def test_an_item_may_read_the_earlier_results_from_the_routers_output() -> None:
    src = FOREACH.replace('so_far: "{{input.results}}"', 'so_far: "{{outputs.each_chapter.results}}"')
    compiled(src)


def test_reading_a_field_a_foreach_router_does_not_have_is_c031_listing_results() -> None:
    src = FOREACH.replace('so_far: "{{input.results}}"', 'so_far: "{{outputs.each_chapter.reslts}}"')
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C031"]
    assert len(hits) == 1 and "item, index, count, first, last, results" in hits[0].message


def test_the_join_behind_a_foreach_router_has_results() -> None:
    compiled(FOREACH.replace("collect -> done", 'collect -> done with { n: "{{outputs.collect.results}}" }'))


def test_formatting_a_foreach_router_round_trips() -> None:
    out = format_source(FOREACH)
    assert '  mode: foreach\n  over: "{{vars.chapters}}"\n' in out
    assert compiled(out).content_hash == compiled(FOREACH).content_hash
    assert format_source(out) == out


def test_the_diagram_labels_the_edge_as_taken_in_order() -> None:
    wf = compiled(FOREACH)
    assert 'each_chapter -->|"each of {{vars.chapters}}, in order"| write' in to_mermaid(wf)
    assert "mode: foreach<br/>over: {{vars.chapters}}" in to_mermaid(wf, "detailed")
