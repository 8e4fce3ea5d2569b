"""The artifact store: large outputs out of history, references resolved on the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities import artifacts
from dsl import check_source
from workflows.inputs import DataContext, as_text, build_input, render_command


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Path:
    artifacts.configure(tmp_path)
    return tmp_path


def test_small_outputs_stay_inline() -> None:
    out = {"ok": True, "text": "short"}
    assert artifacts.offload(out, run_id="r", node_id="n", threshold=1024) is out
    assert artifacts.offload({"big": "x" * 5000}, run_id="r", node_id="n", threshold=0) == {"big": "x" * 5000}


def test_large_output_becomes_a_stub_with_small_fields_inline(store: Path) -> None:
    out = {"ok": True, "body": "x" * 5000, "n": 3}
    stub = artifacts.offload(out, run_id="run/1", node_id="node", threshold=1024)
    assert stub["ok"] is True and stub["n"] == 3 and "body" not in stub
    meta = stub["$artifact"]
    assert meta["fields"] == ["body"] and meta["uri"].startswith("artifact://run_1/node/")
    assert artifacts.resolve(stub) == out
    again = artifacts.offload(out, run_id="run/1", node_id="node", threshold=1024)
    assert again == stub and len(list(store.rglob("*.json"))) == 1  # content-addressed


def test_templates_hand_references_on_and_activities_resolve_them() -> None:
    stub = artifacts.offload({"ok": True, "body": "it's " + "y" * 3000}, run_id="r", node_id="a", threshold=100)
    ctx = DataContext(outputs={"a": stub})
    wf = check_source('agent a:\n  model: "m"\nagent b:\n  model: "m"\nworkflow w:\n  entry: a\n'
                      '  a -> b with { body: "{{outputs.a.body}}", ok: "{{outputs.a.ok}}" }\n  b -> done\n').workflow
    assert wf is not None
    node_input = build_input(wf, "b", ctx)
    assert node_input["ok"] is True and "$artifact_ref" in node_input["body"]
    assert artifacts.resolve(node_input)["body"].startswith("it's yyy")
    placed: list[str] = []
    text = as_text(node_input["body"], placed)
    assert placed == [text]
    assert artifacts.expand_tokens(f"see {text}", placed).startswith("see it's yyy")
    rendered = render_command("printf %s {{outputs.a.body}}", ctx, {})
    assert rendered.command == 'printf %s "${ITERLOOP_VALUE_1}"'
    assert artifacts.resolve(rendered.values[0].value).startswith("it's yyy")  # by structure, not by token


def test_only_the_tokens_a_request_lists_are_expanded() -> None:
    stub = artifacts.offload({"body": "secret " + "z" * 3000}, run_id="r", node_id="a", threshold=100)
    placed: list[str] = []
    token = as_text({"$artifact_ref": stub["$artifact"]["uri"], "path": ["body"]}, placed)
    look_alike = f"value says {token}"
    assert artifacts.expand_tokens(look_alike, []) == look_alike
    assert artifacts.resolve({"v": look_alike}) == {"v": look_alike}
    assert artifacts.resolve({"v": look_alike}, tokens=placed)["v"].startswith("value says secret zzz")


def test_missing_or_escaping_references_are_clear_errors() -> None:
    with pytest.raises(ApplicationError, match="missing from the store"):
        artifacts.store().get("artifact://r/n/deadbeef.json")
    with pytest.raises(ApplicationError, match="escapes the store"):
        artifacts.store().get("artifact://../etc/passwd")


def test_an_output_holding_a_reserved_key_is_refused_so_references_are_only_recorded_ones() -> None:
    forged = {"verdict": {"$artifact": {"uri": "artifact://other/n/1.json", "fields": []}}}
    with pytest.raises(ApplicationError, match="reserves for references"):
        artifacts.offload(forged, run_id="r", node_id="model", threshold=0)
    with pytest.raises(ApplicationError, match="'\\$artifact_ref'"):
        artifacts.offload({"list": [{"$artifact_ref": "artifact://x", "path": []}]}, run_id="r", node_id="n",
                          threshold=1 << 20)
