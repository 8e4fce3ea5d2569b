"""Iterion's pinned validation cases (code present / absent), including the documented extras."""

from __future__ import annotations

import pytest

import dsl

S_OK = "schema s:\n  ok: bool\n  reason: string\n"


def agent(name: str, extra: str = "") -> str:
    return f'agent {name}:\n  model: "m"\n{extra}'


def codes(src: str) -> list[str]:
    return [d.code for d in dsl.check_source(src).diagnostics]


FAN = "router r:\n  mode: fan_out_all\n"

CASES = [
    # name, source, must contain, must not contain
    ("fresh_at_convergence_allowed",
     FAN + agent("a") + agent("b") + agent("j", "  await: wait_all\n")
     + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> j\n  b -> j\n  j -> done\n", [], ["C009"]),
    ("router_fan_out_allows_many_default_edges",
     FAN + agent("a") + agent("b") + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> done\n  b -> done\n", [], ["C010"]),
    ("round_robin_allows_many_default_edges",
     "router r:\n  mode: round_robin\n" + agent("a") + agent("b")
     + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> done\n  b -> done\n", [], ["C010", "C020"]),
    ("ambiguous_condition_without_fallback_also_c012",
     S_OK + agent("a", "  output: s\n") + "workflow w:\n  entry: a\n  a -> done when ok\n  a -> fail when ok\n",
     ["C011", "C012"], []),
    ("exhaustive_bool_needs_no_fallback_but_cycle_needs_loop",
     S_OK + agent("a", "  output: s\n") + agent("fix")
     + "workflow w:\n  entry: a\n  a -> done when ok\n  a -> fix when not ok\n  fix -> a\n", ["C019"], ["C011", "C012"]),
    ("declared_loop_accepts_cycle",
     S_OK + agent("a", "  output: s\n") + agent("fix")
     + "workflow w:\n  entry: a\n  a -> done when ok\n  a -> fix when not ok\n  fix -> a as retry(3)\n", [], ["C019"]),
    ("loop_on_another_edge_of_the_cycle_is_accepted",
     agent("a") + agent("b") + agent("c")
     + "workflow w:\n  entry: a\n  a -> b\n  b -> c\n  c -> a as l(2)\n", [], ["C019"]),
    ("history_in_loop_allowed",
     "prompt p:\n  {{outputs.check.history}}\n" + S_OK + agent("check", "  output: s\n")
     + agent("fix", "  user: p\n")
     + "workflow w:\n  entry: check\n  check -> done when ok\n  check -> fix when not ok as l(3)\n  fix -> check\n",
     [], ["C017", "C036"]),
    ("history_outside_loop_rejected_even_in_unused_prompt",
     "prompt p:\n  {{outputs.a.history}}\n" + agent("a") + "workflow w:\n  entry: a\n  a -> done\n", ["C017"], []),
    ("llm_router_valid",
     "prompt p:\n  Pick.\n" + agent("a") + agent("b") + 'router r:\n  model: "m"\n  mode: llm\n  system: p\n'
     + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> done\n  b -> done\n", [], ["C021", "C022", "C023"]),
    ("shared_prompt_referencing_its_own_consumer_gives_c036",
     "prompt p:\n  {{outputs.a.ok}}\n" + S_OK + agent("a", "  output: s\n  user: p\n") + agent("b", "  user: p\n")
     + "workflow w:\n  entry: a\n  a -> b\n  b -> done\n", ["C036"], ["C030", "C031"]),
    ("whole_output_of_schemaless_node_does_not_warn",
     "prompt p:\n  {{outputs.a}}\n" + agent("a") + agent("b", "  user: p\n")
     + "workflow w:\n  entry: a\n  a -> b\n  b -> done\n", [], ["C032", "C036"]),
    ("declared_var_ok",
     "vars:\n  rules: string\nprompt p:\n  {{vars.rules}}\n" + agent("a", "  user: p\n")
     + "workflow w:\n  entry: a\n  a -> done\n", [], ["C033"]),
    ("published_artifact_upstream_ok",
     "prompt p:\n  {{artifacts.result}}\n" + agent("a", "  publish: result\n") + agent("b", "  user: p\n")
     + "workflow w:\n  entry: a\n  a -> b\n  b -> done\n", [], ["C035", "C036"]),
    ("artifact_published_by_a_tool_node_ok",
     'prompt p:\n  {{artifacts.doc}} {{artifacts.digest}}\n' + agent("b", "  user: p\n")
     + 'tool w:\n  call: write_learning_doc\n  publish: doc\n'
     + 'tool s:\n  command: "cat digest.json"\n  publish: digest\n'
     + "workflow w:\n  entry: w\n  w -> s\n  s -> b\n  b -> done\n", [], ["C035", "C036"]),
    ("artifact_published_by_a_later_tool_node_is_c036",
     'prompt p:\n  {{artifacts.doc}}\n' + agent("b", "  user: p\n")
     + 'tool w:\n  call: write_learning_doc\n  publish: doc\n'
     + "workflow w:\n  entry: b\n  b -> w\n  w -> done\n", ["C036"], ["C035"]),
    ("input_field_without_input_schema_is_not_checked",
     "prompt p:\n  {{input.anything}}\n" + agent("a", "  user: p\n") + "workflow w:\n  entry: a\n  a -> done\n",
     [], ["C034"]),
    ("reachable_via_loop",
     agent("reviewer") + agent("writer")
     + 'workflow w:\n  entry: writer\n  writer -> reviewer\n  reviewer -> writer as l(2) with { r: "{{outputs.reviewer}}" }\n',
     [], ["C036"]),
    ("underscore_fields_are_runtime_injected",
     agent("a") + agent("b") + 'workflow w:\n  entry: a\n  a -> b with { sid: "{{outputs.a._session_id}}" }\n  b -> done\n',
     [], ["C031", "C032"]),
    ("tool_command_unknown_node",
     'tool t:\n  command: "echo {{outputs.phantom}}"\nworkflow w:\n  entry: t\n  t -> done\n', ["C030"], []),
    ("unknown_entry_makes_every_node_unreachable",
     agent("a") + "workflow w:\n  entry: b\n  a -> done\n", ["C008", "C016"], []),
    ("entry_done_is_valid", "workflow w:\n  entry: done\n", [], ["C008"]),
    ("join_require_of_a_branch_is_fine",
     FAN + agent("a") + agent("b") + "join j:\n  require: [a, b]\n"
     + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> j\n  b -> j\n  j -> done\n", [], ["C106", "C010"]),
    ("distinct_keys_into_a_join_are_fine",
     FAN + agent("a") + agent("b") + "join j:\n  strategy: wait_all\n"
     + 'workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> j with { ra: "{{outputs.a}}" }\n'
     '  b -> j with { rb: "{{outputs.b}}" }\n  j -> done\n', [], ["C028"]),
]


@pytest.mark.parametrize(("name", "src", "present", "absent"), CASES, ids=[c[0] for c in CASES])
def test_pinned_validation_case(name: str, src: str, present: list[str], absent: list[str]) -> None:
    found = codes(src)
    for code in present:
        assert code in found, f"{code} missing from {found}"
    for code in absent:
        assert code not in found, f"{code} unexpectedly in {found}"
