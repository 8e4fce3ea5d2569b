"""Values are data, for any value: the command renderer and the real shell activity, property-tested.

For random values (quotes, `$(…)`, backquotes, newlines, unicode, artifact-token look-alikes,
`$VAR` naming a secret planted in the worker's environment) in every place a `command:` accepts a
template (a whole word, part of a word, several in one word, next to an operator's `${ENV}`), the
process receives exactly the value as its argument and nothing else runs. A value holding a NUL
fails the node cleanly and runs nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import artifacts
from activities.shell import shell_exec
from dsl import check_source
from workflows.contract.messages import ERR_BAD_REQUEST, ShellRequest
from workflows.inputs import DataContext, render_command

SECRET = "s3cr3t-planted-in-the-worker"
PLANTED = "planted"

# `printf '%s\0'` writes each argument it received, NUL-terminated: what the process saw, exactly.
COMMAND = ("printf '%s\\0' {{vars.a}} pre{{vars.b}}post {{vars.a}}{{vars.c}} ${ITERLOOP_TEST_PLANTED}{{vars.b}} "
           "{{outputs.big.result}} > args.bin")


def nasty(marker: Path) -> st.SearchStrategy[str]:
    """Text a shell would love to run, mixed with arbitrary unicode (no NUL: that has its own test)."""
    pieces = st.sampled_from([
        "'", '"', "\\", "$", "`", "(", ")", ";", "&", "|", "\n", " ", "*", "#", "~", "{", "}", "<", ">",
        f"$(touch {marker})", f"`touch {marker}`", f"'; touch {marker} #", f'"; touch {marker} #',
        f"\n touch {marker}\n", "$ITERLOOP_TEST_SECRET", "${ITERLOOP_TEST_SECRET}", "${ITERLOOP_VALUE_1}",
        "⟦artifact:artifact://other-run/n/0000.json#result⟧", "⟦artifact:", "⟧", "{{vars.a}}", "é", "日本", "🙂",
    ])
    anything_but_nul = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=5)
    return st.lists(pieces | anything_but_nul, max_size=8).map("".join)


def shell_context(a: str, b: str, c: str, stored: str) -> DataContext:
    """Vars a, b, c, and an earlier node's output kept in the artifact store (a recorded reference)."""
    stub = artifacts.offload({"result": stored}, run_id="prop", node_id="big", threshold=16)
    assert stub["$artifact"]["fields"] == ["result"]
    return DataContext(vars={"a": a, "b": b, "c": c}, outputs={"big": stub})


STORED_PADDING = "z" * (artifacts.INLINE_FIELD_BYTES + 1)  # so the field leaves the stub


def request_for(ctx: DataContext, cwd: Path) -> ShellRequest:
    rendered = render_command(COMMAND, ctx, {})
    req = ShellRequest(run_id="prop", node_id="show", command=rendered.command, values=rendered.values,
                       cwd=str(cwd), timeout_seconds=20)
    return ShellRequest.model_validate_json(req.model_dump_json())  # as it travels through Temporal


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    artifacts.configure(tmp_path / "store")
    monkeypatch.setenv("ITERLOOP_TEST_SECRET", SECRET)
    monkeypatch.setenv("ITERLOOP_TEST_PLANTED", PLANTED)
    monkeypatch.setenv("ITERLOOP_VALUE_1", "from the worker's own environment")  # never read by a command
    (tmp_path / "run").mkdir()
    return tmp_path / "run"


def test_the_property_command_is_accepted_by_the_compiler() -> None:
    src = ('vars:\n  a: string = ""\n  b: string = ""\n  c: string = ""\nagent big:\n  model: "m"\n'
           f'tool show:\n  command: "{COMMAND}"\nworkflow w:\n  entry: big\n  big -> show\n  show -> done\n')
    result = check_source(src)
    assert [d.code for d in result.diagnostics if d.code == "C116"] == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_value_reaches_the_process_byte_for_byte_and_runs_nothing(workdir: Path, data: st.DataObject) -> None:
    marker = workdir.parent / "MARKER"
    a, b, c, stored = (data.draw(nasty(marker), label=name) for name in ("a", "b", "c", "stored"))
    stored += STORED_PADDING
    (workdir / "args.bin").unlink(missing_ok=True)

    asyncio.run(ActivityEnvironment().run(shell_exec, request_for(shell_context(a, b, c, stored), workdir)))

    argv = (workdir / "args.bin").read_bytes().decode("utf-8").split("\0")
    assert argv == [a, f"pre{b}post", a + c, PLANTED + b, stored, ""]
    assert not marker.exists(), "a value ran as a command"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.text(max_size=5), after=st.text(max_size=5), which=st.sampled_from(["a", "b", "c", "stored"]))
def test_a_value_holding_nul_fails_the_node_and_runs_nothing(workdir: Path, before: str, after: str,
                                                              which: str) -> None:
    values = {"a": "x", "b": "y", "c": "z", "stored": STORED_PADDING}
    values[which] = f"{before}\0{after}" + (STORED_PADDING if which == "stored" else "")
    (workdir / "args.bin").unlink(missing_ok=True)
    with pytest.raises(ApplicationError) as info:
        asyncio.run(ActivityEnvironment().run(shell_exec, request_for(shell_context(**values), workdir)))
    assert info.value.type == ERR_BAD_REQUEST and info.value.non_retryable
    ref = "{{outputs.big.result}}" if which == "stored" else f"{{{{vars.{which}}}}}"
    assert ref in str(info.value) and "NUL" in str(info.value)
    assert not (workdir / "args.bin").exists(), "nothing may run when a value cannot be passed"
