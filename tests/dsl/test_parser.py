"""The parser accepts the union of Iterion's SEED and README syntax, and records what was written."""

from __future__ import annotations

import textwrap

import dsl
from dsl import ast as A
from dsl.parser import parse


def parse_ok(src: str) -> A.File:
    tree, diags = parse(textwrap.dedent(src).lstrip("\n"))
    assert diags == [], [d.render() for d in diags]
    return tree


def test_vars_with_all_default_kinds() -> None:
    tree = parse_ok('''
        vars:
          name: string = "default"
          count: int = 10
          rate: float = 3.14
          verbose: bool = false
          offset: int = -3
          config: json = { "key": "value", "n": [1, 2.5, null, true] }
          tags: string[] = ["security", "performance"]
          bare: string
        ''')
    [block] = tree.of_type(A.VarsBlock)
    got = {f.name: (f.type, f.default.value if f.default else None) for f in block.fields}
    assert got == {
        "name": ("string", "default"), "count": ("int", 10), "rate": ("float", 3.14), "verbose": ("bool", False),
        "offset": ("int", -3), "config": ("json", {"key": "value", "n": [1, 2.5, None, True]}),
        "tags": ("string[]", ["security", "performance"]), "bare": ("string", None),
    }


def test_multiline_json_default() -> None:
    tree = parse_ok('''
        vars:
          config: json = {
            "a": 1,
            "b": ["x", "y"],
          }
          after: int = 2
        ''')
    [block] = tree.of_type(A.VarsBlock)
    assert [(f.name, f.default.value) for f in block.fields if f.default] == [
        ("config", {"a": 1, "b": ["x", "y"]}), ("after", 2)]


def test_edge_with_all_clauses_in_any_order() -> None:
    tree = parse_ok('''
        workflow w:
          entry: a
          a -> b when approved as loop1(3) with {
            plan: "{{outputs.a}}",
            context: "{{vars.x}}"
          }
          b -> a with { k: "v" } as loop1(3) when not approved
        ''')
    e1, e2 = tree.workflows[0].edges
    assert (e1.when.field, e1.when.negated, e1.loop.name, e1.loop.max_iterations) == ("approved", False, "loop1", 3)
    assert [(w.key, w.value) for w in e1.with_] == [("plan", "{{outputs.a}}"), ("context", "{{vars.x}}")]
    assert (e2.when.negated, e2.loop.name, [w.key for w in e2.with_]) == (True, "loop1", ["k"])


def test_schema_enums_quoted_or_bare() -> None:
    tree = parse_ok('''
        schema verdict:
          approved: bool
          confidence: string [enum: "low", "medium", "high"]
          size: string [enum: small, large]
          issues: string[]
          details: json
        ''')
    [s] = tree.of_type(A.SchemaDecl)
    assert [(f.name, f.type, f.enum_values) for f in s.fields] == [
        ("approved", "bool", None), ("confidence", "string", ["low", "medium", "high"]),
        ("size", "string", ["small", "large"]), ("issues", "string[]", None), ("details", "json", None)]


def test_agent_properties_tools_and_mcp_block() -> None:
    tree = parse_ok('''
        agent worker:
          mcp:
            inherit: true
            servers: [github, claude_code]
            disable: [falcon]
          model: "claude-sonnet-4-5"
          session: inherit
          tools: [git_diff, mcp.claude_code.search, mcp.codex.*, "quoted.tool"]
          tool_policy: [git_diff, mcp.github.*, *]
          tool_max_steps: 15
          reasoning_effort: extra_high
          readonly: true
          await: best_effort
        ''')
    [a] = tree.of_type(A.AgentDecl)
    assert a.mcp is not None and (a.mcp.inherit, a.mcp.servers, a.mcp.disable) == (True, ["github", "claude_code"], ["falcon"])
    assert a.tools == ["git_diff", "mcp.claude_code.search", "mcp.codex.*", "quoted.tool"]
    assert a.tool_policy == ["git_diff", "mcp.github.*", "*"]
    assert (a.session, a.tool_max_steps, a.reasoning_effort, a.readonly, a.await_mode) == (
        "inherit", 15, "extra_high", True, "best_effort")
    assert "session" in a.props and "backend" not in a.props


def test_readme_syntax_delegate_join_and_human_modes() -> None:
    tree = parse_ok('''
        agent implementer:
          delegate: "claude_code"
        join merge:
          strategy: best_effort
          require: [branch_a, branch_b]
          output: merged
        human approval:
          mode: pause_until_answers
          timeout: "48h"
          min_answers: 1
        human auto:
          mode: auto_answer
        human either:
          mode: auto_or_pause
        ''')
    [agent] = tree.of_type(A.AgentDecl)
    assert agent.backend == "claude_code" and "delegate" in agent.props
    [join] = tree.of_type(A.JoinDecl)
    assert (join.strategy, join.require, join.output) == ("best_effort", ["branch_a", "branch_b"], "merged")
    humans = {h.name: h for h in tree.of_type(A.HumanDecl)}
    assert {n: h.interaction for n, h in humans.items()} == {"approval": "human", "auto": "llm", "either": "llm_or_human"}
    assert humans["approval"].timeout == "48h"


def test_iterloop_wait_and_call_extensions() -> None:
    tree = parse_ok('''
        wait monitor:
          duration: "1d"
        tool flag:
          call: create_feature_flag
          output: flag_result
        ''')
    [w] = tree.of_type(A.WaitDecl)
    [t] = tree.of_type(A.ToolDecl)
    assert (w.duration, t.call, t.command) == ("1d", "create_feature_flag", "")


def test_tool_nodes_publish_artifacts() -> None:
    tree = parse_ok('''
        tool write_doc:
          call: write_learning_doc
          publish: learning_doc
        tool digest:
          command: "cat digest.json"
          publish: digest
        ''')
    tools = {t.name: t for t in tree.of_type(A.ToolDecl)}
    assert (tools["write_doc"].publish, tools["digest"].publish) == ("learning_doc", "digest")
    assert "publish" in tools["write_doc"].props


def test_workflow_items_in_any_order_and_property_named_sources() -> None:
    tree = parse_ok('''
        workflow w:
          entry -> done
          budget:
            max_parallel_branches: 2
            max_duration: "60m"
            max_cost_usd: 30.5
            max_tokens: 400000
            max_iterations: 10
          interaction: llm_or_human
          default_backend: "claude_code"
          tool_policy: [git_diff]
          vars:
            n: int = 5
          entry: entry
        ''')
    wf = tree.workflows[0]
    b = wf.budget
    assert b is not None
    assert (b.max_parallel_branches, b.max_duration, b.max_cost_usd, b.max_tokens, b.max_iterations) == (
        2, "60m", 30.5, 400000, 10)
    assert (wf.entry, wf.interaction, wf.default_backend, wf.tool_policy) == ("entry", "llm_or_human", "claude_code", ["git_diff"])
    assert [(e.source, e.target) for e in wf.edges] == [("entry", "done")]
    assert wf.vars is not None and wf.vars.fields[0].name == "n"


def test_keywords_usable_as_names_except_the_ten() -> None:
    parse_ok('agent input:\n  model: "m"\nworkflow w:\n  entry: input\n  input -> done\n')
    _, diags = parse('agent llm:\n  model: "m"\n')
    assert [d.code for d in diags] == ["E002"]


def test_prompt_body_keeps_relative_indentation_and_blank_lines() -> None:
    tree = parse_ok('''
        prompt review_user:
          Review this PR.

          Title: {{input.pr_title}}
            (relative indentation is preserved)
        ''')
    [p] = tree.of_type(A.PromptDecl)
    assert p.body == "Review this PR.\n\nTitle: {{input.pr_title}}\n  (relative indentation is preserved)"


def test_recovery_reports_each_problem_once_and_keeps_going() -> None:
    src = 'agent a:\n  model: "m"\n  bogus: 1\n  session: nope\nrouter r:\n  mode: sideways\nworkflow w:\n  entry: a\n  a -> done\n'
    result = dsl.check_source(src)
    parse_errors = [(d.code, d.line) for d in result.diagnostics if d.code.startswith("E")]
    assert parse_errors == [("E012", 3), ("E020", 4), ("E020", 6)]
    assert result.workflow is not None and "r" in result.workflow.nodes


def test_empty_block_is_e002_and_drops_the_declaration_but_not_the_next() -> None:
    tree, diags = parse('agent a:\nagent b:\n  model: "m"\n')
    assert [d.code for d in diags] == ["E002"]
    assert [a.name for a in tree.of_type(A.AgentDecl)] == ["b"]


def test_unknown_property_suggests_the_closest_one() -> None:
    _, diags = parse('agent a:\n  modle: "m"\n')
    assert diags[0].code == "E012" and "model" in diags[0].hint
