"""`fan_out_each` routers in the language: the IR they compile to, their diagram and their format."""

from __future__ import annotations

import textwrap

import dsl
from dsl import ir
from dsl.mermaid import to_mermaid
from dsl.unparse import format_source

EACH = textwrap.dedent("""
    vars:
      tickets: json = []
    agent triage:
      model: "m"
    router each_ticket:
      mode: fan_out_each
      over: "{{vars.tickets}}"
      parallelism: 4
    join collect:
      strategy: best_effort
    workflow w:
      entry: each_ticket
      each_ticket -> triage with { ticket: "{{input.item}}" }
      triage -> collect
      collect -> done
""").lstrip("\n")


def compiled(src: str) -> ir.Workflow:
    result = dsl.check_source(src)
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


def test_a_fan_out_each_router_compiles_its_list_and_parallelism_into_the_ir() -> None:
    router = compiled(EACH).nodes["each_ticket"]
    assert isinstance(router, ir.RouterNode)
    assert (router.router_mode, router.over, router.parallelism) == ("fan_out_each", "{{vars.tickets}}", 4)


def test_routers_of_other_modes_keep_the_ir_they_had_before_fan_out_each() -> None:
    data = ir.RouterNode(id="r", router_mode="fan_out_all").model_dump(mode="json")
    assert "over" not in data and "parallelism" not in data


def test_over_naming_an_undeclared_var_is_reported_at_the_over_property() -> None:
    result = dsl.check_source(EACH.replace("{{vars.tickets}}", "{{vars.ticket}}"))
    hits = [d for d in result.diagnostics if d.code == "C033"]
    assert [(d.line, "'over' of router 'each_ticket'" in d.message) for d in hits] == [(7, True)]


def test_formatting_keeps_over_and_parallelism() -> None:
    out = format_source(EACH)
    assert '  over: "{{vars.tickets}}"\n  parallelism: 4\n' in out
    assert compiled(out).content_hash == compiled(EACH).content_hash
    assert format_source(out) == out


def test_the_diagram_labels_the_edge_every_item_takes() -> None:
    wf = compiled(EACH)
    assert 'each_ticket -->|"each of {{vars.tickets}}"| triage' in to_mermaid(wf)
    assert "mode: fan_out_each<br/>over: {{vars.tickets}}<br/>parallelism: 4" in to_mermaid(wf, "detailed")


def test_a_node_in_the_branch_may_read_the_item_from_the_routers_output() -> None:
    src = EACH.replace("agent triage:\n  model: \"m\"\n", "prompt p:\n  Triage {{outputs.each_ticket.item.title}} "
                       "({{outputs.each_ticket.index}} of {{outputs.each_ticket.count}})\nagent triage:\n"
                       "  model: \"m\"\n  user: p\n")
    compiled(src)


def test_reading_a_field_the_router_does_not_have_is_c031() -> None:
    src = EACH.replace('ticket: "{{input.item}}"', 'ticket: "{{outputs.each_ticket.itme}}"')
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C031"]
    assert len(hits) == 1 and "item, index, count, first, last" in hits[0].message


def test_the_joins_collected_results_are_read_without_a_schema_warning() -> None:
    src = EACH.replace("  collect -> done\n", '  collect -> summary with { results: "{{outputs.collect.results}}" }\n'
                       "  summary -> done\n") + 'agent summary:\n  model: "m"\n'
    compiled(src)
