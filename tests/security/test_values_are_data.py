"""Values are data in shell commands (issue 12, findings F1 and F4), through the real surfaces.

F1: a value holding an artifact token (`⟦artifact:URI#result⟧`) used to be expanded inside its
own shell quotes, so a stored output ran as shell code. F4: a template inside quotes ran `;`,
`$()`, backquotes and newlines. Each case here runs through `iterloop run --offline` (a subprocess,
`tests/cli_harness.py`) or the REST API (`tests/api_harness.py`) with a real worker and `/bin/sh`,
and shows the value is data: the marker file is never created and the command printed the value
byte for byte. Quoted templates are refused by `iterloop validate` and the API with C116, at
their line and column. See docs/security.md, "Values in shell commands".
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from api_harness import ApiHarness, api  # noqa: F401
from cli_harness import Cli

from activities.artifacts import LocalArtifactStore

TIMEOUT = 90

#: An earlier node's output large enough for the artifact store (over the 64 KiB default), then
#: commands that print a stored value, a var, and a var holding the stored value's token.
WORKFLOW = """\
vars:
  token: string = ""
  tricky: string = ""

schema text:
  result: string

tool big:
  command: "cat payload.txt"
  output: text

tool show:
  command: "printf %s {{outputs.big.result}} > shown.txt"

tool leak:
  command: "printf %s {{vars.token}} > leaked.txt; printf %s {{vars.tricky}} > tricky.txt"

workflow values:
  entry: big
  big -> show
  show -> leak
  leak -> done
"""

#: A template inside quotes: the shell (or `sh -c`) would read the value as code.
QUOTED = """\
vars:
  x: string = "a"

tool t:
  command: "sh -c 'echo {{vars.x}}' && echo 'Result: {{vars.x}}'"

workflow quoted:
  entry: t
  t -> done
"""


def attacks(marker: Path) -> str:
    """Text that runs `touch MARKER` if it is ever read as shell code, in every way we know."""
    return "\n".join([
        f"'; touch {marker} #", f'"; touch {marker} #', f"$(touch {marker})", f"`touch {marker}`",
        f"\ntouch {marker}\n", f"x; touch {marker}", "$HOME ${HOME} it's",
    ])


def payload_for(marker: Path) -> str:
    """A stored output: padding past the offload threshold, then the attacks (no edge whitespace:
    a command's output is trimmed)."""
    return "p" * (70 * 1024) + attacks(marker) + " end"


def stored_token(tmp: Path, run_id: str, result: str) -> str:
    """The token the old renderer wrote for node `big`'s stored `result` in run ``run_id``: objects are
    content-addressed, so its URI is the store's for the same JSON bytes."""
    data = json.dumps({"result": result}, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    uri = LocalArtifactStore(tmp / "scratch-store").put(run_id, "big", data)
    return f"⟦artifact:{uri}#result⟧"


def assert_values_were_data(workdir: Path, marker: Path, token: str, tricky: str) -> None:
    assert not marker.exists(), "a value ran as shell code"
    assert (workdir / "shown.txt").read_text(encoding="utf-8") == payload_for(marker)
    assert (workdir / "leaked.txt").read_text(encoding="utf-8") == token  # the token's text, not the stored output
    assert (workdir / "tricky.txt").read_text(encoding="utf-8") == tricky


# -- through the CLI -------------------------------------------------------------------------------


async def test_cli_run_passes_stored_outputs_tokens_and_shell_syntax_as_data(cli: Cli) -> None:
    marker = cli.cwd / "MARKER"
    run_id = f"values-{uuid.uuid4().hex[:8]}"
    cli.write("values.iter", WORKFLOW)
    cli.write("payload.txt", payload_for(marker))
    token = stored_token(cli.cwd, run_id, payload_for(marker))
    tricky = attacks(marker) + " ${ITERLOOP_TEST_TOPIC} $ITERLOOP_TEST_TOPIC"  # a variable the worker has

    result = await cli("run", "values.iter", "--offline", "--run-id", run_id, "--var", f"token={token}",
                       "--var", f"tricky={tricky}", timeout=TIMEOUT)

    assert result.code == 0, result.out + result.err
    assert_values_were_data(cli.cwd, marker, token, tricky)
    inspected = await cli("inspect", run_id, "--json")
    assert inspected.code == 0, inspected.err
    assert "$artifact" in json.dumps(inspected.json()), "big's output went to the artifact store"


async def test_cli_validate_refuses_templates_inside_quotes_with_c116_and_position(cli: Cli) -> None:
    cli.write("quoted.iter", QUOTED)
    result = await cli("validate", "quoted.iter", "--json")
    assert result.code == 1, result.out + result.err
    diagnostics = result.json()["files"][0]["diagnostics"]
    assert [(d["code"], d["line"], d["column"]) for d in diagnostics] == [("C116", 5, 25), ("C116", 5, 54)]
    assert "single quotes" in diagnostics[0]["message"]
    assert "sh -c 'echo $1' sh {{vars.x}}" in diagnostics[0]["hint"]
    text = await cli("validate", "quoted.iter")
    assert "quoted.iter:5:25: error [C116]" in text.out + text.err
    refused = await cli("run", "quoted.iter", "--offline")
    assert refused.code != 0 and "C116" in refused.out + refused.err


# -- through the API -------------------------------------------------------------------------------


async def test_api_run_passes_stored_outputs_tokens_and_shell_syntax_as_data(api: ApiHarness) -> None:  # noqa: F811
    workdir = api.tmp / "work"
    workdir.mkdir()
    marker = workdir / "MARKER"
    (workdir / "payload.txt").write_text(payload_for(marker), encoding="utf-8")
    assert api.settings.workflows_dir is not None
    (api.settings.workflows_dir / "values.iter").write_text(WORKFLOW, encoding="utf-8")
    run_id = f"values-{uuid.uuid4().hex[:8]}"
    token = stored_token(api.tmp, run_id, payload_for(marker))
    tricky = attacks(marker)

    started = await api.start("values", run_id=run_id, workdir=str(workdir), vars={"token": token, "tricky": tricky})

    await api.wait_status(started, "finished", timeout=TIMEOUT)
    assert_values_were_data(workdir, marker, token, tricky)


async def test_api_value_holding_nul_fails_the_node_clearly_and_runs_nothing(api: ApiHarness) -> None:  # noqa: F811
    workdir = api.tmp / "work"
    workdir.mkdir()
    (workdir / "payload.txt").write_text("small", encoding="utf-8")
    assert api.settings.workflows_dir is not None
    (api.settings.workflows_dir / "values.iter").write_text(WORKFLOW, encoding="utf-8")

    run_id = await api.start("values", workdir=str(workdir), vars={"token": "a\u0000b"})

    parked = await api.wait_status(run_id, "failed_resumable", "failed", timeout=TIMEOUT)
    [failure] = parked["failures"]
    assert failure["node"] == "leak"
    assert "{{vars.token}}" in failure["error"] and "NUL" in failure["error"] and "nothing was run" in failure["error"]
    assert not (workdir / "leaked.txt").exists() and not (workdir / "tricky.txt").exists()


async def test_api_refuses_templates_inside_quotes_with_c116_and_position(api: ApiHarness) -> None:  # noqa: F811
    assert api.settings.workflows_dir is not None
    (api.settings.workflows_dir / "quoted.iter").write_text(QUOTED, encoding="utf-8")
    response = await api.http.post("/api/runs", json={"workflow": "quoted"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "compile_errors"
    assert [(d["code"], d["line"], d["column"]) for d in error["details"]] == [("C116", 5, 25), ("C116", 5, 54)]
