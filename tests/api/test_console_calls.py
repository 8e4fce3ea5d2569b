"""What each node visit was actually given and said (`GET /api/runs/RUN/nodes/NODE/calls`), against the real dev server.

The run is real (in-test offline worker, scripted model); the endpoint reads the run's Temporal
history, so what it shows is what the activities were sent and returned.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from api_harness import ApiHarness, api  # noqa: F401

from runtime.run_history import MAX_CALLS_PER_VISIT, ActivityCall, Grouper, bounded

pytestmark = pytest.mark.asyncio

SECRET = "history-secret-value-0123456789"

#: A writer whose prompts use a var and its input, a shell step that prints a worker secret, and an
#: editor that sends the writer back once with feedback (so the writer has two visits).
DRAFTS = """\
vars:
  topic: string

schema brief:
  round: string
  note: string

schema draft:
  text: string

schema verdict:
  approved: bool
  feedback: string

prompt writer_system:
  You write about {{vars.topic}}.

prompt writer_user:
  Round {{input.round}}: {{input.note}}

prompt editor_user:
  Judge the draft: {{outputs.writer.text}}

agent writer:
  model: "scripted"
  input: brief
  output: draft
  system: writer_system
  user: writer_user

tool stamp:
  command: "echo stamped by $X_HISTORY_TOKEN"

agent editor:
  model: "scripted"
  output: verdict
  user: editor_user

workflow drafts:
  entry: writer
  writer -> stamp
  stamp -> editor
  editor -> done when approved
  editor -> writer when not approved as again(2) with { round: "second", note: "{{outputs.editor.feedback}}" }
"""

SCRIPT = {
    "writer": [{"text": "draft one"}, {"text": "draft two"}],
    "editor": [{"approved": False, "feedback": "shorter please"}, {"approved": True, "feedback": "fine"}],
}


async def drafts_run(api: ApiHarness) -> str:
    (api.settings.workflows_dir / "drafts.iter").write_text(textwrap.dedent(DRAFTS), encoding="utf-8")  # type: ignore[operator]
    run_id = await api.start("drafts", vars={"topic": "pricing pages"}, inputs={"round": "first", "note": "be brief"},
                             script=SCRIPT)
    await api.wait_status(run_id, "finished")
    return run_id


async def calls_of(api: ApiHarness, run_id: str, node: str, **params: Any) -> dict[str, Any]:
    response = await api.http.get(f"/api/runs/{run_id}/nodes/{node}/calls", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_each_visit_shows_the_rendered_prompts_input_values_and_output(api: ApiHarness) -> None:
    run_id = await drafts_run(api)
    writer = await calls_of(api, run_id, "writer")
    first = writer["visits"][0]
    assert first["visit"] == 1
    [turn] = first["calls"]
    assert turn["activity"] == "iterloop.llm_turn" and turn["failure"] is None
    assert turn["request"]["system"] == "You write about pricing pages."
    assert turn["request"]["user"] == "Round first: be brief"
    assert {"round": "first", "note": "be brief"}.items() <= turn["request"]["input"].items()
    assert turn["result"]["output"] == {"text": "draft one"} and turn["result"]["status"] == "final"
    assert "script" not in turn["request"] and "offload_threshold_bytes" not in turn["request"]
    assert writer["execution"] == (await api.temporal.get_workflow_handle(run_id).describe()).run_id


async def test_a_loops_second_visit_shows_what_the_second_visit_was_given(api: ApiHarness) -> None:
    run_id = await drafts_run(api)
    writer = await calls_of(api, run_id, "writer", visit=2)
    [second] = writer["visits"]
    [turn] = second["calls"]
    assert second["visit"] == 2 and turn["request"]["visit"] == 2
    assert turn["request"]["user"] == "Round second: shorter please"
    assert turn["request"]["input"] == {"round": "second", "note": "shorter please"}
    assert turn["result"]["output"] == {"text": "draft two"}
    editor = await calls_of(api, run_id, "editor")
    assert [v["calls"][0]["request"]["user"] for v in editor["visits"]] == [
        "Judge the draft: draft one", "Judge the draft: draft two"]


async def test_a_worker_secret_never_appears_in_the_calls(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_HISTORY_TOKEN", SECRET)  # the in-test worker's environment
    run_id = await drafts_run(api)
    texts = [(await api.http.get(f"/api/runs/{run_id}/nodes/{node}/calls")).text for node in ("writer", "stamp", "editor")]
    stamp = json.loads(texts[1])
    [call] = stamp["visits"][0]["calls"]
    assert call["activity"] == "iterloop.shell_exec"
    assert call["request"]["command"] == "echo stamped by $X_HISTORY_TOKEN"  # as written: expanded on the worker only
    assert call["result"]["stdout"].strip() == "stamped by [redacted:X_HISTORY_TOKEN]"
    assert all(SECRET not in text for text in texts)


async def test_unknown_node_calls_are_a_404_that_lists_the_nodes(api: ApiHarness) -> None:
    run_id = await drafts_run(api)
    response = await api.http.get(f"/api/runs/{run_id}/nodes/nobody/calls")
    assert response.status_code == 404
    body = response.json()["error"]
    assert body["code"] == "unknown_node" and "writer, editor, stamp" in body["message"]


async def test_a_tool_nodes_retry_stays_in_its_visit_and_a_models_tool_calls_join_its_turn() -> None:
    shell = Grouper("check")
    first = shell.visit_for("iterloop.shell_exec", {"command": "x"})
    shell.finished(False)  # failed: the next activity is the same visit's retry
    retry = shell.visit_for("iterloop.shell_exec", {"command": "x"})
    shell.finished(True)
    assert (first, retry, shell.visit_for("iterloop.shell_exec", {"command": "x"})) == (1, 1, 2)
    agent = Grouper("writer")
    assert agent.visit_for("iterloop.llm_turn", {"visit": 3}) == 3
    assert agent.visit_for("iterloop.tool_call", {"tool": "echo"}) == 3


async def test_a_visit_keeps_a_bounded_number_of_calls() -> None:
    grouper = Grouper("writer")
    for _ in range(MAX_CALLS_PER_VISIT + 2):
        grouper.add(1, ActivityCall(activity="iterloop.tool_call"))
    [visit] = grouper.result("exec", False).visits
    assert len(visit.calls) == MAX_CALLS_PER_VISIT and visit.calls_dropped == 2


async def test_long_texts_are_cut_and_flagged() -> None:
    value, cut = bounded({"user": "x" * 25_000, "input": {"notes": ["short", "y" * 20_001]}})
    assert cut and len(value["user"]) == 20_001 and value["user"].endswith("…")
    assert value["input"]["notes"][0] == "short" and len(value["input"]["notes"][1]) == 20_001
    assert bounded({"user": "fits"}) == ({"user": "fits"}, False)


SIZED = """\
tool size:
  call: calculate_sample_size

tool echoed:
  call: echo

workflow sized:
  entry: echoed
  echoed -> size with { baseline_rate: "0.1", mde: "0.05" }
  size -> done
"""


async def test_a_local_tool_shows_its_result_and_an_inline_tool_says_it_ran_in_the_workflow(api: ApiHarness) -> None:
    (api.settings.workflows_dir / "sized.iter").write_text(SIZED, encoding="utf-8")  # type: ignore[operator]
    run_id = await api.start("sized", offline=True)
    await api.wait_status(run_id, "finished")
    size = await calls_of(api, run_id, "size")
    [call] = size["visits"][0]["calls"]
    assert call["local"] is True and call["request"] is None and call["activity"] == "iterloop.tool_call"
    assert call["result"]["output"]["n_per_arm"] > 1000 and not size["computed_in_workflow"]
    echoed = await calls_of(api, run_id, "echoed")
    assert echoed["computed_in_workflow"] is True and echoed["visits"] == []


async def test_calls_need_a_token_and_are_in_the_openapi_schema(api: ApiHarness) -> None:
    run_id = await api.start("gated")
    async with api.client(token=None) as anonymous:
        refused = await anonymous.get(f"/api/runs/{run_id}/nodes/planner/calls")
        paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert refused.status_code == 401
    assert "/api/runs/{run_id}/nodes/{node}/calls" in paths
