"""The artifact store: large outputs out of history, references resolved on the worker."""

from __future__ import annotations

import shlex
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
    text = as_text(node_input["body"])
    assert artifacts.expand_tokens(f"see {text}").startswith("see it's yyy")
    command = render_command("printf %s {{outputs.a.body}}", ctx, {})
    expanded = artifacts.expand_tokens(command, quote=shlex.quote)
    assert shlex.split(expanded)[2].startswith("it's yyy")  # quoted once, correctly


def test_missing_or_escaping_references_are_clear_errors() -> None:
    with pytest.raises(ApplicationError, match="missing from the store"):
        artifacts.store().get("artifact://r/n/deadbeef.json")
    with pytest.raises(ApplicationError, match="escapes the store"):
        artifacts.store().get("artifact://../etc/passwd")
