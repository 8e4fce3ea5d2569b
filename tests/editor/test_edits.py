"""dsl/edits.py: every op of the editor protocol, comments kept, and `iterloop fmt` when nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import check_source, parse
from dsl.edits import EditError, SourceHasErrors, apply_edits
from dsl.unparse import format_source

ROOT = Path(__file__).resolve().parents[2]

COMMENTED = """\
## the writer drafts
agent writer:  ## inline note
  model: "m"
  ## what it produces
  output: draft

schema draft:
  text: string

workflow review:
  entry: writer
  ## the only edge
  writer -> done
## the end
"""


def comments(source: str) -> list[str]:
    return sorted(c.text for c in parse(source)[0].comments)


def nodes(source: str) -> dict[str, object]:
    return {d.name: d for d in parse(source)[0].nodes}


def edges(source: str) -> list[tuple[str, str]]:
    return [(e.source, e.target) for e in parse(source)[0].workflows[0].edges]


EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".iter", ".bot"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_ops_give_what_iterloop_fmt_prints(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert apply_edits(source, []) == format_source(source)


def test_add_node_and_edge_keep_every_comment() -> None:
    out = apply_edits(COMMENTED, [
        {"op": "add_node", "kind": "judge", "name": "critic", "props": {"output": "draft"}},
        {"op": "add_edge", "from": "writer", "to": "critic"},
    ])
    assert comments(out) == comments(COMMENTED)
    assert "agent writer:  ## inline note" in out
    assert ("writer", "critic") in edges(out)
    assert nodes(out)["critic"].kind == "judge"


def test_rename_keeps_comments_and_updates_edges_and_entry() -> None:
    out = apply_edits(COMMENTED, [{"op": "rename_node", "name": "writer", "new_name": "author"}])
    wf = parse(out)[0].workflows[0]
    assert wf.entry == "author"
    assert [(e.source, e.target) for e in wf.edges] == [("author", "done")]
    assert comments(out) == comments(COMMENTED)


def test_remove_node_removes_its_edges_and_entry() -> None:
    source = apply_edits(COMMENTED, [{"op": "add_node", "kind": "agent", "name": "other"},
                                     {"op": "add_edge", "from": "other", "to": "writer"}])
    out = apply_edits(source, [{"op": "remove_node", "name": "writer"}])
    assert "writer" not in nodes(out)
    assert edges(out) == []


def test_add_node_on_an_empty_file_after_ensure_workflow_parses_and_sets_entry() -> None:
    out = apply_edits("", [{"op": "ensure_workflow", "name": "flow"},
                           {"op": "add_node", "kind": "agent", "name": "first"}])
    tree, diags = parse(out)
    assert not [d for d in diags if d.is_error]
    assert tree.workflows[0].name == "flow" and tree.workflows[0].entry == "first"


@pytest.mark.parametrize(("kind", "key", "value"), [("agent", "model", "openai/gpt-5"),
                                                  ("tool", "call", "echo"),
                                                  ("human", "min_answers", 2)])
def test_the_first_real_property_replaces_the_placeholder(kind: str, key: str, value: object) -> None:
    """A node added bare gets a placeholder so the file parses; the first property written replaces it,
    and removing that property again brings the placeholder back."""
    out = apply_edits("", [{"op": "ensure_workflow", "name": "flow"}, {"op": "add_node", "kind": kind, "name": "n"}])
    assert len(nodes(out)["n"].props) == 1  # the placeholder
    out = apply_edits(out, [{"op": "set_node_property", "name": "n", "key": key, "value": value}])
    assert list(nodes(out)["n"].props) == [key]
    out = apply_edits(out, [{"op": "set_node_property", "name": "n", "key": key, "value": None}])
    assert len(nodes(out)["n"].props) == 1 and not [d for d in parse(out)[1] if d.is_error]


def test_a_written_property_that_looks_like_the_placeholder_stays_beside_others() -> None:
    """Only a node whose single property is the placeholder loses it; a node with more keeps everything."""
    source = 'agent a:\n  session: fresh\n  model: "openai/gpt-5"\n\nworkflow w:\n  entry: a\n  a -> done\n'
    out = apply_edits(source, [{"op": "set_node_property", "name": "a", "key": "max_tokens", "value": 100}])
    assert set(nodes(out)["a"].props) == {"session", "model", "max_tokens"}


def test_ensure_workflow_keeps_an_existing_workflow() -> None:
    out = apply_edits(COMMENTED, [{"op": "ensure_workflow", "name": "other"}])
    assert [w.name for w in parse(out)[0].workflows] == ["review"]


def test_set_workflow_sets_name_entry_and_budget_and_removes_budget() -> None:
    out = apply_edits(COMMENTED, [{"op": "set_workflow", "name": "renamed", "entry": "writer",
                                   "budget": {"max_cost_usd": 2.5, "max_iterations": 4}}])
    wf = parse(out)[0].workflows[0]
    assert (wf.name, wf.entry, wf.budget.max_cost_usd, wf.budget.max_iterations) == ("renamed", "writer", 2.5, 4)
    assert parse(apply_edits(out, [{"op": "set_workflow", "budget": None}]))[0].workflows[0].budget is None


def test_set_node_property_sets_and_null_removes() -> None:
    out = apply_edits(COMMENTED, [{"op": "set_node_property", "name": "writer", "key": "tools",
                                   "value": ["funnels.get", "stats.*"]},
                                  {"op": "set_node_property", "name": "writer", "key": "model", "value": None}])
    writer = nodes(out)["writer"]
    assert writer.tools == ["funnels.get", "stats.*"]
    assert "model" not in writer.props


def test_set_node_property_keeps_the_spelling_it_is_given() -> None:
    out = apply_edits(COMMENTED, [{"op": "set_node_property", "name": "writer", "key": "delegate",
                                   "value": "claude_code"}])
    assert "  delegate: \"claude_code\"" in out


def test_add_edge_with_when_loop_and_with_is_written_as_given() -> None:
    source = apply_edits(COMMENTED, [{"op": "add_node", "kind": "judge", "name": "critic"}])
    out = apply_edits(source, [{"op": "add_edge", "from": "critic", "to": "writer", "when": "not approved",
                                "loop": {"name": "rework", "max": 3}, "with": {"notes": "{{outputs.critic}}"}}])
    assert "critic -> writer when not approved as rework(3) with {" in out
    assert 'notes: "{{outputs.critic}}"' in out


def test_update_edge_changes_only_what_is_given_and_null_clears() -> None:
    source = apply_edits(COMMENTED, [{"op": "update_edge", "index": 0, "when": '"x > 1"', "loop": {"name": "l",
                                                                                                      "max": 2}}])
    assert 'writer -> done when "x > 1" as l(2)' in source
    out = apply_edits(source, [{"op": "update_edge", "index": 0, "when": None, "to": "fail"}])
    assert "writer -> fail as l(2)" in out
    assert comments(out) == comments(COMMENTED)


def test_remove_edge() -> None:
    assert edges(apply_edits(COMMENTED, [{"op": "remove_edge", "index": 0}])) == []


def test_schema_prompt_and_var_ops() -> None:
    out = apply_edits(COMMENTED, [
        {"op": "set_schema", "name": "verdict", "fields": [{"name": "approved", "type": "bool"},
                                                          {"name": "level", "type": "string", "enum": ["a", "b"]}]},
        {"op": "set_prompt", "name": "ask", "text": "Review {{outputs.writer.text}}\nCarefully."},
        {"op": "set_var", "name": "topic", "type": "string", "default": "checkout"},
    ])
    result = check_source(out)
    assert result.workflow is not None
    assert [f.name for f in result.workflow.schemas["verdict"].fields] == ["approved", "level"]
    assert result.workflow.schemas["verdict"].fields[1].enum_values == ["a", "b"]
    assert result.workflow.prompts["ask"].body == "Review {{outputs.writer.text}}\nCarefully."
    assert result.workflow.vars["topic"].default == "checkout"
    out = apply_edits(out, [{"op": "remove_schema", "name": "verdict"}, {"op": "remove_prompt", "name": "ask"},
                            {"op": "remove_var", "name": "topic"}])
    assert "verdict" not in out and "prompt ask" not in out and "topic" not in out
    assert not [d for d in parse(out)[1] if d.is_error]


def test_errors_name_the_op_and_its_index() -> None:
    with pytest.raises(EditError) as info:
        apply_edits(COMMENTED, [{"op": "remove_edge", "index": 0}, {"op": "remove_node", "name": "ghost"}])
    assert info.value.index == 1 and info.value.op == "remove_node"
    assert "op 1 (remove_node)" in str(info.value) and "ghost" in str(info.value)


def test_a_bad_property_value_is_refused_with_the_parsers_reason() -> None:
    with pytest.raises(EditError, match="set_node_property.*session"):
        apply_edits(COMMENTED, [{"op": "set_node_property", "name": "writer", "key": "session", "value": "sometimes"}])


def test_a_source_with_parse_errors_is_refused() -> None:
    with pytest.raises(SourceHasErrors):
        apply_edits("agent a:\n  model: \"x\n", [])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_edits_on_every_example_keep_its_comments_and_parse(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    tree, _ = parse(source)
    first = tree.nodes[0].name
    out = apply_edits(source, [
        {"op": "add_node", "kind": "agent", "name": "added_by_editor", "props": {"model": "scripted"}},
        {"op": "add_edge", "from": "added_by_editor", "to": "done"},
        {"op": "rename_node", "name": first, "new_name": f"{first}_renamed"},
    ])
    assert not [d for d in parse(out)[1] if d.is_error]
    assert comments(out) == comments(source)
    assert f"{first}_renamed" in nodes(out) and first not in nodes(out)
    assert apply_edits(out, []) == out  # what an edit prints is already formatted


def test_set_workflow_with_an_empty_entry_removes_it() -> None:
    out = apply_edits(COMMENTED, [{"op": "set_workflow", "entry": ""}])
    assert parse(out)[0].workflows[0].entry == "" and "entry:" not in out
