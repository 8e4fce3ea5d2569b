"""Bad input gets one clear line and a documented exit code (or HTTP status), never a traceback or a hang.

Issue 12, findings F6–F8 and F10–F13, each as a regression test through the real surfaces: the
`iterloop` command as a subprocess (`tests/cli_harness.py`; every call has a timeout, so a hang
fails the test instead of stalling it) and the REST API (`tests/api_harness.py`). The limits and
exit codes are documented in docs/security.md ("Bad input") and docs/runtime.md (exit codes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from api_harness import ApiHarness, api  # noqa: F401
from cli_harness import Cli, Result
from runs import start

from api.errors import ApiError
from api.slack import _payload
from workflows.contract.json_values import MAX_JSON_DEPTH, JsonValueError, load_json

#: Long enough for a slow CI machine to start Python; far shorter than any hang.
TIMEOUT = 60

#: A var of each type the checks care about.
TYPED = """\
vars:
  topic: string = "checkout"
  days: int = 14
  ratio: float = 0.5
  config: json = {}

agent planner:
  model: "scripted"

workflow typed:
  entry: planner
  planner -> done
"""

DEEP = "[" * 100_000
LONG_NAME = "a" * 300


async def run_argv(cli: Cli, *args: str | bytes, timeout: float = TIMEOUT) -> Result:
    """`iterloop` with raw argv items (bytes reach the program as they are, e.g. invalid UTF-8)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, cwd=cli.cwd, env=cli.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"iterloop {args!r} hung for {timeout}s") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def refused(result: Result, *needles: str, code: int = 2) -> str:
    """The command exited ``code`` with one `iterloop: …` line that has every needle, and no traceback."""
    assert "Traceback" not in result.out + result.err, result.err
    assert result.code == code, (result.code, result.out, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("iterloop: ")]
    assert len(errors) == 1, result.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def offline(cli: Cli) -> Cli:
    """The CLI pointed at a port nothing listens on: every case here fails before Temporal is needed."""
    return Cli({**cli.env, "TEMPORAL_ADDRESS": "127.0.0.1:9"}, cli.cwd)


# -- F6/F7: files that are not files, and JSON that is too deep -----------------------------------


async def test_validate_refuses_dev_zero_instead_of_running_out_of_memory(bare_cli: Cli) -> None:
    refused(await run_argv(bare_cli, "validate", "/dev/zero"), "/dev/zero", "device", "regular file")


@pytest.mark.parametrize("command", [("validate",), ("fmt", "--check"), ("run", "--detach")])
async def test_a_fifo_is_refused_before_it_is_read(bare_cli: Cli, command: tuple[str, ...]) -> None:
    fifo = bare_cli.cwd / "pipe.iter"
    os.mkfifo(fifo)
    refused(await run_argv(offline(bare_cli), *command, str(fifo)), "pipe.iter", "FIFO", "regular file")


async def test_validate_refuses_a_directory(bare_cli: Cli) -> None:
    refused(await run_argv(bare_cli, "validate", str(bare_cli.cwd)), "directory")


async def test_validate_refuses_a_file_name_longer_than_name_max(bare_cli: Cli) -> None:
    refused(await run_argv(bare_cli, "validate", f"{LONG_NAME}.iter"), "longer than the limit of 255")


async def test_deep_json_in_var_is_refused_with_the_limit(bare_cli: Cli) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    refused(await run_argv(cli, "run", "typed.iter", "--var", f"config={DEEP}"),
            "--var config", f"limit of {MAX_JSON_DEPTH}")


async def test_deep_json_in_input_is_refused_with_the_limit(bare_cli: Cli) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    refused(await run_argv(cli, "run", "typed.iter", "--input", DEEP), "--input", f"limit of {MAX_JSON_DEPTH}")


async def test_invalid_utf8_in_var_is_refused(bare_cli: Cli) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    refused(await run_argv(cli, "run", "typed.iter", b"--var", b"topic=caf\xe9\xff"), "--var", "UTF-8")


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("binary.json", bytes(range(256)) * 4, "not UTF-8"),
    ("deep.json", DEEP.encode(), "nests too deeply"),
    ("nan.yaml", b"approved: .nan\n", "not a finite number"),
    ("inf.yaml", b"ratio: -.inf\n", "not a finite number"),
])
async def test_a_bad_answers_file_is_refused(bare_cli: Cli, name: str, content: bytes, needle: str) -> None:
    (bare_cli.cwd / name).write_bytes(content)
    refused(await run_argv(offline(bare_cli), "answer", "some-run", "--gate", "approval", "--answers-file", name),
            "--answers-file", name, needle)


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
async def test_an_answers_file_that_is_no_file_is_refused(bare_cli: Cli, path: str) -> None:
    if path == "fifo":
        os.mkfifo(bare_cli.cwd / path)
    refused(await run_argv(offline(bare_cli), "answer", "some-run", "--gate", "approval", "--answers-file", path),
            "--answers-file", path, "not a regular file")


@pytest.mark.parametrize(("content", "needle"), [
    (b"vars:\n  ratio: .nan\n", "not a finite number"),
    (DEEP.encode(), "nests too deeply"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
])
async def test_a_bad_preset_is_refused(bare_cli: Cli, content: bytes, needle: str) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    (cli.cwd / "preset.yaml").write_bytes(content)
    refused(await run_argv(cli, "run", "typed.iter", "--config", "preset.yaml"), "preset.yaml", needle)


@pytest.mark.parametrize("option", ["--config", "--script"])
async def test_a_preset_or_script_that_is_a_fifo_is_refused(bare_cli: Cli, option: str) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    os.mkfifo(cli.cwd / "pipe.yaml")
    refused(await run_argv(cli, "run", "typed.iter", "--offline", option, "pipe.yaml"), "pipe.yaml", "FIFO")


async def test_a_fifo_named_dotenv_does_not_hang_a_command(bare_cli: Cli) -> None:
    os.mkfifo(bare_cli.cwd / ".env")
    result = await run_argv(bare_cli, "worker", "status", "--json")
    assert result.code == 0 and "Traceback" not in result.err, result.err


# -- F8: NaN/Infinity, and run inputs typed like vars -------------------------------------------


@pytest.mark.parametrize(("assignment", "needle"), [
    ("ratio=NaN", "NaN"), ("ratio=Infinity", "Infinity"), ("ratio=-Infinity", "Infinity"), ("ratio=1e999", "1e999"),
    ('config={"a": NaN}', "NaN"), ("config=[Infinity]", "Infinity"),
    # Data shaped like a stored-output reference would make an activity read an artifact the run never
    # recorded (another run's output): the reserved keys are refused wherever run data enters.
    ('config={"$artifact_ref": "file://other-run/planner.json", "path": []}', "$artifact_ref"),
    ('config=[{"deep": {"$artifact": {"uri": "file://x"}}}]', "$artifact"),
])
async def test_nan_and_infinity_in_a_var_are_refused(bare_cli: Cli, assignment: str, needle: str) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    name = assignment.partition("=")[0]
    refused(await run_argv(cli, "run", "typed.iter", "--var", assignment), f"--var {name}", needle)


@pytest.mark.parametrize(("text", "needles"), [
    ('{"ratio": NaN}', ("--input", "NaN")),
    ('{"extra": [1, Infinity]}', ("--input", "Infinity")),
    ('{"days": "many"}', ("--input.days", "int")),
    ('{"topic": 5}', ("--input.topic", "string")),
    ('{"ratio": true}', ("--input.ratio", "float")),
    ('{"extra": {"$artifact_ref": "file://other-run/out.json"}}', ("--input", "reserves")),
])
async def test_input_values_are_checked_like_vars(bare_cli: Cli, text: str, needles: tuple[str, ...]) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    refused(await run_argv(cli, "run", "typed.iter", "--input", text), *needles)


def test_the_shared_loader_refuses_what_json_accepts_but_a_run_cannot_store() -> None:
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}', "1e400"):
        with pytest.raises(JsonValueError, match="finite number"):
            load_json(text, what="x")
    with pytest.raises(JsonValueError, match="nests 100000 levels deep"):
        load_json(DEEP, what="x")
    assert load_json('{"a": "[[[[[[[[[["}', what="x") == {"a": "[[[[[[[[[["}  # brackets in strings do not count


# -- F12: a run id that is too long is a usage error -----------------------------------------------


async def test_a_run_id_longer_than_the_limit_exits_2(bare_cli: Cli) -> None:
    cli = offline(bare_cli)
    cli.write("typed.iter", TYPED)
    refused(await run_argv(cli, "run", "typed.iter", "--run-id", "r" * 300), "--run-id", "300 characters", "200")


async def test_a_fork_run_id_longer_than_the_limit_exits_2(bare_cli: Cli) -> None:
    refused(await run_argv(offline(bare_cli), "fork", "some-run", "--at", "planner", "--run-id", "r" * 300),
            "--run-id", "300 characters")


# -- F13: inspect only reads ---------------------------------------------------------------------


async def test_inspect_never_starts_a_worker(temporal_env: Any, bare_cli: Cli) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    handle = await start(temporal_env.client, queue, TYPED)
    home = Path(bare_cli.env["ITERLOOP_HOME"])
    try:
        line = refused(await run_argv(bare_cli, "inspect", handle.id), "no worker polls", queue, "iterloop worker")
        assert "inspect only reads" in line
        assert not (home / "worker.json").exists() and not (home / "worker.log").exists()
    finally:
        await handle.terminate("test finished")


# -- the REST API --------------------------------------------------------------------------------


async def test_api_a_quote_in_the_gate_filter_is_a_400_naming_the_filter(api: ApiHarness) -> None:  # noqa: F811
    response = await api.http.get("/api/runs", params={"gate": 'approval"'})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and "gate filter" in error["message"]
    assert (await api.http.get("/api/runs", params={"gate": "approval"})).status_code == 200


async def test_api_a_file_name_longer_than_name_max_is_refused_not_a_500(api: ApiHarness) -> None:  # noqa: F811
    for body in ({"file": f"{LONG_NAME}.iter"}, {"workflow": "gated", "config": f"{LONG_NAME}.yaml"}):
        response = await api.http.post("/api/runs", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_path"
        assert "longer than the limit of 255" in response.json()["error"]["message"]


async def test_api_a_registered_workflow_linking_outside_its_directory_is_refused(api: ApiHarness) -> None:  # noqa: F811
    outside = api.tmp / "elsewhere"
    outside.mkdir()
    (outside / "escape.iter").write_text(TYPED, encoding="utf-8")
    assert api.settings.workflows_dir is not None
    (api.settings.workflows_dir / "escape.iter").symlink_to(outside / "escape.iter")
    response = await api.http.post("/api/runs", json={"workflow": "escape"})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "path_not_allowed"
    assert "outside" in response.json()["error"]["message"]
    listed = (await api.http.get("/api/workflows")).json()["workflows"]
    assert "escape" not in [w["name"] for w in listed]


@pytest.mark.parametrize(("body", "needle"), [
    ('{"workflow": "gated", "vars": {"topic": "x", "days": NaN}}', "NaN"),
    ('{"workflow": "gated", "inputs": {"x": Infinity}}', "Infinity"),
    ('{"workflow": "gated", "inputs": {"x": {"$artifact_ref": "file://other-run/out.json"}}}', "$artifact_ref"),
    ('{"workflow": "gated", "vars": ' + "[" * 5000 + "]" * 5000 + "}", "nests"),
])
async def test_api_bodies_with_nan_or_deep_nesting_are_a_400(api: ApiHarness, body: str, needle: str) -> None:  # noqa: F811
    response = await api.http.post("/api/runs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json" and needle in response.json()["error"]["message"]


async def test_api_run_inputs_that_name_a_var_are_typed_like_vars(api: ApiHarness) -> None:  # noqa: F811
    response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                      "inputs": {"days": "many"}})
    assert response.status_code == 422, response.text
    assert "inputs.days" in response.json()["error"]["message"]


async def test_api_slack_payload_nested_too_deeply_is_a_400(api: ApiHarness) -> None:  # noqa: F811
    secret = "bad-input-signing-secret"
    body = urlencode({"payload": "[" * 50_000}).encode()
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    async with api.configured(slack_signing_secret=secret) as slack:
        response = await slack.post("/slack/interactions", content=body, headers={
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}",
            "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.text
    assert "nests" in response.json()["error"]["message"]


def test_slack_payload_with_nan_is_refused() -> None:
    with pytest.raises(ApiError, match="NaN"):
        _payload(urlencode({"payload": json.dumps({"type": "block_actions"})[:-1] + ', "x": NaN}'}).encode())
