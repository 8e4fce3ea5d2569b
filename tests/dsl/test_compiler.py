"""AST → IR: Iterion's compile semantics, the IR's JSON round trip, its version and content hash."""

from __future__ import annotations

import json
import textwrap

import pytest

import dsl
from dsl import ir
from dsl.compiler import CompileOptions


def compile_ok(src: str, options: CompileOptions | None = None) -> ir.Workflow:
    result = dsl.check_source(textwrap.dedent(src).lstrip("\n"), options=options)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


REFERENCE_EXAMPLE = """
schema s:
  approved: bool
prompt sys:
  Review {{input.approved}}
agent a:
  model: "m"
  input: s
  output: s
  system: sys
workflow w:
  entry: a
  a -> done when approved
  a -> a when not approved as retry(3) with {
    prev: "{{outputs.a}}"
  }
"""


def test_reference_example_compiles_to_the_documented_ir() -> None:
    wf = compile_ok(REFERENCE_EXAMPLE)
    assert sorted(wf.nodes) == ["a", "done", "fail"]
    a = wf.nodes["a"]
    assert isinstance(a, ir.AgentNode)
    assert (a.model, a.input_schema, a.output_schema, a.system_prompt, a.session, a.interaction, a.await_mode) == (
        "m", "s", "s", "sys", "fresh", "none", "none")
    first, second = wf.edges
    assert (first.source, first.target, first.condition, first.negated, first.loop_name) == ("a", "done", "approved", False, "")
    assert (second.target, second.negated, second.loop_name) == ("a", True, "retry")
    assert second.with_ == [ir.DataMapping(key="prev", raw="{{outputs.a}}",
                                           refs=[ir.Ref(kind="outputs", path=["a"], raw="{{outputs.a}}")])]
    assert wf.loops == {"retry": ir.Loop(name="retry", max_iterations=3)}
    assert wf.prompts["sys"].template_refs == [ir.Ref(kind="input", path=["approved"], raw="{{input.approved}}")]


def test_ir_json_round_trip_is_lossless_and_uses_from_to_keys() -> None:
    wf = compile_ok(REFERENCE_EXAMPLE)
    text = wf.to_json()
    data = json.loads(text)
    assert data["format_version"] == ir.IR_FORMAT_VERSION
    assert data["edges"][0]["from"] == "a" and "with" in data["edges"][1]
    again = ir.Workflow.from_json(text)
    assert again == wf and again.compute_hash() == wf.content_hash


def test_content_hash_is_stable_and_changes_with_meaning_not_layout() -> None:
    base = compile_ok(REFERENCE_EXAMPLE)
    relaid = compile_ok("## a comment\n" + REFERENCE_EXAMPLE.replace("  model:", "\n  model:"))
    changed = compile_ok(REFERENCE_EXAMPLE.replace("retry(3)", "retry(4)"))
    assert base.content_hash.startswith("sha256:")
    assert base.content_hash == relaid.content_hash
    assert base.content_hash != changed.content_hash


def test_unknown_format_version_is_visible_to_the_interpreter() -> None:
    data = json.loads(compile_ok(REFERENCE_EXAMPLE).to_json())
    data["format_version"] = 999
    assert ir.Workflow.model_validate(data).format_version == 999  # the interpreter rejects it, not pydantic


def test_workflow_vars_override_top_level_vars() -> None:
    wf = compile_ok('''
        vars:
          global_var: string = "default_global"
        agent a:
          model: "m"
        workflow w:
          vars:
            local_var: int = 42
            global_var: string = "overridden"
            ratio: float = 1
            cfg: json = {"a": [1, 2]}
          entry: a
          a -> done
        ''')
    assert {n: (v.type, v.default) for n, v in wf.vars.items()} == {
        "global_var": ("string", "overridden"), "local_var": ("int", 42), "ratio": ("float", 1.0),
        "cfg": ("json", {"a": [1, 2]})}
    assert isinstance(wf.vars["ratio"].default, float)


def test_budget_values_and_parsed_duration() -> None:
    wf = compile_ok('''
        agent a:
          model: "m"
        workflow w:
          entry: a
          budget:
            max_parallel_branches: 2
            max_duration: "1h30m"
            max_cost_usd: 30
            max_tokens: 400000
            max_iterations: 10
          a -> done
        ''')
    assert wf.budget == ir.Budget(max_parallel_branches=2, max_duration="1h30m", max_duration_seconds=5400.0,
                                  max_cost_usd=30.0, max_tokens=400000, max_iterations=10)


def test_no_budget_block_means_no_budget() -> None:
    assert compile_ok('agent a:\n  model: "m"\nworkflow w:\n  entry: a\n  a -> done\n').budget is None


def test_mcp_servers_and_blocks() -> None:
    wf = compile_ok('''
        mcp_server github:
          transport: http
          url: "http://localhost:3000/mcp"
        mcp_server local:
          transport: stdio
          command: "npx"
          args: ["-y", "server"]
        agent a:
          model: "m"
          mcp:
            inherit: true
            servers: [github]
        workflow w:
          entry: a
          mcp:
            autoload_project: true
            servers: [github, local]
          a -> done
        ''')
    assert wf.mcp_servers["github"].transport == "http" and wf.mcp_servers["local"].args == ["-y", "server"]
    assert wf.mcp is not None and wf.mcp.autoload_project is True and wf.mcp.servers == ["github", "local"]
    a = wf.nodes["a"]
    assert isinstance(a, ir.AgentNode) and a.mcp is not None and a.mcp.inherit is True


def test_default_model_fills_agents_judges_and_llm_routers() -> None:
    wf = compile_ok('''
        agent a:
          publish: x
        judge j:
          publish: y
        router r:
          mode: llm
        workflow w:
          entry: r
          r -> a
          r -> j
          a -> done
          j -> done
        ''', CompileOptions(default_model="openai/gpt-4.1"))
    assert [wf.nodes[n].model for n in ("a", "j", "r")] == ["openai/gpt-4.1"] * 3  # type: ignore[union-attr]


def test_llm_router_with_backend_needs_no_model() -> None:
    wf = compile_ok('''
        prompt route:
          Pick one.
        agent a:
          model: "m"
        agent b:
          model: "m"
        router r:
          mode: llm
          backend: "claude_code"
          system: route
          multi: true
        workflow w:
          entry: r
          r -> a
          r -> b
          a -> done
          b -> done
        ''')
    r = wf.nodes["r"]
    assert isinstance(r, ir.RouterNode) and (r.backend, r.system_prompt, r.router_multi) == ("claude_code", "route", True)


def test_non_llm_router_drops_llm_fields_and_reports_c023_per_property() -> None:
    result = dsl.check_source('agent a:\n  model: "m"\nrouter r:\n  mode: fan_out_all\n  model: "m"\n'
                              '  delegate: "codex"\n  multi: true\nworkflow w:\n  entry: r\n  r -> a\n  a -> done\n')
    assert [d.code for d in result.diagnostics] == ["C023", "C023", "C023"]
    assert result.workflow is not None and result.workflow.nodes["r"].model == ""  # type: ignore[union-attr]


def test_interaction_resolution_for_humans_and_agents() -> None:
    wf = compile_ok('''
        schema ans:
          ok: bool
        agent a:
          backend: "claude_code"
        human plain:
          output: ans
          interaction_model: "small"
        human auto:
          mode: auto_answer
          model: "m"
          output: ans
          system: p
        prompt p:
          Answer.
        workflow w:
          entry: a
          interaction: llm_or_human
          a -> plain
          plain -> auto
          auto -> done
        ''')
    assert wf.nodes["a"].interaction == "llm_or_human"  # type: ignore[union-attr]
    plain, auto = wf.nodes["plain"], wf.nodes["auto"]
    assert isinstance(plain, ir.HumanNode) and isinstance(auto, ir.HumanNode)
    assert (plain.interaction, auto.interaction, auto.model, auto.system_prompt) == ("llm_or_human", "llm", "m", "p")


def test_human_model_dropped_unless_llm_answered() -> None:
    wf = compile_ok('human h:\n  model: "m"\n  timeout: "2d"\nworkflow w:\n  entry: h\n  h -> done\n')
    h = wf.nodes["h"]
    assert isinstance(h, ir.HumanNode) and (h.interaction, h.model, h.timeout_seconds) == ("human", "", 172800.0)


def test_tool_command_refs_call_join_and_wait_nodes() -> None:
    wf = compile_ok('''
        schema in_s:
          message: string
        tool shell:
          input: in_s
          command: "echo {{input.message}}"
        tool flag:
          call: create_feature_flag
        join j:
          strategy: best_effort
          require: [shell, flag]
        wait pause:
          duration: "1d12h"
        router r:
          mode: fan_out_all
        workflow w:
          entry: r
          r -> shell
          r -> flag
          shell -> j
          flag -> j
          j -> pause
          pause -> done
        ''')
    shell, flag, j, pause = (wf.nodes[n] for n in ("shell", "flag", "j", "pause"))
    assert isinstance(shell, ir.ToolNode) and shell.command_refs == [
        ir.Ref(kind="input", path=["message"], raw="{{input.message}}")]
    assert isinstance(flag, ir.ToolNode) and flag.call == "create_feature_flag"
    assert isinstance(j, ir.JoinNode) and (j.await_mode, j.require) == ("best_effort", ["shell", "flag"])
    assert isinstance(pause, ir.WaitNode) and pause.duration_seconds == 129600.0


def test_tool_publish_reaches_the_ir_and_old_ir_without_it_still_loads() -> None:
    wf = compile_ok('''
        tool write_doc:
          call: write_learning_doc
          publish: learning_doc
        tool digest:
          command: "cat digest.json"
          publish: digest
        workflow w:
          entry: write_doc
          write_doc -> digest
          digest -> done
        ''')
    assert (wf.publish_of("write_doc"), wf.publish_of("digest")) == ("learning_doc", "digest")
    # IR written before tool nodes could publish has no `publish` key on them: it means "none".
    data = json.loads(wf.to_json())
    for node in ("write_doc", "digest"):
        del data["nodes"][node]["publish"]
    old = ir.Workflow.model_validate(data)
    assert old.format_version == ir.IR_FORMAT_VERSION and old.publish_of("write_doc") == ""


def test_env_references_stay_unresolved() -> None:
    wf = compile_ok('vars:\n  d: string = "${PROJECT_DIR}"\nagent a:\n  model: "${MODEL}"\n'
                    'tool t:\n  command: "${CI_COMMAND}"\nworkflow w:\n  entry: a\n  a -> t\n  t -> done\n')
    assert wf.vars["d"].default == "${PROJECT_DIR}" and wf.nodes["a"].model == "${MODEL}"  # type: ignore[union-attr]
    assert wf.nodes["t"].command == "${CI_COMMAND}"  # type: ignore[union-attr]


def test_later_duplicate_wins_in_compile_order_with_a_warning() -> None:
    result = dsl.check_source('agent x:\n  model: "agent-model"\ntool x:\n  command: "echo"\n'
                              'workflow w:\n  entry: x\n  x -> done\n')
    assert result.workflow is not None and result.workflow.nodes["x"].kind == "tool"
    assert [d.code for d in result.diagnostics] == ["C108"]


def test_no_workflow_gives_only_c006_and_no_ir() -> None:
    result = dsl.check_source("schema s:\n  ok: bool\nagent a:\n  output: nope\n")
    assert result.workflow is None and [d.code for d in result.diagnostics] == ["C006"]


@pytest.mark.parametrize("text", ["{{vars.review_rules}}", "{{ vars.review_rules }}"])
def test_template_whitespace_is_trimmed(text: str) -> None:
    from dsl.templates import extract_refs

    assert extract_refs(text) == [ir.Ref(kind="vars", path=["review_rules"], raw=text)]
