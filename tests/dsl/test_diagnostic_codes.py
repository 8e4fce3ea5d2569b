"""One test per diagnostic code: the code fires, with its severity, at the right line and column."""

from __future__ import annotations

import textwrap

import pytest

import dsl
from dsl import ir
from dsl.compiler import CompileOptions
from dsl.diagnostics import CODES
from dsl.validator import validate

AGENT = 'agent a:\n  model: "m"\n'


def check(src: str, options: CompileOptions | None = None) -> dsl.CheckResult:
    return dsl.check_source(textwrap.dedent(src).lstrip("\n"), options=options)


# (code, severity, line, column, source). Each source is minimal and triggers the code once at
# the given position (other codes may accompany it where the language makes that unavoidable).
CASES: list[tuple[str, str, int, int, str]] = [
    ("E001", "error", 1, 1, "12345\n" + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("E002", "error", 2, 10, 'agent a:\n  model: gpt4\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("E003", "error", 2, 1, 'agent a:\n\tmodel: "m"\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("E004", "error", 2, 10, 'agent a:\n  model: "m\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("E011", "error", 1, 1, 'agent done:\n  model: "m"\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("E012", "error", 3, 3, AGENT + '  foobar: baz\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("E020", "error", 3, 12, AGENT + '  session: invalid_mode\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("E021", "error", 2, 6, 'vars:\n  x: foobar\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C001", "error", 5, 8, AGENT + "workflow w:\n  entry: a\n  a -> ghost\n"),
    ("C002", "error", 3, 11, AGENT + "  output: missing_schema\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C003", "error", 3, 11, AGENT + "  system: missing_prompt\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C004", "error", 2, 9, "prompt p:\n  Hello {{name}}\n" + AGENT + "  user: p\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C005", "error", 11, 25, "schema s:\n  ok: bool\n" + AGENT + "  output: s\nagent b:\n  model: \"m\"\n"
     "workflow w:\n  entry: a\n  b -> a as l(3)\n  a -> b when not ok as l(2)\n  a -> done when ok\n"),
    ("C006", "error", 1, 1, "schema s:\n  ok: bool\n"),
    ("C007", "error", 6, 1, AGENT + "workflow w:\n  entry: a\n  a -> done\nworkflow v:\n  entry: a\n"),
    ("C008", "error", 4, 10, AGENT + "workflow w:\n  entry: b\n  a -> done\n"),
    ("C009", "error", 7, 12, AGENT + 'agent b:\n  model: "m"\nagent j:\n  model: "m"\n  session: inherit\n'
     "  await: wait_all\nrouter r:\n  mode: fan_out_all\nworkflow w:\n  entry: r\n  r -> a\n  r -> b\n"
     "  a -> j\n  b -> j\n  j -> done\n"),
    ("C010", "error", 8, 3, AGENT + 'agent b:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> b\n  a -> done\n  b -> done\n'),
    ("C011", "error", 9, 18, "schema s:\n  ok: bool\n" + AGENT + "  output: s\nworkflow w:\n  entry: a\n"
     "  a -> done when ok\n  a -> fail when ok\n  a -> done\n"),
    ("C012", "error", 8, 3, "schema s:\n  ok: bool\n" + AGENT + "  output: s\nworkflow w:\n  entry: a\n  a -> done when ok\n"),
    ("C013", "error", 8, 18, "schema s:\n  reason: string\n" + AGENT + "  output: s\nworkflow w:\n  entry: a\n"
     "  a -> done when reason\n  a -> fail\n"),
    ("C014", "error", 8, 18, "schema s:\n  ok: bool\n" + AGENT + "  output: s\nworkflow w:\n  entry: a\n"
     "  a -> done when nope\n  a -> fail\n"),
    ("C016", "error", 3, 1, AGENT + 'agent orphan:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> done\n  orphan -> done\n'),
    ("C017", "error", 7, 21, AGENT + 'agent b:\n  model: "m"\nworkflow w:\n  entry: a\n'
     '  a -> b with { h: "{{outputs.a.history}}" }\n  b -> done\n'),
    ("C018", "error", 1, 1, "agent a:\n  publish: r\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C019", "error", 8, 3, AGENT + 'agent b:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> b\n  b -> a\n'),
    ("C020", "error", 3, 1, AGENT + "router r:\n  mode: round_robin\nworkflow w:\n  entry: r\n  r -> a\n  a -> done\n"),
    ("C021", "error", 3, 1, AGENT + 'router r:\n  mode: llm\n  model: "m"\nworkflow w:\n  entry: r\n  r -> a\n  a -> done\n'),
    ("C022", "error", 10, 15, AGENT + 'agent b:\n  model: "m"\nrouter r:\n  mode: llm\n  model: "m"\nworkflow w:\n'
     "  entry: r\n  r -> a when ok\n  r -> b\n  a -> done\n  b -> done\n"),
    ("C023", "error", 5, 10, AGENT + 'router r:\n  mode: fan_out_all\n  model: "m"\nworkflow w:\n  entry: r\n'
     "  r -> a\n  a -> done\n"),
    ("C024", "error", 4, 1, 'mcp_server github:\n  transport: http\n  url: "http://x"\nmcp_server github:\n'
     '  transport: http\n  url: "http://y"\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C025", "error", 2, 14, "mcp_server s:\n  transport: stdio\n" + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C026", "error", 7, 13, AGENT + 'agent b:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> b as l(0)\n  b -> done\n'),
    ("C028", "error", 14, 17, AGENT + 'agent b:\n  model: "m"\njoin j:\n  strategy: wait_all\nrouter r:\n'
     "  mode: fan_out_all\nworkflow w:\n  entry: r\n  r -> a\n  r -> b\n"
     '  a -> j with { x: "{{outputs.a}}" }\n  b -> j with { x: "{{outputs.b}}" }\n  j -> done\n'),
    ("C029", "warning", 3, 16, AGENT + "  interaction: human\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C030", "error", 2, 9, "prompt p:\n  Look: {{outputs.ghost.ok}}\n" + AGENT + "  user: p\nworkflow w:\n"
     "  entry: a\n  a -> done\n"),
    ("C031", "error", 2, 3, "prompt p:\n  {{outputs.a.missing}}\nschema s:\n  ok: bool\n" + AGENT + "  output: s\n"
     'agent b:\n  model: "m"\n  user: p\nworkflow w:\n  entry: a\n  a -> b\n  b -> done\n'),
    ("C032", "warning", 2, 3, "prompt p:\n  {{outputs.a.field}}\n" + AGENT + 'agent b:\n  model: "m"\n  user: p\n'
     "workflow w:\n  entry: a\n  a -> b\n  b -> done\n"),
    ("C033", "error", 2, 3, "prompt p:\n  {{vars.unknown}}\n" + AGENT + "  user: p\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C034", "error", 4, 10, "schema in_s:\n  topic: string\nprompt p:\n  Topic: {{input.subject}}\n" + AGENT
     + "  input: in_s\n  user: p\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C035", "error", 2, 3, "prompt p:\n  {{artifacts.missing}}\n" + AGENT + "  user: p\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C036", "error", 7, 21, AGENT + 'agent b:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> b with { x: "{{outputs.b}}" }\n'
     "  b -> done\n"),
    ("C100", "error", 2, 13, 'wait w1:\n  duration: "soon"\nworkflow w:\n  entry: w1\n  w1 -> done\n'),
    ("C101", "warning", 6, 19, AGENT + "workflow w:\n  entry: a\n  budget:\n    max_duration: \"half an hour\"\n  a -> done\n"),
    ("C102", "error", 1, 1, 'wait w1:\n  await: wait_all\nworkflow w:\n  entry: w1\n  w1 -> done\n'),
    ("C103", "error", 1, 1, 'tool t:\n  output: s\nschema s:\n  ok: bool\nworkflow w:\n  entry: t\n  t -> done\n'),
    ("C104", "error", 3, 9, 'tool t:\n  command: "echo hi"\n  call: get_funnel_data\nworkflow w:\n  entry: t\n  t -> done\n'),
    ("C106", "error", 6, 12, AGENT + 'agent b:\n  model: "m"\njoin j:\n  require: [a, ghost]\nworkflow w:\n  entry: a\n'
     "  a -> b\n  b -> j\n  j -> done\n"),
    ("C107", "warning", 2, 3, 'vars:\n  n: int = "three"\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C108", "warning", 3, 1, AGENT + 'agent a:\n  model: "n"\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("C109", "warning", 3, 23, AGENT + "  interaction_prompt: nope\n  backend: \"claude_code\"\nworkflow w:\n"
     "  entry: a\n  a -> done\n"),
    ("C110", "warning", 4, 14, AGENT + "  mcp:\n    servers: [github]\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C111", "warning", 2, 13, 'agent a:\n  delegate: "cursor_ai"\n  publish: r\nworkflow w:\n  entry: a\n  a -> done\n'),
    ("C112", "error", 2, 18, "schema s:\n  ok: bool [min: 1]\n" + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C113", "error", 2, 25, 'schema s:\n  key: string [pattern: "^[a-"]\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C114", "error", 2, 16, "schema s:\n  n: int [min: 5] [max: 2]\n" + AGENT + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C115", "error", 2, 14, 'schema s:\n  v: string [enum: "a", "B"] [pattern: "^[a-z]+$"]\n' + AGENT
     + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C116", "error", 4, 25, 'vars:\n  x: string = "a"\ntool t:\n  command: "sh -c \'echo {{vars.x}}\'"\n'
     + "workflow w:\n  entry: t\n  t -> done\n"),
    ("C117", "warning", 4, 19, 'vars:\n  x: string = "a"\ntool t:\n  command: "sh -c {{vars.x}}"\nworkflow w:\n'
     + "  entry: t\n  t -> done\n"),
    ("C118", "warning", 3, 3, AGENT + "  memory:\n    enabled: true\nworkflow w:\n  entry: a\n  a -> done\n"),
    ("C119", "error", 2, 10, 'wait w1:\n  event: ready\n  timeout: "1h"\nworkflow w:\n  entry: w1\n  w1 -> done\n'),
    ("C120", "error", 5, 5, 'vars:\n  x: string = "a"\npresets:\n  p:\n    y: "b"\n' + AGENT
     + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C121", "warning", 5, 5, 'vars:\n  x: int = 1\npresets:\n  p:\n    x: "b"\n' + AGENT
     + "workflow w:\n  entry: a\n  a -> done\n"),
    ("C123", "error", 3, 9, 'router r:\n  mode: fan_out_each\n  over: "items: {{vars.x}}"\nvars:\n  x: json = []\n'
     + AGENT + "workflow w:\n  entry: r\n  r -> a\n  a -> done\n"),
    ("C124", "error", 13, 3, 'vars:\n  x: json = []\nrouter r:\n  mode: fan_out_each\n  over: "{{vars.x}}"\n' + AGENT
     + 'agent b:\n  model: "m"\nworkflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> done\n  b -> done\n'),
    ("C131", "error", 1, 1, 'subbot s:\n  budget:\n    max_iterations: 3\nworkflow w:\n  entry: s\n  s -> done\n'),
    ("C125", "warning", 7, 16, AGENT + 'agent b:\n  model: "m"\nrouter r:\n  mode: fan_out_all\n  parallelism: 2\n'
     + "workflow w:\n  entry: r\n  r -> a\n  r -> b\n  a -> done\n  b -> done\n"),
    ("C134", "error", 3, 13, 'tool t:\n  command: "echo hi"\n  language: py\nworkflow w:\n  entry: t\n  t -> done\n'),
    ("C133", "warning", 5, 16, 'vars:\n  x: json = []\nrouter r:\n  mode: foreach\n  parallelism: 2\n'
     + '  over: "{{vars.x}}"\n' + AGENT + "workflow w:\n  entry: r\n  r -> a\n  a -> done\n"),
    ("C126", "error", 3, 13, 'compute c:\n  expr:\n    v: "1 + xyz.a"\nworkflow w:\n  entry: c\n  c -> done\n'),
    ("C127", "error", 3, 9, 'compute c:\n  expr:\n    v: "lenght(vars.x)"\nworkflow w:\n  entry: c\n  c -> done\n'),
    ("C128", "error", 3, 1, "schema s:\n  ok: bool\ncompute c:\n  input: s\nworkflow w:\n  entry: c\n  c -> done\n"),
    ("C129", "error", 5, 18, AGENT + "workflow w:\n  entry: a\n  a -> done when else\n"),
    ("C130", "warning", 4, 18, 'agent a:\n  model: "m"\n  tools: [sum_values]\n  tool_approval: [sum_valeus]\n'
     "workflow w:\n  entry: a\n  a -> done\n"),
]


@pytest.mark.parametrize(("code", "severity", "line", "column", "source"), CASES, ids=[c[0] for c in CASES])
def test_code_fires_with_severity_and_position(code: str, severity: str, line: int, column: int, source: str) -> None:
    result = dsl.check_source(source)
    hits = [d for d in result.diagnostics if d.code == code]
    assert hits, f"{code} not emitted; got {[d.render() for d in result.diagnostics]}"
    d = hits[0]
    assert d.severity == severity
    assert (d.line, d.column) == (line, column), d.render()
    assert d.message and d.hint, "every diagnostic has a message and a fix hint"


def test_every_emittable_code_has_a_case() -> None:
    # C122 needs the project's .mcp.json: tests/test_cli.py checks it through `iterloop validate`.
    # C132 needs files beside the file (a subbot's): tests/dsl/test_subbots.py checks it.
    tested = {c[0] for c in CASES} | {"C024", "C105", "C018", "E100", "C122", "C132"}
    assert set(CODES) <= tested, sorted(set(CODES) - tested)


def test_c018_is_a_warning_for_llm_routers() -> None:
    src = AGENT + 'agent b:\n  model: "m"\nrouter r:\n  mode: llm\nworkflow w:\n  entry: r\n  r -> a\n  r -> b\n' \
        "  a -> done\n  b -> done\n"
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C018"]
    assert [(d.severity, d.line) for d in hits] == [("warning", 5)]


def test_c018_twice_for_an_llm_human_without_model_and_output() -> None:
    src = "human h:\n  interaction: llm\nworkflow w:\n  entry: h\n  h -> done\n"
    hits = [d for d in dsl.check_source(src).diagnostics if d.code == "C018"]
    assert len(hits) == 2 and all(d.severity == "error" for d in hits)


def test_default_model_option_satisfies_c018() -> None:
    src = "agent a:\n  publish: r\nworkflow w:\n  entry: a\n  a -> done\n"
    result = dsl.check_source(src, options=CompileOptions(default_model="anthropic/claude-sonnet-4-5"))
    assert result.ok
    assert result.workflow is not None
    assert result.workflow.nodes["a"].model == "anthropic/claude-sonnet-4-5"  # type: ignore[union-attr]


def test_c024_invalid_reasoning_effort_in_a_hand_built_ir() -> None:
    result = dsl.check_source(AGENT + "  reasoning_effort: high\nworkflow w:\n  entry: a\n  a -> done\n")
    assert result.ok and result.workflow is not None
    node = result.workflow.nodes["a"]
    assert isinstance(node, ir.AgentNode)
    node.reasoning_effort = "ultra"
    diags = validate(result.workflow)
    assert [(d.code, d.severity) for d in diags] == [("C024", "error")]


def test_c105_unknown_builtin_tool_when_registry_given() -> None:
    src = "tool t:\n  call: get_funel_data\nworkflow w:\n  entry: t\n  t -> done\n"
    assert dsl.check_source(src).ok  # without a registry the name cannot be checked
    result = dsl.check_source(src, options=CompileOptions(known_tools=frozenset({"get_funnel_data"})))
    [d] = [d for d in result.diagnostics if d.code == "C105"]
    assert (d.severity, d.line, d.column) == ("error", 2, 9)
    assert "get_funnel_data" in d.hint


def test_c105_leaves_mcp_tool_names_to_the_run() -> None:
    src = "tool t:\n  call: mcp.time.get_current_time\nworkflow w:\n  entry: t\n  t -> done\n"
    result = dsl.check_source(src, options=CompileOptions(known_tools=frozenset({"get_funnel_data"})))
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]


def test_c025_accepts_sse_with_a_url_and_checks_it_like_http() -> None:
    ok = 'mcp_server s:\n  transport: sse\n  url: "http://localhost:3001/sse"\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"
    assert dsl.check_source(ok).ok
    bad = 'mcp_server s:\n  transport: sse\n  command: "x"\n' + AGENT + "workflow w:\n  entry: a\n  a -> done\n"
    messages = [d.message for d in dsl.check_source(bad).diagnostics if d.code == "C025"]
    assert any("sse but has no 'url'" in m for m in messages) and any("must not set 'command'" in m for m in messages)


def test_e100_invalid_utf8_names_the_position() -> None:
    result = dsl.check_bytes(b'agent a:\n  model: "\xff"\n', file="bad.iter")
    [d] = result.diagnostics
    assert (d.code, d.line, d.column, d.file) == ("E100", 2, 11, "bad.iter")


def test_c028_does_not_fire_for_alternative_paths_into_an_ordinary_node() -> None:
    src = "schema s:\n  ok: bool\n" + AGENT + '  output: s\nagent b:\n  model: "m"\nagent c:\n  model: "m"\n' \
        "agent d:\n  model: \"m\"\nworkflow w:\n  entry: a\n  a -> b when ok\n  a -> c when not ok\n" \
        '  b -> d with { x: "{{outputs.b}}" }\n  c -> d with { x: "{{outputs.c}}" }\n  d -> done\n'
    result = dsl.check_source(src)
    assert result.ok, [d.render() for d in result.diagnostics]


def test_diagnostics_are_deterministic_and_sorted() -> None:
    src = CASES[0][4] + "agent b:\n  output: nope\n  model: \"m\"\n"
    first = [d.model_dump() for d in dsl.check_source(src).diagnostics]
    second = [d.model_dump() for d in dsl.check_source(src).diagnostics]
    assert first == second
    assert [(d["line"], d["column"]) for d in first] == sorted((d["line"], d["column"]) for d in first)


def test_c111_names_an_unknown_backend_and_what_the_node_does_instead() -> None:
    without = dsl.check_source('agent impl:\n  delegate: "cursor_ai"\n  publish: r\nworkflow w:\n  entry: impl\n'
                               "  impl -> done\n")
    [hit] = [d for d in without.diagnostics if d.code == "C111"]
    assert "agent 'impl'" in hit.message and "'cursor_ai'" in hit.message
    assert "not a delegation backend" in hit.message and "no 'model:'" in hit.message
    assert without.ok
    with_model = dsl.check_source('agent impl:\n  backend: "aider"\n  model: "anthropic/claude-sonnet-4-5"\n'
                                  "workflow w:\n  entry: impl\n  impl -> done\n")
    [hit] = [d for d in with_model.diagnostics if d.code == "C111"]
    assert "calls its model 'anthropic/claude-sonnet-4-5' directly" in hit.message


def test_known_delegation_backends_compile_without_a_warning() -> None:
    for backend in ("claude_code", "codex"):
        result = dsl.check_source(f'agent impl:\n  delegate: "{backend}"\n  publish: r\nworkflow w:\n'
                                  "  entry: impl\n  impl -> done\n")
        assert result.ok and not [d for d in result.diagnostics if d.code in ("C111", "C018")]
