"""The IR → browser graph mapping (api/graph_model.py) and the event → visits fold (api/rest_console.py): pure parts."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runs import compile_ok

import dsl
from api.graph_model import graph_json
from api.rest_console import node_visits, render_markdown
from workflows.contract.state import Event

ROOT = Path(__file__).resolve().parents[2]

LOOP = """\
schema verdict:
  approved: bool
  score: int

agent writer:
  model: "scripted"
  output: verdict

judge reviewer:
  model: "scripted"
  output: verdict

workflow review:
  entry: writer
  writer -> reviewer
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(3)
  reviewer -> done when "outputs.reviewer.score > 8"
  reviewer -> fail when else
"""


def test_edges_keep_their_conditions_loops_and_order() -> None:
    graph = graph_json(compile_ok(textwrap.dedent(LOOP)))
    assert [(e["id"], e["from"], e["to"], e["when"], e["loop"]) for e in graph["edges"]] == [
        ("e0", "writer", "reviewer", None, None),
        ("e1", "reviewer", "done", "approved", None),
        ("e2", "reviewer", "writer", "not approved", {"name": "revise", "max": 3}),
        ("e3", "reviewer", "done", '"outputs.reviewer.score > 8"', None),
        ("e4", "reviewer", "fail", "else", None)]


def test_node_props_leave_out_defaults_and_names() -> None:
    graph = graph_json(compile_ok(textwrap.dedent(LOOP)))
    writer = graph["nodes"][0]
    assert writer["id"] == "writer" and writer["kind"] == "agent"
    assert writer["props"] == {"model": "scripted", "output_schema": "verdict"}


def test_every_example_workflow_becomes_one_graph_node_per_ir_node() -> None:
    checked = 0
    for path in sorted((ROOT / "examples").rglob("*.iter")):
        result = dsl.check_file(path)
        if result.workflow is None:
            continue
        graph = graph_json(result.workflow)
        assert [n["id"] for n in graph["nodes"]] == list(result.workflow.nodes), path
        assert len(graph["edges"]) == len(result.workflow.edges), path
        checked += 1
    assert checked > 5


def event(seq: int, kind: str, node: str, **data: object) -> Event:
    return Event(seq=seq, time=f"2026-12-08T00:00:{seq:02d}+00:00", type=kind, node=node, data=dict(data))


def test_a_visit_spans_start_to_finish_and_keeps_the_edge_it_took() -> None:
    events = [event(1, "node_started", "w", visit=1), event(2, "llm_step_finished", "w", turn=1, status="final",
                                                              input_tokens=10, output_tokens=5, cost_usd=0.01),
              event(3, "node_finished", "w", output={"a": 1}), event(4, "edge_selected", "w", **{"from": "w", "to": "r"}),
              event(5, "node_started", "w", visit=2), event(6, "tool_called", "w", tool="fetch"),
              event(7, "node_failed", "w", error="boom", resumable=True)]
    first, second = node_visits(events, "w")
    assert (first.visit, first.status, first.output, first.last_seq) == (1, "succeeded", {"a": 1}, 4)
    assert (first.input_tokens, first.output_tokens, first.cost_usd) == (10, 5, 0.01)
    assert (second.visit, second.status, second.error) == (2, "failed", "boom")
    assert [(c.tool, c.outcome) for c in second.tool_calls] == [("fetch", "called")]


def test_a_gate_visit_waits_then_records_who_answered() -> None:
    events = [event(1, "node_started", "g", visit=1),
              event(2, "human_input_requested", "g", questions={"plan": "x", "_internal": 1})]
    [waiting] = node_visits(events, "g")
    assert waiting.status == "waiting" and waiting.questions == {"plan": "x"}
    [done] = node_visits([*events, event(3, "gate_answered", "g", by="ada"), event(4, "node_finished", "g")], "g")
    assert done.status == "succeeded" and done.answered_by == "ada"


def test_markdown_keeps_html_as_text() -> None:
    html = render_markdown("**hi** <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[a](javascript:alert(1))")
    assert "<strong>hi</strong>" in html and "&lt;script&gt;" in html and "&lt;img" in html
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
