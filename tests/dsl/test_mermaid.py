"""Mermaid rendering of compiled workflows (reference §7, plus iterloop's join/wait nodes)."""

from __future__ import annotations

import re
import textwrap

import pytest

import dsl
from dsl.ir import Workflow
from dsl.mermaid import VIEWS, to_mermaid


def compile_ok(source: str) -> Workflow:
    result = dsl.check_source(textwrap.dedent(source))
    assert result.ok, result.diagnostics
    assert result.workflow is not None
    return result.workflow


def lines_of(text: str) -> list[str]:
    return text.split("\n")


REVIEWER = """
schema review_input:
  description: string
schema review_output:
  approved: bool
  summary: string
prompt sys:
  You review.
prompt usr:
  Review {{input.description}}
agent reviewer:
  model: "test-model"
  input: review_input
  output: review_output
  system: sys
  user: usr
workflow test_workflow:
  entry: reviewer
  reviewer -> done when approved
  reviewer -> fail when not approved as retry(2) with { note: "{{outputs.reviewer.summary}}" }
"""

FAN_OUT = """
schema s:
  approved: bool
agent a:
  model: "m"
  output: s
agent b:
  model: "m"
  output: s
router r:
  mode: fan_out_all
join j:
  strategy: wait_all
  require: [a, b]
wait pause:
  duration: "1h"
workflow w:
  entry: r
  r -> a
  r -> b
  a -> j
  b -> j
  j -> pause
  pause -> done
"""

CLASS_DEFS = """\
    classDef agent fill:#4A90D9,stroke:#2C5F8A,color:#fff
    classDef judge fill:#7B68EE,stroke:#5A4CB5,color:#fff
    classDef router fill:#F5A623,stroke:#C47D0E,color:#fff
    classDef join fill:#20B2AA,stroke:#147A74,color:#fff
    classDef human fill:#FF6B6B,stroke:#CC4444,color:#fff
    classDef tool fill:#A0522D,stroke:#6E3720,color:#fff
    classDef wait fill:#95A5A6,stroke:#6C7A7B,color:#fff
    classDef compute fill:#34495E,stroke:#1F2D3A,color:#fff
    classDef subbot fill:#8E44AD,stroke:#5E2D73,color:#fff
    classDef done fill:#2ECC71,stroke:#1A8B4C,color:#fff
    classDef fail fill:#E74C3C,stroke:#A93226,color:#fff
"""


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_starts_with_flowchart(view: str) -> None:
    out = to_mermaid(compile_ok(REVIEWER), view)
    assert out.startswith("flowchart TD\n")
    assert out.endswith("\n")
    assert CLASS_DEFS in out


def test_default_view_is_compact() -> None:
    wf = compile_ok(REVIEWER)
    assert to_mermaid(wf) == to_mermaid(wf, "compact")


def test_unknown_view_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        to_mermaid(compile_ok(REVIEWER), "huge")
    for view in VIEWS:
        assert view in str(info.value)


def test_reference_example_compact() -> None:
    out = to_mermaid(compile_ok(REVIEWER), "compact")
    expected = (
        "flowchart TD\n"
        '    done(["✅ done"])\n'
        '    fail(["❌ fail"])\n'
        '    reviewer["🤖 reviewer"]\n'
        "\n"
        '    reviewer -->|"approved"| done\n'
        '    reviewer -->|"NOT approved / loop:retry(2)"| fail\n'
        "\n"
    )
    classes = "    class reviewer agent\n    class done done\n    class fail fail\n"
    assert out == expected + CLASS_DEFS + classes


def test_reference_example_detailed() -> None:
    lines = lines_of(to_mermaid(compile_ok(REVIEWER), "detailed"))
    assert (
        '    reviewer["🤖 reviewer<br/>model: test-model<br/>in: review_input<br/>out: review_output"]'
        in lines
    )
    assert (
        '    reviewer -->|"NOT approved / loop:retry(2) / with: note={{outputs.reviewer.summary}}"| fail'
        in lines
    )


def test_reference_example_full() -> None:
    out = to_mermaid(compile_ok(REVIEWER), "full")
    assert out.startswith(
        "flowchart TD\n"
        '    subgraph workflow_meta["test_workflow (entry: reviewer)"]\n'
        "        direction LR\n"
        '        meta_loops["<b>Loops</b><br/>retry: max 2"]\n'
        "    end\n"
        "\n"
        '    done(["✅ done"])\n'
    )
    assert (
        '    reviewer["🤖 reviewer<br/>model: test-model<br/>in: review_input (description: string)'
        "<br/>out: review_output (approved: bool, summary: string)<br/>session: fresh"
        '<br/>system: sys<br/>user: usr"]' in lines_of(out)
    )


def test_compact_shapes_for_router_and_human() -> None:
    wf = compile_ok(
        """
        router r:
          mode: fan_out_all
        human h:
          interaction: human
        tool t:
          command: "echo hi"
        workflow w:
          entry: r
          r -> h
          r -> t
          h -> done
          t -> done
        """
    )
    lines = lines_of(to_mermaid(wf, "compact"))
    assert '    r{"🔀 r"}' in lines
    assert '    h>"👤 h"]' in lines
    assert '    t["🔧 t"]' in lines
    assert "    h --> done" in lines
    assert "    r --> t" in lines


def test_awaiting_agent_uses_subroutine_shape_and_await_line() -> None:
    wf = compile_ok(
        """
        router r:
          mode: fan_out_all
        agent a:
          model: "m"
        agent b:
          model: "m"
        agent c:
          model: "m"
          await: best_effort
        workflow w:
          entry: r
          r -> a
          r -> b
          a -> c
          b -> c
          c -> done
        """
    )
    assert '    c[["🤖 c"]]' in lines_of(to_mermaid(wf, "compact"))
    assert '    c[["🤖 c<br/>model: m<br/>await: best_effort"]]' in lines_of(to_mermaid(wf, "detailed"))


def test_loop_label_and_unlabeled_edge() -> None:
    wf = compile_ok(
        """
        schema v:
          ok: bool
        agent a:
          model: "m"
          output: v
        agent b:
          model: "m"
        workflow w:
          entry: a
          a -> b when not ok as again(5)
          a -> done when ok
          b -> a
        """
    )
    lines = lines_of(to_mermaid(wf, "compact"))
    assert '    a -->|"NOT ok / loop:again(5)"| b' in lines
    assert '    a -->|"ok"| done' in lines
    assert "    b --> a" in lines


def test_full_view_metadata() -> None:
    wf = compile_ok(
        """
        schema v:
          ok: bool
        agent a:
          model: "m"
          output: v
        workflow w:
          vars:
            name: string
            count: int = 3
            ratio: float = 0.25
            verbose: bool = false
            greeting: string = "hello"
          entry: a
          budget:
            max_parallel_branches: 2
            max_duration: "30m"
            max_cost_usd: 10.5
          a -> a when not ok as retry(3)
          a -> done when ok
        """
    )
    out = to_mermaid(wf, "full")
    assert out.startswith(
        "flowchart TD\n"
        '    subgraph workflow_meta["w (entry: a)"]\n'
        "        direction LR\n"
        '        meta_vars["<b>Variables</b><br/>count: int = 3<br/>greeting: string = hello'
        '<br/>name: string<br/>ratio: float = 0.25<br/>verbose: bool = false"]\n'
        '        meta_budget["<b>Budget</b><br/>max_parallel: 2<br/>max_duration: 30m'
        '<br/>max_cost: $10.50"]\n'
        '        meta_loops["<b>Loops</b><br/>retry: max 3"]\n'
        "    end\n"
        "\n"
    )
    # The other views never show the metadata box.
    assert "workflow_meta" not in to_mermaid(wf, "detailed")


def test_full_view_without_metadata_has_no_subgraph() -> None:
    wf = compile_ok(
        """
        agent a:
          model: "m"
        workflow w:
          entry: a
          a -> done
        """
    )
    out = to_mermaid(wf, "full")
    assert "subgraph" not in out
    assert out.startswith('flowchart TD\n    a["🤖 a<br/>model: m<br/>session: fresh"]\n')


def test_schema_expansion_is_capped_at_four_fields() -> None:
    wf = compile_ok(
        """
        schema big:
          f1: string
          f2: int
          f3: bool
          f4: string [enum: "x", "y"]
          f5: float
          f6: json
        agent a:
          model: "m"
          output: big
        workflow w:
          entry: a
          a -> done
        """
    )
    out = to_mermaid(wf, "full")
    assert "out: big (f1: string, f2: int, f3: bool, f4: string [x|y], +2 more)" in out
    assert '    a["🤖 a<br/>model: m<br/>out: big"]' in lines_of(to_mermaid(wf, "detailed"))


def test_detailed_edge_label_shows_with_mappings() -> None:
    wf = compile_ok(
        """
        agent a:
          model: "m"
        agent b:
          model: "m"
        workflow w:
          entry: a
          a -> b with { x: "{{outputs.a}}", y: "lit" }
          b -> done
        """
    )
    assert '    a -->|"with: x={{outputs.a}}, y=lit"| b' in lines_of(to_mermaid(wf, "detailed"))
    assert '    a -->|"with: x={{outputs.a}}, y=lit"| b' in lines_of(to_mermaid(wf, "full"))
    assert "    a --> b" in lines_of(to_mermaid(wf, "compact"))


def test_class_lines_follow_kind_order_and_are_deterministic() -> None:
    wf = compile_ok(FAN_OUT)
    out = to_mermaid(wf, "compact")
    class_lines = [line for line in lines_of(out) if line.startswith("    class ")]
    assert class_lines == [
        "    class a,b agent",
        "    class r router",
        "    class j join",
        "    class pause wait",
        "    class done done",
        "    class fail fail",
    ]
    # Same IR with nodes inserted in another order renders identically.
    shuffled = wf.model_copy(update={"nodes": dict(reversed(list(wf.nodes.items())))})
    assert to_mermaid(shuffled, "compact") == out


def test_node_lines_are_sorted_by_id() -> None:
    out = to_mermaid(compile_ok(FAN_OUT), "compact")
    node_lines = out.split("\n\n")[0].split("\n")[1:]
    node_ids = [re.match(r"    (\w+)", line).group(1) for line in node_lines]  # type: ignore[union-attr]
    assert node_ids == ["a", "b", "done", "fail", "j", "pause", "r"]
    assert node_ids == sorted(node_ids)


def test_quotes_in_labels_are_escaped() -> None:
    wf = compile_ok(
        r"""
        tool t:
          command: "echo \"hi\""
        workflow w:
          entry: t
          t -> done
        """
    )
    node_line = next(line for line in lines_of(to_mermaid(wf, "detailed")) if line.startswith("    t["))
    assert node_line.count('"') == 2  # only the label delimiters
    assert "#quot;" in node_line
    assert node_line.startswith('    t["🔧 t<br/>cmd: echo ')


def test_join_and_wait_shapes_and_details() -> None:
    wf = compile_ok(FAN_OUT)
    compact = lines_of(to_mermaid(wf, "compact"))
    assert '    j{{"🔗 j"}}' in compact
    assert '    pause[/"⏳ pause"/]' in compact
    detailed = lines_of(to_mermaid(wf, "detailed"))
    assert '    j{{"🔗 j<br/>strategy: wait_all<br/>require: a, b"}}' in detailed
    assert '    pause[/"⏳ pause<br/>duration: 1h"/]' in detailed
    assert '    r{"🔀 r<br/>mode: fan_out_all"}' in detailed


def test_human_details_and_tool_call() -> None:
    wf = compile_ok(
        """
        schema answer:
          ok: bool
        human h:
          interaction: human
          output: answer
          min_answers: 2
          timeout: "2h"
        tool t:
          call: read_file
        workflow w:
          entry: h
          h -> t
          t -> done
        """
    )
    detailed = lines_of(to_mermaid(wf, "detailed"))
    assert '    h>"👤 h<br/>interaction: human<br/>min_answers: 2<br/>timeout: 2h"]' in detailed
    assert '    t["🔧 t<br/>call: read_file"]' in detailed
    full = lines_of(to_mermaid(wf, "full"))
    human_full = '    h>"👤 h<br/>interaction: human<br/>out: answer (ok: bool)<br/>min_answers: 2<br/>timeout: 2h"]'
    assert human_full in full


def test_tool_publish_is_shown_in_detailed_and_full_views() -> None:
    wf = compile_ok(
        """
        schema written:
          path: string
        tool doc:
          call: write_learning_doc
          output: written
          publish: learning_doc
        tool digest:
          command: "cat digest.json"
          publish: digest
        workflow w:
          entry: doc
          doc -> digest
          digest -> done
        """
    )
    assert '    doc["🔧 doc"]' in lines_of(to_mermaid(wf, "compact"))
    detailed = lines_of(to_mermaid(wf, "detailed"))
    assert '    doc["🔧 doc<br/>call: write_learning_doc<br/>publish: learning_doc"]' in detailed
    assert '    digest["🔧 digest<br/>cmd: cat digest.json<br/>publish: digest"]' in detailed
    full = lines_of(to_mermaid(wf, "full"))
    assert '    doc["🔧 doc<br/>call: write_learning_doc<br/>out: written (path: string)<br/>publish: learning_doc"]' in full


def test_dashes_in_ids_become_underscores() -> None:
    # `.iter` names cannot contain '-', but an IR loaded from JSON can; Mermaid ids must not.
    wf = Workflow.model_validate(
        {
            "name": "w",
            "entry": "my-agent",
            "nodes": {
                "my-agent": {"id": "my-agent", "kind": "agent", "model": "m"},
                "done": {"id": "done", "kind": "done"},
                "fail": {"id": "fail", "kind": "fail"},
            },
            "edges": [{"from": "my-agent", "to": "done"}],
        }
    )
    lines = lines_of(to_mermaid(wf, "compact"))
    assert '    my_agent["🤖 my-agent"]' in lines
    assert "    my_agent --> done" in lines
    assert "    class my_agent agent" in lines
